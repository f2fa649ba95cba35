"""Reading unified diffs: which files a patch touches, and refusals by path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import BuildError

_OLD = re.compile(r"^--- (\S+)")
_NEW = re.compile(r"^\+\+\+ (\S+)")


@dataclass(frozen=True)
class TouchedFile:
    path: str  # relative to the tree root, -p1 stripped
    created: bool
    deleted: bool


def _strip(name: str) -> str | None:
    if name == "/dev/null":
        return None
    parts = name.split("/", 1)
    return parts[1] if len(parts) == 2 else parts[0]


def touched_files(patch: Path) -> list[TouchedFile]:
    """Return the files PATCH changes, in order, read from its ---/+++ lines."""
    try:
        lines = patch.read_text(errors="replace").splitlines()
    except OSError as error:
        raise BuildError(f"cannot read patch {patch}: {error.strerror}") from None
    files = []
    old = None
    for line in lines:
        match = _OLD.match(line)
        if match:
            old = match.group(1)
            continue
        match = _NEW.match(line)
        if match and old is not None:
            old_path, new_path = _strip(old), _strip(match.group(1))
            path = new_path or old_path
            if path is None:
                raise BuildError(f"{patch}: a file header names /dev/null on both sides")
            files.append(TouchedFile(path, created=old_path is None, deleted=new_path is None))
            old = None
    if not files:
        raise BuildError(f"{patch} is not a unified diff: it has no ---/+++ file headers")
    return files


def check_supported(patch: Path, files: list[TouchedFile]) -> None:
    """Reject changes kpatch-style builders cannot carry, before any compiler runs."""
    for touched in files:
        if touched.path.startswith("lib/"):
            raise BuildError(
                f"{patch.name} changes {touched.path}: lib/ code is linked into many places "
                "and cannot be patched per object; patch its callers instead"
            )
        if touched.path.endswith(".S"):
            raise BuildError(
                f"{patch.name} changes the assembly file {touched.path}: only C code can be patched"
            )
