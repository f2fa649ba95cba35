"""Which objects of a kbuild O= folder depend on which source files.

kbuild records, for every object, the command that built it and every file
it read (``.<object>.cmd``: ``cmd_<object> :=`` and ``deps_<object> :=``).
Those records decide which objects a patch affects and which parent (vmlinux
or a module) links each object.
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .errors import BuildError

log = logging.getLogger("klpbuild.objects")

# Objects never worth comparing: link products, generated or special-purpose code.
SKIPPED_PREFIXES = (
    "lib/",
    "tools/",
    "scripts/",
    "usr/",
    "arch/x86/boot/",
    "arch/x86/realmode/",
    "arch/x86/entry/vdso/",
    "arch/x86/purgatory/",
    "drivers/firmware/efi/libstub/",
    "init/version",
)
SKIPPED_SUFFIXES = (".mod.o", "built-in.a", "vmlinux.o", ".vmlinux.export.o")

_DEPS_START = re.compile(r"^deps_(\S+) := \\?$")
_SOURCE = re.compile(r"^source_(\S+) := (\S+)$")


@dataclass(frozen=True)
class ObjectInfo:
    path: str  # relative to the O= folder
    files: frozenset[str]  # source and headers, relative to the tree where they are inside it


def _relative(name: str, tree: str, build_dir: str) -> str:
    if name.startswith(tree + "/"):
        return name[len(tree) + 1 :]
    if name.startswith(build_dir + "/"):
        return "$(O)/" + name[len(build_dir) + 1 :]
    return name


def read_cmd_file(cmd_file: Path, tree: Path, build_dir: Path) -> ObjectInfo | None:
    """Return the object a .cmd file describes, if it is a compiled C object worth diffing."""
    files: set[str] = set()
    obj = None
    in_deps = False
    tree_text, build_text = str(tree), str(build_dir)
    with open(cmd_file, errors="replace") as stream:
        for line in stream:
            line = line.rstrip("\n")
            if in_deps:
                entry = line.strip().rstrip("\\").strip()
                if entry and not entry.startswith("$(wildcard"):
                    files.add(_relative(entry, tree_text, build_text))
                if not line.endswith("\\"):
                    in_deps = False
                continue
            match = _SOURCE.match(line)
            if match:
                obj = match.group(1)
                files.add(_relative(match.group(2), tree_text, build_text))
                continue
            if _DEPS_START.match(line):
                in_deps = True
    if obj is None or not obj.endswith(".o"):
        return None
    if obj.startswith(SKIPPED_PREFIXES) or obj.endswith(SKIPPED_SUFFIXES):
        return None
    return ObjectInfo(obj, frozenset(files))


def affected_objects(build_dir: Path, tree: Path, changed_files: set[str]) -> list[str]:
    """Return the objects of BUILD_DIR whose recorded inputs include a changed file."""
    affected = []
    for cmd_file in build_dir.rglob(".*.o.cmd"):
        info = read_cmd_file(cmd_file, tree.resolve(), build_dir.resolve())
        if info is not None and info.files & changed_files:
            affected.append(info.path)
    return sorted(affected)


def module_parents(build_dir: Path) -> dict[str, str]:
    """Map each object linked into a loadable module to that module's path (without .ko)."""
    parents: dict[str, str] = {}
    # os.walk skips folders that vanish while it runs: kbuild's temporary ones
    # come and go when another run is building in the same folder.
    for folder, _, files in os.walk(build_dir):
        for name in files:
            if not name.endswith(".mod"):
                continue
            mod_file = Path(folder) / name
            module = str(mod_file.relative_to(build_dir))[: -len(".mod")]
            try:
                objects = mod_file.read_text().split()
            except FileNotFoundError:
                continue
            for obj in objects:
                parents[obj] = module
    return parents


def parent_of(obj: str, parents: dict[str, str]) -> tuple[str, str | None]:
    """Return the livepatch object name and module path for OBJ: ("vmlinux", None) or a module."""
    module = parents.get(obj)
    if module is None:
        return "vmlinux", None
    return Path(module).name.replace("-", "_"), module


def check_objects_found(objects: list[str], changed_files: set[str]) -> None:
    if not objects:
        raise BuildError(
            "the patch touches no object built with this config "
            f"({', '.join(sorted(changed_files))}); enable the code it patches or pick another config"
        )


def group_by_parent(objects: list[str], parents: dict[str, str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for obj in objects:
        groups[parent_of(obj, parents)[0]].append(obj)
    return groups


def select_targets(objects: list[str], build_dir: Path, targets: tuple[str, ...]) -> list[str]:
    """Keep the objects whose parent is one of TARGETS (all of them when TARGETS is empty)."""
    if not targets:
        return objects
    parents = module_parents(build_dir)
    by_parent = group_by_parent(objects, parents)
    unknown = [target for target in targets if target not in by_parent]
    if unknown:
        raise BuildError(
            f"target={','.join(unknown)}: the patch changes nothing there; "
            f"it changes {', '.join(sorted(by_parent))}"
        )
    left_out = sorted(
        obj for parent, group in by_parent.items() if parent not in targets for obj in group
    )
    if left_out:
        log.info("target= leaves out %s", " ".join(left_out))
    return sorted(obj for target in targets for obj in by_parent[target])
