"""Parameters of one pipeline run and the paths derived from them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cache import build_key, build_root

from .config import DEFAULT_FRAGMENT
from .errors import BuildError

PROJECT = Path(__file__).resolve().parent.parent
MODULE_NAME_MAX = 55


def module_name(name: str) -> str:
    """Return a valid kernel module name for NAME, with the livepatch- prefix."""
    base = re.sub(r"[^A-Za-z0-9_-]", "-", name).strip("-") or "patch"
    if not base.startswith("livepatch-"):
        base = "livepatch-" + base
    return base[:MODULE_NAME_MAX].rstrip("-_")


def patch_stem(path: Path) -> str:
    stem = path.name
    for suffix in (".patch", ".diff"):
        stem = stem.removesuffix(suffix)
    return stem


@dataclass(frozen=True)
class Settings:
    patches: tuple[Path, ...]
    src: Path | None
    config: Path | None
    vmlinux: Path | None
    module: str
    out: Path
    jobs: int
    source_id: str
    compiler: str
    targets: tuple[str, ...] = ()  # livepatch object names; empty means every changed one
    replace: bool = True
    signkey: Path | None = None

    @property
    def unpacked_makefile(self) -> list[Path]:
        """The Makefile of the unpacked default source, so a deleted tree is unpacked again."""
        if self.src is not None:
            return []
        from cache import source_root

        return [source_root() / self.source_id / "Makefile"]

    @property
    def config_input(self) -> Path:
        return self.config or DEFAULT_FRAGMENT

    @property
    def key(self) -> str:
        return build_key(self.source_id, self.config_input.read_text(), self.compiler)

    @property
    def build(self) -> Path:
        return build_root(self.key)

    @property
    def run_dir(self) -> Path:
        return self.build / "run"

    @property
    def cmp_dir(self) -> Path:
        return self.build / "cmp"

    @property
    def parent_vmlinux(self) -> Path:
        return self.vmlinux or self.run_dir / "vmlinux"

    @property
    def struct_sizes(self) -> Path:
        return self.build / "struct-sizes.json"

    @property
    def work(self) -> Path:
        """Intermediate files of this patch: one stable folder per module name."""
        return PROJECT / "build" / self.module

    @property
    def module_path(self) -> Path:
        return self.out / f"{self.module}.ko"


def parse_settings(values: dict[str, str], source_id: str, compiler: str) -> Settings:
    """Build Settings from doit command-line variables (patch=, src=, ...)."""
    patches = tuple(Path(p).resolve() for p in re.split(r"[,\s]+", values.get("patch", "")) if p)
    for patch in patches:
        if not patch.is_file():
            raise BuildError(f"patch file {patch} not found")
    name = values.get("name") or (patch_stem(patches[0]) if patches else "patch")
    config = Path(values["config"]).resolve() if values.get("config") else None
    if config is not None and not config.is_file():
        raise BuildError(f"config file {config} not found")
    vmlinux = Path(values["vmlinux"]).resolve() if values.get("vmlinux") else None
    if vmlinux is not None and not vmlinux.is_file():
        raise BuildError(f"vmlinux {vmlinux} not found")
    try:
        jobs = int(values["jobs"]) if values.get("jobs") else _cpu_count()
    except ValueError:
        raise BuildError(f"jobs={values['jobs']} is not a number") from None
    if jobs < 1:
        raise BuildError(f"jobs={values['jobs']} is invalid; pass a number of 1 or more")
    out = Path(values.get("out") or ".").resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BuildError(f"out={out} cannot be created: {error.strerror}") from None
    replace = values.get("replace") or "1"
    if replace not in ("0", "1"):
        raise BuildError(f"replace={replace} must be 1 (atomic replace) or 0 (stack)")
    signkey = Path(values["signkey"]).resolve() if values.get("signkey") else None
    if signkey is not None and not signkey.is_file():
        raise BuildError(f"signing key {signkey} not found")
    return Settings(
        patches=patches,
        src=Path(values["src"]).resolve() if values.get("src") else None,
        config=config,
        vmlinux=vmlinux,
        module=module_name(name),
        out=out,
        jobs=jobs,
        source_id=source_id,
        compiler=compiler,
        targets=parse_targets(values.get("target", "")),
        replace=replace == "1",
        signkey=signkey,
    )


def parse_targets(text: str) -> tuple[str, ...]:
    """Turn target=vmlinux,binfmt_misc into livepatch object names (modules use _)."""
    names = []
    for name in re.split(r"[,\s]+", text):
        name = name.removesuffix(".ko").replace("-", "_")
        if not name:
            continue
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise BuildError(f"target={name} is not vmlinux or a module name")
        names.append(name)
    return tuple(sorted(set(names)))


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0))


PARAMETERS = (
    "patch",
    "src",
    "config",
    "vmlinux",
    "name",
    "out",
    "jobs",
    "target",
    "replace",
    "signkey",
)


def load_settings(values: dict[str, str]) -> Settings:
    """Read the doit variables and identify source and compiler, without building anything."""
    from .kernel import compiler_version
    from .source import SourceRequest, source_identity

    src = Path(values["src"]) if values.get("src") else None
    return parse_settings(values, source_identity(SourceRequest(tree=src)), compiler_version())


def check_variables(names) -> None:
    """Reject command-line variables that no stage reads, such as a misspelt target=."""
    unknown = sorted(set(names) - set(PARAMETERS) - {"verbose"})
    if unknown:
        raise BuildError(
            f"unknown variable {', '.join(unknown)}; the variables are "
            + ", ".join(f"{name}=" for name in (*PARAMETERS, "verbose"))
        )
