"""Compiler-made names, new globals, symbol namespaces and 64-bit addends,
from the cases clones.c, new_globals.c, namespace.c and addend64.c."""

import logging

import pytest
from elfdiff_helpers import (
    SYMVERS,
    CaseCache,
    defined_symbol,
    function_records,
    read_elf,
    relocations_of,
    run_command,
)

from elfdiff.diff import diff_objects
from elfdiff.errors import NoChange
from elfdiff.klp import finalize_module


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    return CaseCache(tmp_path_factory.mktemp("names")).build


# .constprop, .isra and .part clones.


@pytest.mark.parametrize(
    ("define", "function"),
    [
        ("SCALE_PATCHED", "demo_scale.constprop.0"),
        ("SUM_PATCHED", "demo_sum_fields.isra.0"),
        ("LOOKUP_PATCHED", "demo_lookup.part.0"),
    ],
)
def test_clone_changed(builds, tmp_path, define, function):
    build = builds("clones", tmp_path / "out.o", (define,))
    result = diff_objects(build.request())
    assert result.changed_functions == (function,)


@pytest.mark.parametrize(
    ("define", "function"),
    [
        ("SUM_PATCHED", "demo_sum_fields.isra.0"),
        ("LOOKUP_PATCHED", "demo_lookup.part.0"),
    ],
)
def test_clone_record_name(builds, tmp_path, define, function):
    build = builds("clones", tmp_path / "out.o", (define,))
    diff_objects(build.request())
    records = function_records(build.output)
    assert [(r["name"], r["sympos"]) for r in records] == [(function, 0)]


def test_clone_namesake_sympos(builds, tmp_path):
    """other.c, linked first, has its own demo_scale.constprop.0, so this one is the second."""
    build = builds("clones", tmp_path / "out.o", ("SCALE_PATCHED",))
    diff_objects(build.request())
    records = function_records(build.output)
    assert [(r["name"], r["sympos"]) for r in records] == [("demo_scale.constprop.0", 2)]


def test_clone_references_klp(builds, tmp_path):
    """A changed caller refers to the unchanged clones in the parent by their full names."""
    build = builds("clones", tmp_path / "out.o", ("ENTRY_PATCHED",))
    result = diff_objects(build.request())
    assert result.changed_functions == ("demo_entry",)
    assert set(result.klp_symbols) == {
        ".klp.sym.vmlinux.demo_scale.constprop.0,2",
        ".klp.sym.vmlinux.demo_sum_fields.isra.0,0",
        ".klp.sym.vmlinux.demo_lookup.part.0,0",
    }


def test_clone_part_has_own_ftrace_site(builds, tmp_path):
    """demo_lookup.part.0 is patched alone: its parent was inlined into demo_entry."""
    build = builds("clones", tmp_path / "out.o", ("LOOKUP_PATCHED",))
    diff_objects(build.request())
    assert defined_symbol(build.output, "demo_entry") is None
    assert [row[0] for row in relocations_of(build.output, ".rela__mcount_loc")] == [
        "demo_lookup.part.0"
    ]


# New global functions and variables.


def test_new_globals_included(builds, tmp_path):
    build = builds("new_globals", tmp_path / "out.o")
    diff_objects(build.request())
    for name in ("demo_new_counter", "demo_new_zeroed", "demo_new_used", "demo_new_helper"):
        symbol = defined_symbol(build.output, name)
        assert symbol is not None, name
        assert symbol["st_info"]["bind"] == "STB_GLOBAL", name


def test_new_global_data_kept(builds, tmp_path):
    build = builds("new_globals", tmp_path / "out.o")
    diff_objects(build.request())
    data = read_elf(build.output).get_section_by_name(".data.demo_new_counter").data()
    assert data == (5).to_bytes(4, "little")


def test_new_global_function_no_record(builds, tmp_path):
    build = builds("new_globals", tmp_path / "out.o")
    result = diff_objects(build.request())
    assert result.new_functions == ("demo_new_helper",)
    assert [record["name"] for record in function_records(build.output)] == ["demo_show"]


def test_new_global_used_plainly(builds, tmp_path):
    """demo_show refers to the new demo_new_used in the output, not to the parent."""
    build = builds("new_globals", tmp_path / "out.o")
    result = diff_objects(build.request())
    names = [row[0] for row in relocations_of(build.output, ".rela.text.demo_show")]
    assert "demo_new_used" in names
    assert not any("demo_new" in name for name in result.klp_symbols)


