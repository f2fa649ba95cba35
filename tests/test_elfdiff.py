"""Tests of elfdiff on objects that gcc builds from tests/elfdiff_cases at test time."""

import dataclasses
import random
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from elfdiff_helpers import (
    Build,
    CaseCache,
    compile_case,
    defined_symbol,
    function_records,
    read_elf,
    relocation_symbols,
    run_command,
    symbol_names,
)

from elfdiff.cli import main
from elfdiff.diff import diff_objects
from elfdiff.elf import read_object
from elfdiff.errors import ElfDiffError, NoChange, UnsupportedChange

STRUCT_SIZE_VARIABLES = (
    "BUG_STRUCT_SIZE",
    "EX_STRUCT_SIZE",
    "JUMP_STRUCT_SIZE",
    "ALT_STRUCT_SIZE",
    "PARA_STRUCT_SIZE",
    "STATIC_CALL_STRUCT_SIZE",
    "PRINTK_INDEX_STRUCT_SIZE",
    "ORC_STRUCT_SIZE",
)


@pytest.fixture(autouse=True)
def hermetic(monkeypatch):
    """Keep struct sizes from the calling shell out of the tests."""
    for variable in STRUCT_SIZE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def struct_sizes(monkeypatch):
    """Set the special-section entry sizes of the Linux 6.1 x86_64 kernel the pipeline builds."""
    monkeypatch.setenv("BUG_STRUCT_SIZE", "12")
    monkeypatch.setenv("EX_STRUCT_SIZE", "12")
    monkeypatch.setenv("JUMP_STRUCT_SIZE", "16")
    monkeypatch.setenv("ALT_STRUCT_SIZE", "12")
    monkeypatch.setenv("STATIC_CALL_STRUCT_SIZE", "8")


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    """Return a function that builds a case once per session and gives each test its own output."""
    return CaseCache(tmp_path_factory.mktemp("cases")).build


@pytest.fixture
def case(builds, tmp_path):
    """Build a case with its output in this test's temporary folder."""

    def build(name: str, defines: tuple[str, ...] = ("PATCHED",)) -> Build:
        return builds(name, tmp_path / "output.o", defines)

    return build


def parent_symbol(parent: Path, name: str):
    for symbol in read_elf(parent).get_section_by_name(".symtab").iter_symbols():
        if symbol.name == name:
            return symbol
    raise AssertionError(f"{name} not found in {parent}")


# A changed function and what it refers to.


def test_changed_function_result(case):
    build = case("changed")
    result = diff_objects(build.request())
    assert result.changed_functions == ("demo_show",)
    assert result.new_functions == ()


def test_changed_function_output(case):
    build = case("changed")
    diff_objects(build.request())
    assert defined_symbol(build.output, "demo_show") is not None
    assert defined_symbol(build.output, "demo_unchanged") is None
    assert read_elf(build.output).get_section_by_name(".text.demo_unchanged") is None


def test_changed_function_is_local(case):
    build = case("changed")
    diff_objects(build.request())
    assert defined_symbol(build.output, "demo_show")["st_info"]["bind"] == "STB_LOCAL"


def test_funcs_record(case):
    build = case("changed")
    diff_objects(build.request())
    records = function_records(build.output)
    original = parent_symbol(build.parent, "demo_show")
    assert len(records) == 1
    assert records[0]["name"] == "demo_show"
    assert records[0]["objname"] == "vmlinux"
    assert records[0]["old_addr"] == original["st_value"]
    assert records[0]["old_size"] == original["st_size"]
    assert records[0]["new_size"] == defined_symbol(build.output, "demo_show")["st_size"]
    assert records[0]["sympos"] == 0


def test_funcs_record_target(case):
    build = case("changed")
    diff_objects(build.request())
    assert relocation_symbols(build.output, ".rela.kpatch.funcs")[0] == "demo_show"


def test_output_readelf(case):
    build = case("changed")
    diff_objects(build.request())
    completed = subprocess.run(
        ["readelf", "-a", "--wide", str(build.output)], capture_output=True, text=True
    )
    assert completed.returncode == 0
    assert "Warning" not in completed.stderr
    assert "Error" not in completed.stderr


def test_output_links(case, tmp_path):
    build = case("changed")
    diff_objects(build.request())
    run_command(["ld", "-r", "-o", str(tmp_path / "linked.o"), str(build.output)])
    assert "demo_show" in symbol_names(tmp_path / "linked.o")


def test_unchanged_static_klp_symbol(case):
    build = case("changed")
    result = diff_objects(build.request())
    assert ".klp.sym.vmlinux.scale_unique,0" in result.klp_symbols


def test_namesake_static_sympos(case):
    """other.c, linked first into the parent, has its own static count_items."""
    build = case("changed")
    result = diff_objects(build.request())
    assert ".klp.sym.vmlinux.count_items,2" in result.klp_symbols


