"""The patched build: apply the patch, recompile what it affects, undo it all."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from .commands import run
from .errors import BuildError
from .kernel import COMPARISON_KCFLAGS
from .objects import affected_objects, check_objects_found, select_targets
from .patchfile import check_supported, touched_files
from .symvers import check_versions_kept, read_versions
from .tree import apply_patch, changes_undone

log = logging.getLogger("klpbuild.patched")

# kpatch-macros.h, kpatch-syscall.h and the headers they include, which
# patches include by bare name.
AUTHOR_HEADERS = Path(__file__).resolve().parent.parent / "kmod"


@dataclass(frozen=True)
class PatchedBuild:
    tree: Path
    cmp_dir: Path
    patches: tuple[Path, ...]
    work: Path
    jobs: int = 2
    targets: tuple[str, ...] = ()  # livepatch object names to keep; empty keeps all


@dataclass(frozen=True)
class PatchedResult:
    objects: tuple[str, ...]

    def write(self, path: Path) -> None:
        path.write_text(json.dumps({"objects": list(self.objects)}, indent=1) + "\n")

    @classmethod
    def read(cls, path: Path) -> PatchedResult:
        return cls(tuple(json.loads(path.read_text())["objects"]))


def cmd_file(build_dir: Path, obj: str) -> Path:
    path = build_dir / obj
    return path.with_name(f".{path.name}.cmd")


def build_patched(request: PatchedBuild) -> PatchedResult:
    """Compile the objects REQUEST.patches affect; copy originals and results to the work folder."""
    if not request.patches:
        raise BuildError("no patch given; pass patch=FILE (several as patch=a.patch,b.patch)")
    touched = []
    for patch in request.patches:
        files = touched_files(patch)
        check_supported(patch, files)
        touched += files
    changed = {t.path for t in touched}
    log_file = request.work / "patched.log"
    log_file.unlink(missing_ok=True)
    for folder in ("orig", "patched"):
        shutil.rmtree(request.work / folder, ignore_errors=True)

    with changes_undone() as journal:
        # Keep the sources first, so that a failed patch is undone as well.
        for touched_file in touched:
            journal.keep(request.tree / touched_file.path)
        for patch in request.patches:
            apply_patch(request.tree, patch, log_file)

        _add_author_headers(request.cmp_dir, journal)
        objects = affected_objects(request.cmp_dir, request.tree, changed)
        check_objects_found(objects, changed)
        objects = select_targets(objects, request.cmp_dir, request.targets)
        log.info("recompiling %d object(s): %s", len(objects), " ".join(objects))
        versions = {}
        for obj in objects:
            original = request.cmp_dir / obj
            _copy(original, request.work / "orig" / obj)
            journal.keep(original)
            journal.keep(cmd_file(request.cmp_dir, obj))
            versions[obj] = read_versions(cmd_file(request.cmp_dir, obj))

        command = [
            "make",
            "-C",
            str(request.tree),
            f"O={request.cmp_dir}",
            f"-j{request.jobs}",
            f"KCFLAGS={COMPARISON_KCFLAGS}",
            *objects,
        ]
        try:
            run(command, log_file=log_file, what="compiling the patched objects")
        except BuildError:
            raise BuildError(
                f"the patched source does not compile; compiler output in {log_file}"
            ) from None
        for obj in objects:
            _copy(request.cmp_dir / obj, request.work / "patched" / obj)
            check_versions_kept(obj, versions[obj], read_versions(cmd_file(request.cmp_dir, obj)))
    return PatchedResult(tuple(objects))


def _add_author_headers(build_dir: Path, journal) -> None:
    """Put the patch-author headers into BUILD_DIR/include until the tree is restored.

    That folder is on the include path of every kbuild compile. Adding kmod/
    to KCFLAGS instead would change the command line of kbuild's prepare
    steps, which then run again in this build and in the next original one.
    """
    for header in sorted(AUTHOR_HEADERS.glob("*.h")):
        target = build_dir / "include" / header.name
        journal.keep(target)
        shutil.copyfile(header, target)


def _copy(source: Path, destination: Path) -> None:
    if not source.is_file():
        raise BuildError(
            f"{source} is missing; the original build is incomplete, rerun `doit kernel_cmp`"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, destination)
