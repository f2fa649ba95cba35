"""Special sections in elfdiff's output: jump labels, static calls, __ex_table,
alternatives and ORC, from the cases jump_label.c, static_call_sites.c and
special_tables.c."""

import logging

import pytest
from elfdiff_helpers import SYMVERS, CaseCache, read_elf, relocations_of, symbol_names

from elfdiff.diff import diff_objects
from elfdiff.errors import UnsupportedChange

KEY_SYMVERS = (
    SYMVERS
    + "0x00000000\texported_key\tvmlinux\tEXPORT_SYMBOL\t\n"
    + "0x00000000\tmodule_key\tdrivers/demo/demo_keys\tEXPORT_SYMBOL\t\n"
    + "0x00000000\t__SCK__module_hook\tdrivers/demo/demo_keys\tEXPORT_SYMBOL\t\n"
    + "0x00000000\t__SCK__tp_func_demo_event\tdrivers/demo/demo_keys\tEXPORT_SYMBOL\t\n"
)
MODULE = "demo_mod"


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    return CaseCache(tmp_path_factory.mktemp("special")).build


@pytest.fixture(autouse=True)
def struct_sizes(monkeypatch):
    """Set the entry sizes of the Linux 6.1 x86_64 kernel the pipeline builds."""
    for variable, size in (
        ("BUG_STRUCT_SIZE", "12"),
        ("EX_STRUCT_SIZE", "12"),
        ("JUMP_STRUCT_SIZE", "16"),
        ("ALT_STRUCT_SIZE", "12"),
        ("STATIC_CALL_STRUCT_SIZE", "8"),
        ("ORC_STRUCT_SIZE", "6"),
    ):
        monkeypatch.setenv(variable, size)


def keyed(builds, tmp_path, case: str, define: str):
    return builds(case, tmp_path / "out.o", (define,), symvers=KEY_SYMVERS)


def section_size(path, name: str) -> int:
    section = read_elf(path).get_section_by_name(name)
    return 0 if section is None else section.data_size


# Jump labels: where the static key lives.


def test_jump_label_vmlinux_key(builds, tmp_path):
    """A key that vmlinux defines but does not export becomes a vmlinux klp relocation."""
    build = keyed(builds, tmp_path, "jump_label", "PATCH_VMLINUX_KEY")
    diff_objects(build.request())
    rows = relocations_of(build.output, ".rela__jump_table")
    assert [row[0] for row in rows] == [
        "demo_vmlinux_key",
        "demo_vmlinux_key",
        ".klp.sym.vmlinux.vmlinux_key,0",
    ]


def test_jump_label_entry_size(builds, tmp_path):
    build = keyed(builds, tmp_path, "jump_label", "PATCH_VMLINUX_KEY")
    diff_objects(build.request())
    assert section_size(build.output, "__jump_table") == 16


def test_jump_label_exported_key(builds, tmp_path):
    build = keyed(builds, tmp_path, "jump_label", "PATCH_EXPORTED_KEY")
    diff_objects(build.request())
    rows = relocations_of(build.output, ".rela__jump_table")
    assert rows[2][0] == "exported_key"
    assert rows[2][2] == "R_X86_64_PC64"


def test_jump_label_vmlinux_export_in_module(builds, tmp_path):
    """A module's patched code may use a key that vmlinux exports: a plain relocation."""
    build = keyed(builds, tmp_path, "jump_label", "PATCH_EXPORTED_KEY")
    diff_objects(build.request(parent_name=MODULE))
    rows = relocations_of(build.output, ".rela__jump_table")
    assert rows[2][0] == "exported_key"


def test_jump_label_local_key_vmlinux(builds, tmp_path):
    build = keyed(builds, tmp_path, "jump_label", "PATCH_LOCAL_KEY")
    diff_objects(build.request())
    rows = relocations_of(build.output, ".rela__jump_table")
    assert rows[2][0] == ".klp.sym.vmlinux.local_key,0"


def test_jump_label_local_key_module(builds, tmp_path):
    """The same static key in a module is resolved only when the module loads: rejected."""
    build = keyed(builds, tmp_path, "jump_label", "PATCH_LOCAL_KEY")
    with pytest.raises(UnsupportedChange, match="static key local_key of module demo_mod"):
        diff_objects(build.request(parent_name=MODULE))


def test_jump_label_module_export(builds, tmp_path):
    build = keyed(builds, tmp_path, "jump_label", "PATCH_MODULE_KEY")
    with pytest.raises(UnsupportedChange, match="module_key of module drivers/demo/demo_keys"):
        diff_objects(build.request(parent_name=MODULE))


def test_jump_label_module_export_hint(builds, tmp_path):
    build = keyed(builds, tmp_path, "jump_label", "PATCH_MODULE_KEY")
    with pytest.raises(UnsupportedChange, match="static_key_enabled"):
        diff_objects(build.request())


def test_jump_label_tracepoint_module_dropped(builds, tmp_path, caplog):
    """A module's tracepoint site is dropped: the function is patched without it."""
    build = keyed(builds, tmp_path, "jump_label", "PATCH_TRACEPOINT")
    with caplog.at_level(logging.WARNING, logger="elfdiff.keys"):
        result = diff_objects(build.request(parent_name=MODULE))
    assert result.changed_functions == ("demo_tracepoint",)
    assert section_size(build.output, "__jump_table") == 0
    assert "dropping the jump label entry of demo_tracepoint" in caplog.text


