"""Tests of the kpatch-macros.h marks in elfdiff, on objects that gcc builds at test time.

The cases include the real kmod/kpatch-macros.h; stand-ins for the few
kernel headers it needs sit in tests/elfdiff_cases/include.
"""

import dataclasses
import io
import logging
import struct
import subprocess
from pathlib import Path

import pytest
from elfdiff_helpers import (
    CASES,
    KERNEL_CFLAGS,
    SYMVERS,
    Build,
    compile_case,
    link_parent,
    run_command,
)
from elftools.elf.elffile import ELFFile

from elfdiff.diff import diff_objects
from elfdiff.errors import ElfDiffError, NoChange, UnsupportedChange

PROJECT = Path(__file__).resolve().parent.parent
MARK_CFLAGS = KERNEL_CFLAGS + (
    f"-I{CASES / 'include'}",
    f"-I{PROJECT / 'kmod'}",
    "-DCONFIG_X86_64",
)


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    """Return a function that builds a mark case once per session."""
    cache: dict[tuple, Build] = {}
    root = tmp_path_factory.mktemp("marks")

    def build(case: str, defines: tuple[str, ...], output: Path) -> Build:
        key = (case, defines)
        if key not in cache:
            directory = root / "-".join(key[:1] + defines)
            original = compile_case(case, directory / "original", (), MARK_CFLAGS)
            patched = compile_case(case, directory / "patched", defines, MARK_CFLAGS)
            other = compile_case("other", directory / "other")
            parent = link_parent([other, original], directory / "vmlinux")
            symvers = directory / "Module.symvers"
            symvers.write_text(SYMVERS)
            cache[key] = Build(original, patched, parent, symvers, directory / "output.o")
        return dataclasses.replace(cache[key], output=output)

    return build


@pytest.fixture
def case(builds, tmp_path):
    """Build a mark case with its output in this test's temporary folder."""

    def build(name: str, *defines: str) -> Build:
        return builds(name, defines, tmp_path / "output.o")

    return build


def read_elf(path: Path) -> ELFFile:
    return ELFFile(io.BytesIO(path.read_bytes()))


def section_names(path: Path) -> list[str]:
    return [section.name for section in read_elf(path).iter_sections()]


def defined_symbol(path: Path, name: str):
    for symbol in read_elf(path).get_section_by_name(".symtab").iter_symbols():
        if symbol.name == name and symbol["st_shndx"] != "SHN_UNDEF":
            return symbol
    return None


def callback_records(path: Path, kind: str) -> list[tuple[str, str]]:
    """Decode .kpatch.callbacks.KIND of PATH into (callback symbol, object name) pairs."""
    elf = read_elf(path)
    section = elf.get_section_by_name(f".kpatch.callbacks.{kind}")
    rela = elf.get_section_by_name(f".rela.kpatch.callbacks.{kind}")
    symtab = elf.get_section(rela["sh_link"])
    strings = elf.get_section_by_name(".kpatch.strings").data()
    fields = {}
    for relocation in rela.iter_relocations():
        symbol = symtab.get_symbol(relocation["r_info_sym"])
        if symbol["st_info"]["type"] == "STT_SECTION":
            name = elf.get_section(symbol["st_shndx"]).name
            assert name == ".kpatch.strings"
            start = relocation["r_addend"]
            text = strings[start : strings.index(b"\0", start)].decode()
        else:
            text = symbol.name
        fields[relocation["r_offset"]] = text
    return [(fields[offset], fields[offset + 8]) for offset in range(0, section.data_size, 16)]


# Callbacks.


def test_callbacks_carried(case):
    build = case("callbacks", "PATCHED")
    result = diff_objects(build.request())
    assert result.changed_functions == ("demo_show",)
    assert set(result.new_functions) == {"demo_post_patch", "demo_pre_unpatch"}
    assert defined_symbol(build.output, "demo_post_patch") is not None
    assert defined_symbol(build.output, "demo_pre_unpatch") is not None


