"""Read the ``.modinfo`` section of a kernel module file (``.ko``)."""

from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from kpatchctl.errors import KpatchError


def module_name_from_file_name(name: str) -> str:
    """Return the kernel's name for a module file or module argument.

    The kernel's module name, and so the livepatch name in sysfs, is the file name
    without directory and ``.ko`` suffix, with ``-`` turned into ``_``.
    """
    base = Path(name).name
    base = base.removesuffix(".ko")
    return base.replace("-", "_")


@dataclass(frozen=True)
class ModuleInfo:
    """The ``key=value`` fields of a module's ``.modinfo`` section, in file order."""

    path: Path
    fields: tuple[tuple[str, str], ...]

    def get(self, key: str) -> str | None:
        """Return the first value of ``key``, or None when the module has no such field."""
        for field_key, value in self.fields:
            if field_key == key:
                return value
        return None

    @property
    def is_livepatch(self) -> bool:
        return self.get("livepatch") == "Y"

    @property
    def vermagic_release(self) -> str | None:
        """Return the kernel release, the first word of ``vermagic``."""
        vermagic = self.get("vermagic")
        if not vermagic or not vermagic.split():
            return None
        return vermagic.split()[0]

    @property
    def name(self) -> str:
        """Return the module name: the ``name`` field, else derived from the file name."""
        name = self.get("name") or self.path.name
        return module_name_from_file_name(name)


def parse_modinfo(data: bytes) -> tuple[tuple[str, str], ...]:
    """Split ``.modinfo`` contents: NUL-terminated ``key=value`` strings, maybe padded."""
    fields = []
    for entry in data.split(b"\0"):
        if not entry:
            continue
        key, _, value = entry.decode("utf-8", errors="replace").partition("=")
        fields.append((key, value))
    return tuple(fields)


def read_modinfo(path: Path) -> ModuleInfo:
    """Read the modinfo fields of the module file at ``path``.

    Raises KpatchError when the file is missing, is not ELF or has no ``.modinfo``.
    """
    if not path.is_file():
        raise KpatchError(f"module file not found: {path}; check the path")
    try:
        with path.open("rb") as stream:
            section = ELFFile(stream).get_section_by_name(".modinfo")
            data = section.data() if section is not None else None
    except ELFError as error:
        raise KpatchError(
            f"invalid module file {path}: {error}; pass a kernel module (.ko) file"
        ) from error
    if data is None:
        raise KpatchError(
            f"{path} has no .modinfo section, so it is not a kernel module; "
            "pass the .ko file that `doit build` wrote"
        )
    return ModuleInfo(path=path, fields=parse_modinfo(data))


def require_livepatch(info: ModuleInfo) -> None:
    """Raise KpatchError unless the module carries ``livepatch=Y``."""
    if not info.is_livepatch:
        raise KpatchError(
            f"{info.path} is not a livepatch module (no livepatch=Y in .modinfo); "
            "pass a module built by kpatch-build"
        )


def require_release(info: ModuleInfo, release: str, hint: str = "") -> None:
    """Raise KpatchError unless the module's vermagic names kernel ``release``."""
    module_release = info.vermagic_release
    if module_release == release:
        return
    raise KpatchError(
        f"{info.path} was built for kernel {module_release or '(no vermagic)'}, "
        f"not {release}; {hint or f'rebuild the patch against kernel {release}'}"
    )