def test_jump_label_tracepoint_vmlinux_kept(builds, tmp_path):
    build = keyed(builds, tmp_path, "jump_label", "PATCH_TRACEPOINT")
    diff_objects(build.request())
    rows = relocations_of(build.output, ".rela__jump_table")
    assert rows[2][0] == ".klp.sym.vmlinux.__tracepoint_demo_event,0"
    assert rows[2][3] == 8


def test_jump_label_new_key(builds, tmp_path):
    """A key the patch adds lives in the patch module, so it is kept for a module too."""
    build = keyed(builds, tmp_path, "jump_label", "PATCH_NEW_KEY")
    diff_objects(build.request(parent_name=MODULE))
    rows = relocations_of(build.output, ".rela__jump_table")
    assert rows[2][0] == "demo_new_key"
    assert "demo_new_key" in symbol_names(build.output)


def test_jump_label_unchanged_entries_dropped(builds, tmp_path):
    build = keyed(builds, tmp_path, "jump_label", "PATCH_EXPORTED_KEY")
    diff_objects(build.request())
    names = {row[0] for row in relocations_of(build.output, ".rela__jump_table")}
    assert names == {"demo_exported_key", "exported_key"}


# Static calls.


def test_static_call_vmlinux_key(builds, tmp_path):
    build = keyed(builds, tmp_path, "static_call_sites", "PATCH_VMLINUX_KEY")
    diff_objects(build.request())
    rows = relocations_of(build.output, ".rela.static_call_sites")
    assert [row[0] for row in rows] == ["demo_call_vmlinux", ".klp.sym.vmlinux.__SCK__demo_hook,0"]
    assert section_size(build.output, ".static_call_sites") == 8


def test_static_call_module_key(builds, tmp_path):
    build = keyed(builds, tmp_path, "static_call_sites", "PATCH_MODULE_KEY")
    with pytest.raises(UnsupportedChange, match="static call at demo_call_module"):
        diff_objects(build.request(parent_name=MODULE))


def test_static_call_tracepoint_dropped(builds, tmp_path):
    build = keyed(builds, tmp_path, "static_call_sites", "PATCH_TRACEPOINT")
    result = diff_objects(build.request(parent_name=MODULE))
    assert result.changed_functions == ("demo_call_tracepoint",)
    assert section_size(build.output, ".static_call_sites") == 0


# __ex_table, alternatives and ORC: only the entries of included functions.


@pytest.fixture
def tables(builds, tmp_path):
    build = builds("special_tables", tmp_path / "out.o")
    diff_objects(build.request())
    return build


def test_ex_table_one_entry(tables):
    assert section_size(tables.output, "__ex_table") == 12


def test_ex_table_targets(tables):
    rows = relocations_of(tables.output, ".rela__ex_table")
    assert [(row[0], row[1]) for row in rows] == [("demo_first", 0), ("demo_first", 4)]


def test_ex_table_type_kept(tables):
    data = read_elf(tables.output).get_section_by_name("__ex_table").data()
    assert int.from_bytes(data[8:12], "little") == 3


def test_altinstructions_one_entry(tables):
    data = read_elf(tables.output).get_section_by_name(".altinstructions").data()
    assert len(data) == 12
    assert int.from_bytes(data[8:10], "little") == 0x11


def test_altinstructions_targets(tables):
    rows = relocations_of(tables.output, ".rela.altinstructions")
    assert [row[0] for row in rows] == ["demo_first", ".altinstr_replacement"]


def test_altinstr_replacement_included(tables):
    assert section_size(tables.output, ".altinstr_replacement") > 0


def test_orc_one_entry(tables):
    assert section_size(tables.output, ".orc_unwind_ip") == 4
    assert relocation_names(tables.output, ".rela.orc_unwind_ip") == ["demo_first"]


def test_orc_entry_pairs(tables):
    """The kept .orc_unwind entry is demo_first's, not the first one of the section."""
    data = read_elf(tables.output).get_section_by_name(".orc_unwind").data()
    assert data == bytes((0xA1, 1, 2, 3, 4, 5))


def relocation_names(path, section_name: str) -> list[str]:
    return [row[0] for row in relocations_of(path, section_name)]


def test_alternative_call_vmlinux(builds, tmp_path):
    """The replacement of demo_third calls a static function: a vmlinux klp relocation."""
    build = builds("special_tables", tmp_path / "out.o", ("THIRD_PATCHED",))
    diff_objects(build.request())
    names = relocation_names(build.output, ".rela.altinstr_replacement")
    assert names == [".klp.sym.vmlinux.demo_local_helper,0"]


def test_alternative_call_module(builds, tmp_path):
    """A module's klp relocation would be applied after the alternative is copied: rejected."""
    build = builds("special_tables", tmp_path / "out.o", ("THIRD_PATCHED",))
    with pytest.raises(UnsupportedChange, match=".altinstr_replacement entry of the patch"):
        diff_objects(build.request(parent_name=MODULE))