def test_callback_records_objname(case):
    build = case("callbacks", "PATCHED")
    diff_objects(build.request())
    assert callback_records(build.output, "post_patch") == [("demo_post_patch", "vmlinux")]
    assert callback_records(build.output, "pre_unpatch") == [("demo_pre_unpatch", "vmlinux")]


def test_callback_objname_module(case):
    """A source file of a module names that module in its callback records."""
    build = case("callbacks", "PATCHED")
    request = dataclasses.replace(build.request(), parent_name="demo_module")
    diff_objects(request)
    assert callback_records(build.output, "post_patch") == [("demo_post_patch", "demo_module")]


def test_absent_callback_kinds(case):
    build = case("callbacks", "PATCHED")
    diff_objects(build.request())
    names = section_names(build.output)
    assert ".kpatch.callbacks.pre_patch" not in names
    assert ".kpatch.callbacks.post_unpatch" not in names


def test_callbacks_only_patch(case):
    """A patch that only adds callbacks changes no function but still has output."""
    build = case("callbacks", "CALLBACKS_ONLY")
    result = diff_objects(build.request())
    assert result.changed_functions == ()
    assert set(result.new_functions) == {"demo_post_patch", "demo_pre_unpatch"}
    assert read_elf(build.output).get_section_by_name(".kpatch.funcs").data_size == 0
    assert callback_records(build.output, "post_patch") == [("demo_post_patch", "vmlinux")]


def test_callbacks_in_linker_script(case, tmp_path):
    """kmod/kpatch.lds bounds each callback array inside the allocated .kpatch.funcs.

    Guards against a start symbol before alignment padding: after the 56-byte
    function record, the 16-byte aligned post_patch array began 8 bytes after
    its start symbol, and the hook read the padding as a record.
    """
    build = case("callbacks", "PATCHED")
    diff_objects(build.request())
    linked = tmp_path / "linked.o"
    script = PROJECT / "kmod" / "kpatch.lds"
    run_command(["ld", "-r", "-T", str(script), "-o", str(linked), str(build.output)])
    elf = read_elf(linked)
    values = {
        symbol.name: symbol["st_value"]
        for symbol in elf.get_section_by_name(".symtab").iter_symbols()
        if symbol.name.startswith("__kpatch_")
    }
    funcs = elf.get_section_by_name(".kpatch.funcs")
    assert funcs["sh_flags"] & 0x2
    assert values["__kpatch_funcs_end"] - values["__kpatch_funcs"] == 56
    assert (
        values["__kpatch_callbacks_post_patch_end"] - values["__kpatch_callbacks_post_patch"] == 16
    )
    assert (
        values["__kpatch_callbacks_pre_unpatch_end"] - values["__kpatch_callbacks_pre_unpatch"]
        == 16
    )
    assert values["__kpatch_callbacks_pre_patch_end"] == values["__kpatch_callbacks_pre_patch"]
    assert elf.get_section_by_name(".kpatch.callbacks.post_patch") is None


def test_callback_record_layout(case):
    """Both pointer fields of a record are left to relocations: the data is zero."""
    build = case("callbacks", "PATCHED")
    diff_objects(build.request())
    data = read_elf(build.output).get_section_by_name(".kpatch.callbacks.post_patch").data()
    assert struct.unpack("<QQ", data) == (0, 0)


# KPATCH_IGNORE_FUNCTION.


def test_side_effect_changes_unmarked(case):
    """Without the mark, the changed constant makes demo_side_effect a changed function."""
    build = case("ignore_function", "PATCHED")
    result = diff_objects(build.request())
    assert set(result.changed_functions) == {"demo_show", "demo_side_effect"}


def test_ignored_function_left_out(case):
    build = case("ignore_function", "PATCHED", "IGNORE")
    result = diff_objects(build.request())
    assert result.changed_functions == ("demo_show",)
    assert defined_symbol(build.output, "demo_side_effect") is None
    assert ".text.demo_side_effect" not in section_names(build.output)