def test_changed_static_sympos(case):
    build = case("changed", defines=("COUNT_PATCHED",))
    diff_objects(build.request())
    records = function_records(build.output)
    assert [record["name"] for record in records] == ["count_items"]
    assert records[0]["sympos"] == 2


def test_object_as_parent(case):
    build = case("changed")
    result = diff_objects(build.request(parent=build.original))
    assert ".klp.sym.vmlinux.count_items,0" in result.klp_symbols


def test_readelf_text_parent(case, tmp_path):
    build = case("changed")
    listing = tmp_path / "vmlinux.symtab"
    completed = subprocess.run(
        ["readelf", "-s", "--wide", str(build.parent)], capture_output=True, text=True, check=True
    )
    listing.write_text(completed.stdout)
    from_text = diff_objects(build.request(parent=listing))
    from_elf = diff_objects(build.request())
    assert from_text.klp_symbols == from_elf.klp_symbols


def test_exported_global_plain(case):
    build = case("changed")
    diff_objects(build.request())
    printk = [name for name in symbol_names(build.output) if "printk" in name]
    assert printk == ["printk"]


def test_unexported_global_klp(case):
    build = case("changed")
    result = diff_objects(build.request())
    assert ".klp.sym.vmlinux.nr_hidden,0" in result.klp_symbols


def test_klp_symbols_undefined(case):
    build = case("changed")
    diff_objects(build.request())
    for name in symbol_names(build.output):
        if name.startswith(".klp.sym."):
            assert defined_symbol(build.output, name) is None, name


# New code and changed literals.


def test_new_function_included(case):
    build = case("new_function")
    result = diff_objects(build.request())
    assert result.new_functions == ("clamp_value",)
    assert defined_symbol(build.output, "clamp_value") is not None


def test_new_function_no_record(case):
    build = case("new_function")
    diff_objects(build.request())
    assert [record["name"] for record in function_records(build.output)] == ["demo_show"]


def test_changed_string(case):
    build = case("string")
    result = diff_objects(build.request())
    assert result.changed_functions == ("demo_show",)


def test_changed_string_carried(case):
    build = case("string")
    diff_objects(build.request())
    elf = read_elf(build.output)
    strings = b"".join(
        section.data() for section in elf.iter_sections() if section.name.startswith(".rodata")
    )
    assert b"patched value %d\n" in strings
    assert b"unchanged %d\n" not in strings


def test_no_change(case):
    build = case("changed", defines=("UNRELATED",))
    with pytest.raises(NoChange):
        diff_objects(build.request())


def test_no_change_writes_nothing(case):
    build = case("changed", defines=("UNRELATED",))
    with pytest.raises(NoChange):
        diff_objects(build.request())
    assert not build.output.exists()


# Changes that a livepatch cannot carry.


def test_static_data_unsupported(case):
    build = case("static_data")
    with pytest.raises(UnsupportedChange, match="limits"):
        diff_objects(build.request())


def test_init_unsupported(case):
    build = case("init")
    with pytest.raises(UnsupportedChange, match="__init function demo_init"):
        diff_objects(build.request())


def test_notrace_unsupported(case):
    build = case("notrace")
    with pytest.raises(UnsupportedChange, match="demo_notrace .*no ftrace call site"):
        diff_objects(build.request())


# Symbols with compiler-made names.


def test_static_local_by_user(case):
    """The added third_counter renumbers the count.N of the other two functions.

    second_counter's count is count.0 in the parent but count.1 in the patched
    object, where count.1 of the original belongs to first_counter. elfdiff
    once named the patched symbol, so the patch changed the wrong counter.
    """
    build = case("static_local")
    result = diff_objects(build.request())
    assert result.klp_symbols == (".klp.sym.vmlinux.count.0,0",)


def test_static_local_new_included(case):
    build = case("static_local")
    result = diff_objects(build.request())
    assert result.new_functions == ("third_counter",)
    assert any(
        name.startswith("count.") and defined_symbol(build.output, name) is not None
        for name in symbol_names(build.output)
    )


def test_cold_child_pulls_parent(case):
    """A change only in demo_sum.cold, which gcc puts alone in .text.unlikely.demo_sum.

    elfdiff once rejected it as a function sharing its section with other code.
    """
    build = case("cold", defines=("COLD_PATCHED",))
    result = diff_objects(build.request())
    assert result.changed_functions == ("demo_sum",)
    assert defined_symbol(build.output, "demo_sum.cold") is not None


def test_cold_child_parent_local(case):
    """A parent pulled in by its changed .cold child was once left STB_GLOBAL."""
    build = case("cold", defines=("COLD_PATCHED",))
    diff_objects(build.request())
    assert defined_symbol(build.output, "demo_sum")["st_info"]["bind"] == "STB_LOCAL"


