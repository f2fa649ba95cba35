"""Build the patch module from the kmod template, then finalise it for livepatch."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from elfdiff.klp import finalize_module
from elfdiff.lookup import read_exports

from .commands import run
from .errors import BuildError
from .tree import tree_locked

log = logging.getLogger("klpbuild.module")

KMOD = Path(__file__).resolve().parent.parent / "kmod"
TEMPLATE_FILES = ("livepatch-hook.c", "kpatch-patch.h", "kpatch.lds", "Makefile")


@dataclass(frozen=True)
class ModuleBuild:
    kernel_build: Path  # O= folder of the kernel the module is for
    linked: Path  # the ld -r output of all diff objects
    folder: Path
    name: str  # livepatch-<name>
    replace: bool = True


def build_module(request: ModuleBuild) -> Path:
    """Run kbuild on the template in REQUEST.folder; return the unfinalised .ko."""
    folder = request.folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in TEMPLATE_FILES:
        shutil.copy2(KMOD / name, folder / name)
    shutil.copy2(request.linked, folder / "patch.o")
    # kbuild takes a prebuilt object as up to date only when it has a .cmd record.
    (folder / ".patch.o.cmd").write_text("")
    command = [
        "make",
        "-C",
        str(request.kernel_build),
        f"M={folder}",
        f"KPATCH_NAME={request.name}",
        f"KPATCH_REPLACE={int(request.replace)}",
        # Livepatch symbols stay undefined until finalisation; modpost must not stop on them.
        "KBUILD_MODPOST_WARN=1",
        "modules",
    ]
    # The lock keeps a kernel build of another run from changing the build folder meanwhile.
    with tree_locked():
        run(command, log_file=folder / "build.log", what="building the patch module")
    module = folder / f"{request.name}.ko"
    if not module.is_file():
        raise BuildError(f"kbuild did not produce {module}; see {folder / 'build.log'}")
    return module


def finalize(module: Path, destination: Path, module_symvers: Path) -> None:
    """Convert livepatch symbols and check that the loader can resolve everything else."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    result = finalize_module(module, destination)
    exports = read_exports(module_symvers)
    missing = [name for name in result.undefined if name not in exports]
    if missing:
        destination.unlink(missing_ok=True)
        raise BuildError(
            f"the patch module needs symbols that nothing exports: {', '.join(missing)}"
        )
    log.info(
        "wrote %s (%d livepatch relocation sections, %d livepatch symbols)",
        destination,
        len(result.klp_sections),
        len(result.klp_symbols),
    )
