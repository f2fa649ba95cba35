"""Time the diff stage of a patch that changes several objects, serial and parallel.

Runs the patched build once, then the `diff` tasks with one process and
with two (the default on 2 cores), forgetting their results in between.
Prints wall times in seconds, and the CPU count.

    .venv/bin/python benchmarks/parallel_diff.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
# Three objects: kernel/sched/core.o and mm/page_alloc.o (1.7 and 1.2 MB; the
# changed lines are compiled out in the default config, so both diffs end in
# "no functional change" after a full comparison) and fs/proc/meminfo.o.
PATCHES = "benchmarks/patches/two-large-objects.patch,examples/meminfo-string.patch"


def doit(command: str, db: Path, *arguments: str) -> float:
    start = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "doit", command, "--db-file", str(db), *arguments],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - start
    if completed.returncode != 0:
        sys.exit(f"doit {command} {' '.join(arguments)} failed:\n{completed.stderr[-2000:]}")
    return elapsed


def main() -> None:
    variables = [f"patch={PATCHES}", "name=parallel-diff-benchmark"]
    with tempfile.TemporaryDirectory() as scratch:
        db = Path(scratch) / "doit.db"
        doit("run", db, "patched", "struct_sizes", *variables)
        times = {}
        for processes in (1, 2):
            doit("forget", db, "diff", *variables)
            times[processes] = doit("run", db, "-n", str(processes), "diff", *variables)
    print(f"CPUs: {len(os.sched_getaffinity(0))}")
    print(f"diff of 3 objects, 1 process:  {times[1]:5.2f} s")
    print(f"diff of 3 objects, 2 processes: {times[2]:5.2f} s")


if __name__ == "__main__":
    main()