def test_cold_child_follows_parent(case):
    """demo_sum changes but demo_sum.cold does not.

    elfdiff once pointed the new demo_sum at the old demo_sum.cold, which
    jumps back into the old demo_sum.
    """
    build = case("cold", defines=("HOT_PATCHED",))
    result = diff_objects(build.request())
    assert result.changed_functions == ("demo_sum",)
    assert defined_symbol(build.output, "demo_sum.cold") is not None
    assert not any("demo_sum.cold" in name for name in result.klp_symbols)


def test_once_statics_fresh(case):
    build = case("once")
    result = diff_objects(build.request())
    names = symbol_names(build.output)
    already_done = [name for name in names if name.startswith("__already_done")]
    warned = [name for name in names if name.startswith("__warned")]
    assert len(already_done) == 1
    assert defined_symbol(build.output, already_done[0]) is not None
    assert len(warned) == 1
    assert defined_symbol(build.output, warned[0]) is not None
    assert result.klp_symbols == ()


# Special sections.


def test_bug_table_filtered(case, struct_sizes):
    build = case("bug_table")
    diff_objects(build.request())
    assert read_elf(build.output).get_section_by_name("__bug_table").data_size == 12


def test_bug_table_target(case, struct_sizes):
    build = case("bug_table")
    diff_objects(build.request())
    elf = read_elf(build.output)
    rela = elf.get_section_by_name(".rela__bug_table")
    relocations = list(rela.iter_relocations())
    symbol = elf.get_section(rela["sh_link"]).get_symbol(relocations[0]["r_info_sym"])
    text = elf.get_section(symbol["st_shndx"]).data()
    # bug_addr_disp is PC32 at the entry's start, so the addend is the ud2 offset.
    offset = symbol["st_value"] + relocations[0]["r_addend"]
    assert len(relocations) == 1
    assert symbol.name == "demo_first"
    assert text[offset : offset + 2] == b"\x0f\x0b"


def test_bug_table_needs_size(case):
    build = case("bug_table")
    with pytest.raises(ElfDiffError, match="BUG_STRUCT_SIZE"):
        diff_objects(build.request())


def test_mcount_loc_filtered(case):
    build = case("changed")
    diff_objects(build.request())
    assert relocation_symbols(build.output, ".rela__mcount_loc") == ["demo_show"]


def test_mcount_loc_size(case):
    build = case("changed")
    diff_objects(build.request())
    assert read_elf(build.output).get_section_by_name("__mcount_loc").data_size == 8


# Bad input through the command line.


def run_cli(capsys, build: Build) -> tuple[int, list[str]]:
    code = main(build.arguments())
    errors = capsys.readouterr().err.splitlines()
    return code, errors


def test_cli_written(case, capsys):
    build = case("changed")
    code = main(build.arguments())
    assert code == 0
    assert capsys.readouterr().out == "changed function: demo_show\n"


def test_cli_no_change(case, capsys):
    build = case("changed", defines=("UNRELATED",))
    code, errors = run_cli(capsys, build)
    assert code == 3
    assert len(errors) == 1


def test_cli_unsupported(case, capsys):
    build = case("static_data")
    code, errors = run_cli(capsys, build)
    assert code == 2
    assert errors[0].startswith("error: static data limits")


@pytest.fixture(scope="session")
def bad_inputs(builds, tmp_path_factory) -> dict[str, Build]:
    """Builds of the changed case with one input replaced by something elfdiff must reject."""
    directory = tmp_path_factory.mktemp("bad")
    build = builds("changed", directory / "output.o")
    truncated = directory / "truncated.o"
    truncated.write_bytes(build.patched.read_bytes()[:100])
    text = directory / "text.o"
    text.write_text("int demo_show(int x);\n")
    i386 = compile_case("changed", directory / "i386", ("PATCHED",), ("-c", "-O2", "-m32"))
    other = compile_case("string", directory / "string", ("PATCHED",))
    return {
        "truncated": dataclasses.replace(build, patched=truncated),
        "not ELF": dataclasses.replace(build, patched=text),
        "i386": dataclasses.replace(build, patched=i386),
        "other source": dataclasses.replace(build, patched=other),
        "missing": dataclasses.replace(build, patched=directory / "missing.o"),
        "missing symvers": dataclasses.replace(build, symvers=directory / "missing.symvers"),
        "missing parent": dataclasses.replace(build, parent=directory / "missing"),
        "text parent": dataclasses.replace(build, parent=text),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "truncated",
        "not ELF",
        "i386",
        "other source",
        "missing",
        "missing symvers",
        "missing parent",
        "text parent",
    ],
)
def test_cli_bad_input(bad_inputs, capsys, tmp_path, kind):
    bad = dataclasses.replace(bad_inputs[kind], output=tmp_path / "output.o")
    code, errors = run_cli(capsys, bad)
    assert code == 1
    assert len(errors) == 1
    assert errors[0].startswith("error: ")
    assert not bad.output.exists()


