"""Build elfdiff inputs at test time from the C files in tests/elfdiff_cases.

Each case file is compiled twice with the same file name, the second time
with ``-DPATCHED`` (or other defines), so that both objects carry the same
STT_FILE symbol. The parent is a small executable linked from the original
object and ``other.c``, which plays the rest of vmlinux.
"""

from __future__ import annotations

import dataclasses
import io
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.descriptions import describe_reloc_type
from elftools.elf.elffile import ELFFile

from elfdiff.diff import DiffRequest
from elfdiff.output import KPATCH_FUNC

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

    def request(self, parent: Path | None = None, parent_name: str = "vmlinux") -> DiffRequest:
        return DiffRequest(
            original=self.original,
            patched=self.patched,
            parent_name=parent_name,
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
    case: str,
    directory: Path,
    patched_defines: tuple[str, ...] = ("PATCHED",),
    original_defines: tuple[str, ...] = (),
    flags: tuple[str, ...] = KERNEL_CFLAGS,
    symvers: str = SYMVERS,
) -> Build:
    """Compile both builds of CASE and link the parent from the original and other.c.

    other.c is linked first, so its symbols get the lower addresses.
    """
    original = compile_case(case, directory / "original", original_defines, flags)
    patched = compile_case(case, directory / "patched", patched_defines, flags)
    other = compile_case("other", directory / "other")
    parent = link_parent([other, original], directory / "vmlinux")
    symvers_path = directory / "Module.symvers"
    symvers_path.write_text(symvers)
    return Build(original, patched, parent, symvers_path, directory / "output.o")


class CaseCache:
    """Builds each case once per session; every caller gets its own output path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.builds: dict[tuple, Build] = {}

    def build(self, case: str, output: Path, defines: tuple[str, ...] = ("PATCHED",), **options):
        key = (case, defines, tuple(sorted(options.items())))
        if key not in self.builds:
            folder = self.root / f"{case}-{len(self.builds)}"
            self.builds[key] = build_case(case, folder, defines, **options)
        return dataclasses.replace(self.builds[key], output=output)


# Readers of the output object.


def read_elf(path: Path) -> ELFFile:
    return ELFFile(io.BytesIO(path.read_bytes()))


def symbol_names(path: Path) -> set[str]:
    return {symbol.name for symbol in read_elf(path).get_section_by_name(".symtab").iter_symbols()}


def defined_symbol(path: Path, name: str):
    """Return the symbol NAME of PATH if the object defines it, else None."""
    for symbol in read_elf(path).get_section_by_name(".symtab").iter_symbols():
        if symbol.name == name and symbol["st_shndx"] != "SHN_UNDEF":
            return symbol
    return None


def relocations_of(path: Path, section_name: str) -> list[tuple[str, int, str, int]]:
    """Return (symbol name, r_offset, r_type name, r_addend) of each relocation in SECTION_NAME."""
    elf = read_elf(path)
    rela = elf.get_section_by_name(section_name)
    if rela is None:
        return []
    symtab = elf.get_section(rela["sh_link"])
    rows = []
    for relocation in rela.iter_relocations():
        symbol = symtab.get_symbol(relocation["r_info_sym"])
        name = symbol.name or elf.get_section(symbol["st_shndx"]).name
        r_type = describe_reloc_type(relocation["r_info_type"], elf)
        rows.append((name, relocation["r_offset"], r_type, relocation["r_addend"]))
    return rows


def relocation_symbols(path: Path, section_name: str) -> list[str]:
    return [row[0] for row in relocations_of(path, section_name)]


def function_records(path: Path) -> list[dict]:
    """Decode .kpatch.funcs of PATH, resolving the name strings through its relocations."""
    elf = read_elf(path)
    funcs = elf.get_section_by_name(".kpatch.funcs")
    strings = elf.get_section_by_name(".kpatch.strings").data()
    rela = elf.get_section_by_name(".rela.kpatch.funcs")
    addends = {
        relocation["r_offset"]: relocation["r_addend"] for relocation in rela.iter_relocations()
    }

    def string_at(offset: int) -> str:
        return strings[offset : strings.index(b"\0", offset)].decode()

    records = []
    for index, fields in enumerate(KPATCH_FUNC.iter_unpack(funcs.data())):
        base = index * KPATCH_FUNC.size
        records.append(
            {
                "new_size": fields[1],
                "old_addr": fields[2],
                "old_size": fields[3],
                "sympos": fields[4],
                "name": string_at(addends[base + 40]),
                "objname": string_at(addends[base + 48]),
            }
        )
    return records
