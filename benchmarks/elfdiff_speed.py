"""Time elfdiff on the largest object of the cached comparison build, and on
a typical one including interpreter start.

The "patched" object is a copy of the original with one byte changed in one
function that ftrace can patch, so exactly one function differs.

    .venv/bin/python benchmarks/elfdiff_speed.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from elfdiff.diff import DiffRequest, diff_objects  # noqa: E402
from elfdiff.elf import read_object  # noqa: E402
from steps.diffing import STRUCT_VARIABLES  # noqa: E402
from steps.objects import SKIPPED_PREFIXES, SKIPPED_SUFFIXES  # noqa: E402
from steps.settings import load_settings  # noqa: E402


def largest_object(cmp_dir: Path) -> Path:
    candidates = [
        path
        for path in cmp_dir.rglob("*.o")
        if not str(path.relative_to(cmp_dir)).startswith(SKIPPED_PREFIXES)
        and not path.name.endswith(SKIPPED_SUFFIXES)
    ]
    return max(candidates, key=lambda path: path.stat().st_size)


def change_one_function(original: Path, copy: Path) -> str:
    """Copy ORIGINAL to COPY with one byte of one traceable function flipped."""
    obj = read_object(original)
    for section in obj.sections:
        if not section.name.startswith(".text.") or section.rela is None or section.sh_size < 32:
            continue
        if any(r.symbol.name == "__fentry__" for r in section.rela.relocations):
            data = bytearray(original.read_bytes())
            offset = _section_offset(original, section.index) + section.sh_size - 2
            data[offset] ^= 0x01
            copy.write_bytes(data)
            return section.name
    raise SystemExit(f"no traceable function in {original}")


def _section_offset(path: Path, index: int) -> int:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as stream:
        return ELFFile(stream).get_section(index)["sh_offset"]


def main() -> None:
    build = load_settings({}).build
    if not (build / "cmp" / "vmlinux").is_file():
        raise SystemExit(f"no comparison build in {build}: run `doit build` once first")
    for struct, size in json.loads((build / "struct-sizes.json").read_text()).items():
        os.environ.setdefault(STRUCT_VARIABLES[struct], str(size))
    vmlinux, symvers = build / "run" / "vmlinux", build / "run" / "Module.symvers"
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        original = largest_object(build / "cmp")
        patched = folder / "patched.o"
        changed = change_one_function(original, patched)
        start = time.monotonic()
        request = DiffRequest(
            original, patched, "vmlinux", vmlinux, symvers, "bench", folder / "out.o"
        )
        diff_objects(request)
        largest = time.monotonic() - start

        typical = build / "cmp" / "fs" / "proc" / "meminfo.o"
        shutil.copy(typical, folder / "meminfo.o")
        change_one_function(typical, folder / "meminfo-patched.o")
        command = [
            sys.executable,
            "-m",
            "elfdiff",
            str(typical),
            str(folder / "meminfo-patched.o"),
            "vmlinux",
            str(vmlinux),
            str(symvers),
            "bench",
            str(folder / "out2.o"),
        ]
        start = time.monotonic()
        subprocess.run(command, cwd=PROJECT, check=True, capture_output=True)
        typical_time = time.monotonic() - start
    size = original.stat().st_size / 1e6
    print(
        f"largest object: {original.relative_to(build / 'cmp')} ({size:.1f} MB), changed {changed}"
    )
    print(f"  diff in process:                {largest:5.2f} s (reading vmlinux symbols included)")
    print(f"typical object fs/proc/meminfo.o: {typical_time:5.2f} s with interpreter start")


if __name__ == "__main__":
    main()
