"""Time `doit build` for a new one-file patch against the cached kernel.

Builds examples/meminfo-string.patch first (from the cache when warm), then
times a build of examples/cmdline-mark.patch, a different patch, and a
rerun of it with nothing changed. Prints wall times in seconds and checks
that neither kernel build ran again.

    .venv/bin/python benchmarks/second_patch.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def build(patch: str, out: Path, db: Path) -> tuple[float, str]:
    start = time.monotonic()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "doit",
            "--db-file",
            str(db),
            "build",
            f"patch={patch}",
            f"out={out}",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - start
    if completed.returncode != 0:
        sys.exit(f"build of {patch} failed:\n{completed.stderr[-2000:]}")
    return elapsed, completed.stdout


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        db = folder / "doit.db"
        first, _ = build("examples/meminfo-string.patch", folder, db)
        second, output = build("examples/cmdline-mark.patch", folder, db)
        rerun, rerun_output = build("examples/cmdline-mark.patch", folder, db)
    rebuilt = [line for line in output.splitlines() if line.startswith("run   kernel")]
    print(f"first patch (kernel from cache if warm): {first:6.1f} s")
    print(f"second, different one-file patch:       {second:6.1f} s")
    print(f"rerun with nothing changed:             {rerun:6.1f} s")
    print(f"kernel builds during the second patch:  {len(rebuilt)}")
    print(f"tasks run during the rerun:             {rerun_output.count('run   ')}")


if __name__ == "__main__":
    main()
