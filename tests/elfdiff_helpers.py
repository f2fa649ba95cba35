"""Build elfdiff inputs at test time from the C files in tests/elfdiff_cases.

Each case file is compiled twice with the same file name, the second time
with ``-DPATCHED`` (or other defines), so that both objects carry the same
STT_FILE symbol. The parent is a small executable linked from the original
object and ``other.c``, which plays the rest of vmlinux.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from elfdiff.diff import DiffRequest

CASES = Path(__file__).parent / "elfdiff_cases"

# The code generation flags of an x86_64 kernel build that matter to elfdiff.
KERNEL_CFLAGS = (
    "-O2",
    "-ffunction-sections",
    "-fdata-sections",
    "-pg",
    "-mfentry",
    "-mrecord-mcount",
    "-mcmodel=kernel",
    "-mno-red-zone",
    "-fno-PIE",
    "-fno-asynchronous-unwind-tables",
    "-fno-stack-protector",
    "-fno-common",
    "-fno-strict-aliasing",
    "-fcf-protection=none",
    "-nostdinc",
    "-ffreestanding",
    "-mno-sse",
    "-mno-mmx",
    "-mno-avx",
)

# Module.symvers lines: printk is exported by vmlinux, nr_hidden is not listed.
SYMVERS = "0x00000000\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n"


def run_command(command: list[str], cwd: Path | None = None) -> None:
    """Run COMMAND and fail with the pasteable command line and its output."""
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if completed.returncode != 0:
        raise AssertionError(
            f"command failed: {shlex.join(command)}\n{completed.stdout}{completed.stderr}"
        )


def compile_case(
    case: str,
    directory: Path,
    defines: tuple[str, ...] = (),
    flags: tuple[str, ...] = KERNEL_CFLAGS,
) -> Path:
    """Compile tests/elfdiff_cases/CASE.c into DIRECTORY/CASE.o.

    The source is copied into DIRECTORY first so that gcc writes the same
    STT_FILE name for every build of the case.
    """
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / f"{case}.c"
    source.write_text((CASES / f"{case}.c").read_text())
    target = directory / f"{case}.o"
    command = ["gcc", "-c", *flags]
    command += [f"-D{define}" for define in defines]
    command += [source.name, "-o", target.name]
    run_command(command, cwd=directory)
    return target


def link_parent(objects: list[Path], target: Path) -> Path:
    """Link OBJECTS into an executable that takes the place of vmlinux."""
    command = ["ld", "-e", "0", "--unresolved-symbols=ignore-all", "-o", str(target)]
    run_command(command + [str(path) for path in objects])
    return target


@dataclass(frozen=True)
class Build:
    """The inputs of one elfdiff run and the path of its output."""

    original: Path
    patched: Path
    parent: Path
    symvers: Path
    output: Path

    def request(self, parent: Path | None = None) -> DiffRequest:
        return DiffRequest(
            original=self.original,
            patched=self.patched,
            parent_name="vmlinux",
            parent_symtab=parent or self.parent,
            module_symvers=self.symvers,
            patch_name="livepatch_test",
            output=self.output,
        )

    def arguments(self) -> list[str]:
        """Return the command line arguments of create-diff-object for this build."""
        return [
            str(self.original),
            str(self.patched),
            "vmlinux",
            str(self.parent),
            str(self.symvers),
            "livepatch_test",
            str(self.output),
        ]


def build_case(
    case: str, directory: Path, patched_defines: tuple[str, ...] = ("PATCHED",)
) -> Build:
    """Compile both builds of CASE and link the parent from the original and other.c.

    other.c is linked first, so its symbols get the lower addresses.
    """
    original = compile_case(case, directory / "original")
    patched = compile_case(case, directory / "patched", patched_defines)
    other = compile_case("other", directory / "other")
    parent = link_parent([other, original], directory / "vmlinux")
    symvers = directory / "Module.symvers"
    symvers.write_text(SYMVERS)
    return Build(original, patched, parent, symvers, directory / "output.o")