def test_only_new_globals_written(builds, tmp_path):
    """New globals alone are a change: the output carries them with no changed function."""
    build = builds("new_globals", tmp_path / "out.o", ("PATCHED", "ONLY_NEW"))
    result = diff_objects(build.request())
    assert result.changed_functions == ()
    assert defined_symbol(build.output, "demo_new_counter") is not None


def test_new_globals_link(builds, tmp_path):
    build = builds("new_globals", tmp_path / "out.o")
    diff_objects(build.request())
    run_command(["ld", "-r", "-o", str(tmp_path / "linked.o"), str(build.output)])


# Symbol namespaces.

NAMESPACE_SYMVERS = (
    SYMVERS
    + "0x00000000\tns_helper\tvmlinux\tEXPORT_SYMBOL_GPL\tDEMO_NS\n"
    + "0x00000000\tunused_ns_helper\tvmlinux\tEXPORT_SYMBOL\tUNUSED_NS\n"
)


def modinfo_lines(path) -> list[str]:
    section = read_elf(path).get_section_by_name(".modinfo")
    if section is None:
        return []
    return [line for line in section.data().decode().split("\0") if line]


def test_namespace_imported(builds, tmp_path):
    build = builds("namespace", tmp_path / "out.o", symvers=NAMESPACE_SYMVERS)
    diff_objects(build.request())
    assert "import_ns=DEMO_NS" in modinfo_lines(build.output)


def test_namespace_of_object_kept(builds, tmp_path):
    build = builds("namespace", tmp_path / "out.o", symvers=NAMESPACE_SYMVERS)
    diff_objects(build.request())
    assert modinfo_lines(build.output) == ["import_ns=DEMO_NS", "import_ns=FILE_NS"]


def test_namespace_of_unchanged_code_left_out(builds, tmp_path):
    """demo_unchanged calls unused_ns_helper, but the output does not carry it."""
    build = builds("namespace", tmp_path / "out.o", symvers=NAMESPACE_SYMVERS)
    diff_objects(build.request())
    assert "import_ns=UNUSED_NS" not in modinfo_lines(build.output)


def test_namespace_symbol_plain(builds, tmp_path):
    build = builds("namespace", tmp_path / "out.o", symvers=NAMESPACE_SYMVERS)
    diff_objects(build.request())
    assert [row[0] for row in relocations_of(build.output, ".rela.text.demo_show")] == [
        "__fentry__",
        "ns_helper",
    ]


def test_namespace_no_change(builds, tmp_path):
    build = builds("namespace", tmp_path / "out.o", ("UNRELATED",), symvers=NAMESPACE_SYMVERS)
    with pytest.raises(NoChange):
        diff_objects(build.request())


# 64-bit addends.

FAR_ADDENDS = [
    (".klp.sym.vmlinux.demo_far_table,0", "R_X86_64_64", 0x123456789),
    (".klp.sym.vmlinux.demo_far_table,0", "R_X86_64_64", -0x100000000),
    (".klp.sym.vmlinux.demo_local_table,0", "R_X86_64_64", 0x200000000),
]


def test_addend64_kept(builds, tmp_path):
    build = builds("addend64", tmp_path / "out.o")
    diff_objects(build.request())
    rows = relocations_of(build.output, ".rela.text.demo_far")
    assert [(row[0], row[2], row[3]) for row in rows if row[0] != "__fentry__"] == FAR_ADDENDS


def test_addend64_no_kpatch_record(builds, tmp_path, caplog):
    """struct kpatch_relocation has a 32-bit addend, so these get no record, and a warning."""
    build = builds("addend64", tmp_path / "out.o")
    with caplog.at_level(logging.WARNING, logger="elfdiff.records"):
        diff_objects(build.request())
    section = read_elf(build.output).get_section_by_name(".kpatch.relocations")
    assert section is not None
    assert section.data_size == 0
    assert caplog.text.count("does not fit struct kpatch_relocation") == 3


def test_addend64_after_finalize(builds, tmp_path):
    """The .klp.rela section that finalisation writes keeps the full addends."""
    build = builds("addend64", tmp_path / "out.o")
    diff_objects(build.request())
    linked = tmp_path / "linked.o"
    final = tmp_path / "final.o"
    run_command(["ld", "-r", "-o", str(linked), str(build.output)])
    finalize_module(linked, final)
    rows = relocations_of(final, ".klp.rela.vmlinux..text.demo_far")
    assert [(row[0], row[2], row[3]) for row in rows] == FAR_ADDENDS