def test_cli_i386_message(bad_inputs, capsys):
    _, errors = run_cli(capsys, bad_inputs["i386"])
    assert "not an x86_64 object" in errors[0]


def test_cli_other_source_message(bad_inputs, capsys):
    _, errors = run_cli(capsys, bad_inputs["other source"])
    assert "different sources" in errors[0]


def test_cli_no_traceback(case, tmp_path):
    build = case("changed")
    truncated = tmp_path / "truncated.o"
    truncated.write_bytes(build.patched.read_bytes()[:100])
    arguments = dataclasses.replace(build, patched=truncated).arguments()
    completed = subprocess.run(
        [sys.executable, "-m", "elfdiff", *arguments], capture_output=True, text=True
    )
    assert completed.returncode == 1
    assert completed.stderr.startswith("error: ")
    assert completed.stderr.count("\n") == 1
    assert "Traceback" not in completed.stderr


# Corrupted objects, on which the reader must raise ElfDiffError and nothing else.

ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")


def corrupt(raw: bytes, rng: random.Random) -> bytes:
    """Return RAW damaged in one of four ways that RNG picks."""
    data = bytearray(raw)
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(data[: rng.randrange(len(data))])
    if kind == 1:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(ELF_HEADER.size)] ^= 1 << rng.randrange(8)
        return bytes(data)
    if kind == 2:
        header = ELF_HEADER.unpack_from(data)
        e_shoff, e_shnum = header[6], header[12]
        index = rng.randrange(e_shnum)
        offset = e_shoff + index * SECTION_HEADER.size
        fields = list(SECTION_HEADER.unpack_from(data, offset))
        # sh_name, sh_offset, sh_size, sh_link, sh_info or sh_entsize.
        position = rng.choice((0, 4, 5, 6, 7, 9))
        limit = 0xFFFFFFFF if position in (0, 6, 7) else 0xFFFFFFFFFFFFFFFF
        fields[position] = rng.choice((0, 1, len(raw), len(raw) * 2, limit, rng.randrange(limit)))
        SECTION_HEADER.pack_into(data, offset, *fields)
        return bytes(data)
    for _ in range(rng.randint(1, 16)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def timeout(signum, frame):
    raise TimeoutError("the reader took more than 2 seconds")


def test_reader_fuzz(case, tmp_path):
    raw = case("bug_table").original.read_bytes()
    rng = random.Random(20240601)
    target = tmp_path / "corrupt.o"
    previous = signal.signal(signal.SIGALRM, timeout)
    try:
        for seed in range(200):
            target.write_bytes(corrupt(raw, rng))
            signal.alarm(2)
            try:
                read_object(target)
            except ElfDiffError:
                pass
            except Exception as error:
                pytest.fail(f"variant {seed}: {type(error).__name__}: {error}")
            finally:
                signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, previous)


def section_header_offset(raw: bytes, index: int) -> int:
    header = ELF_HEADER.unpack_from(raw)
    return header[6] + index * SECTION_HEADER.size


def set_section_field(raw: bytes, index: int, position: int, value: int) -> bytes:
    """Return RAW with field POSITION of section header INDEX set to VALUE."""
    data = bytearray(raw)
    offset = section_header_offset(raw, index)
    fields = list(SECTION_HEADER.unpack_from(data, offset))
    fields[position] = value
    SECTION_HEADER.pack_into(data, offset, *fields)
    return bytes(data)


def test_reader_huge_strtab_offset(case, tmp_path):
    """An sh_offset of 2**64 - 1 on .shstrtab once raised OverflowError in pyelftools."""
    raw = case("changed").original.read_bytes()
    shstrndx = ELF_HEADER.unpack_from(raw)[13]
    target = tmp_path / "corrupt.o"
    target.write_bytes(set_section_field(raw, shstrndx, 4, 2**64 - 1))
    with pytest.raises(ElfDiffError):
        read_object(target)


def test_reader_bad_alignment(case, tmp_path):
    """A .text.demo_show with sh_addralign 0x7f00000000000010 in the patched object.

    The writer once padded the output to that alignment and failed with MemoryError.
    """
    build = case("changed")
    obj = read_object(build.patched)
    index = next(s.index for s in obj.sections if s.name == ".text.demo_show")
    corrupt_object = tmp_path / "patched.o"
    corrupt_object.write_bytes(
        set_section_field(build.patched.read_bytes(), index, 8, 0x7F00000000000010)
    )
    with pytest.raises(ElfDiffError, match="sh_addralign"):
        diff_objects(dataclasses.replace(build, patched=corrupt_object).request())
