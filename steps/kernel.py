"""Kernel builds in kbuild O= folders that share one source tree."""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .commands import run
from .errors import BuildError
from .tree import tree_locked

log = logging.getLogger("klpbuild.kernel")

# -fdata-sections puts each object in its own section. A 6.1 x86 kernel built
# that way does not boot because its .bss.* sections land outside the zeroed
# area, so these flags are only for the comparison build.
COMPARISON_KCFLAGS = "-ffunction-sections -fdata-sections"


@dataclass(frozen=True)
class KernelBuild:
    tree: Path
    build_dir: Path
    config_text: str
    targets: tuple[str, ...]
    kcflags: str = ""
    jobs: int = 2


def compiler_version() -> str:
    try:
        return subprocess.run(
            ["gcc", "--version"], capture_output=True, text=True
        ).stdout.splitlines()[0]
    except (FileNotFoundError, IndexError):
        raise BuildError("gcc not found; install gcc (see README)") from None


def make_command(build: KernelBuild, *targets: str) -> list[str]:
    command = ["make", "-C", str(build.tree), f"O={build.build_dir}", f"-j{build.jobs}"]
    if build.kcflags:
        command.append(f"KCFLAGS={build.kcflags}")
    return command + list(targets)


def write_config(build: KernelBuild) -> None:
    """Install the config, leaving an unchanged one untouched so make sees no change."""
    build.build_dir.mkdir(parents=True, exist_ok=True)
    config = build.build_dir / ".config"
    if config.exists() and config.read_text() == build.config_text:
        return
    config.write_text(build.config_text)


def build_kernel(build: KernelBuild) -> None:
    write_config(build)
    log_file = build.build_dir / "build.log"
    log_file.unlink(missing_ok=True)
    log.info("building %s in %s", " ".join(build.targets), build.build_dir)
    with tree_locked():
        run(
            make_command(build, *build.targets),
            log_file=log_file,
            what=f"kernel build in {build.build_dir}",
        )


def remove_build(build_dir: Path) -> None:
    shutil.rmtree(build_dir, ignore_errors=True)