def test_ignore_lists_not_in_output(case):
    build = case("ignore_function", "PATCHED", "IGNORE")
    diff_objects(build.request())
    names = section_names(build.output)
    assert not [name for name in names if name.startswith((".kpatch.ignore", ".rela.kpatch.ig"))]
    assert defined_symbol(build.output, "__kpatch_ignore_func_demo_side_effect") is None


def test_ignored_only_change(case):
    build = case("ignore_function", "SIDE_EFFECT_ONLY", "IGNORE")
    with pytest.raises(NoChange):
        diff_objects(build.request())


def test_ignore_unchanged_warns(case, caplog):
    build = case("ignore_function", "PATCHED", "IGNORE", "IGNORE_UNCHANGED")
    with caplog.at_level(logging.WARNING, logger="elfdiff.marks"):
        result = diff_objects(build.request())
    assert result.changed_functions == ("demo_show",)
    assert "demo_unchanged has no change" in caplog.text


def test_ignore_new_function_rejected(case):
    build = case("ignore_function", "PATCHED", "IGNORE_NEW")
    with pytest.raises(UnsupportedChange, match=r"KPATCH_IGNORE_FUNCTION\(demo_added\)"):
        diff_objects(build.request())


# KPATCH_IGNORE_SECTION.


def test_changed_table_unmarked(case):
    build = case("ignore_section", "PATCHED")
    with pytest.raises(UnsupportedChange, match=r"section \.demo\.table changed"):
        diff_objects(build.request())


def test_ignored_section_accepted(case):
    build = case("ignore_section", "PATCHED", "IGNORE")
    result = diff_objects(build.request())
    assert result.changed_functions == ("demo_show",)
    assert ".demo.table" not in section_names(build.output)


def test_ignore_missing_section(case):
    build = case("ignore_section", "PATCHED", "IGNORE_MISSING")
    with pytest.raises(ElfDiffError, match=r"section \.demo\.missing"):
        diff_objects(build.request())


def test_changed_init_unmarked(case):
    build = case("ignore_init", "PATCHED")
    with pytest.raises(UnsupportedChange, match="__init function demo_init"):
        diff_objects(build.request())


def test_ignored_init_function(case):
    """An ignored function in the shared .init.text leaves the section unchanged."""
    build = case("ignore_init", "PATCHED", "IGNORE")
    result = diff_objects(build.request())
    assert result.changed_functions == ("demo_show",)
    assert ".init.text" not in section_names(build.output)


# KPATCH_STATIC_CALL.


def test_static_call_through_key(case):
    """The patched code loads the target from the key and never calls the trampoline."""
    build = case("static_call_macro", "PATCHED")
    diff_objects(build.request())
    elf = read_elf(build.output)
    rela = elf.get_section_by_name(".rela.text.demo_show")
    symtab = elf.get_section(rela["sh_link"])
    targets = [symtab.get_symbol(r["r_info_sym"]).name for r in rela.iter_relocations()]
    assert [name for name in targets if "__SCK__demo_hook" in name]
    assert not [name for name in targets if "__SCT__" in name]


def test_force_unsafe_compile_error(tmp_path):
    """KPATCH_FORCE_UNSAFE has no livepatch counterpart, so the patch does not compile."""
    source = tmp_path / "force.c"
    source.write_text(
        '#include "kpatch-macros.h"\nint demo_show(int x) { return x; }\n'
        "KPATCH_FORCE_UNSAFE(demo_show);\n"
    )
    completed = subprocess.run(
        ["gcc", "-c", *MARK_CFLAGS, str(source), "-o", str(tmp_path / "force.o")],
        capture_output=True,
        text=True,
    )
    assert completed.returncode != 0
    assert "KPATCH_FORCE_UNSAFE(demo_show) is not supported" in completed.stderr
