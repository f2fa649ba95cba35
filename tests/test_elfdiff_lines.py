"""Changes that only move __LINE__ constants, from tests/elfdiff_cases/line_shift.c."""

import pytest
from elfdiff_helpers import KERNEL_CFLAGS, CaseCache, read_elf

from elfdiff.compare import SAME, compare
from elfdiff.correlate import correlate
from elfdiff.diff import diff_objects, load
from elfdiff.errors import NoChange

DEBUG_CFLAGS = KERNEL_CFLAGS + ("-g",)


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    return CaseCache(tmp_path_factory.mktemp("lines")).build


@pytest.fixture(autouse=True)
def bug_entry_size(monkeypatch):
    monkeypatch.setenv("BUG_STRUCT_SIZE", "12")


def statuses(build) -> dict[str, str]:
    """Return the status of each function of the patched object after comparison."""
    original = load(build.original)
    patched = load(build.patched)
    correlate(original, patched)
    compare(patched, original)
    return {s.name: s.status for s in patched.symbols if s.section and s.name.startswith("demo_")}


def test_moved_lines_no_change(builds, tmp_path):
    build = builds("line_shift", tmp_path / "out.o", ("LINES_MOVED",), flags=DEBUG_CFLAGS)
    with pytest.raises(NoChange):
        diff_objects(build.request())


def test_moved_lines_code_differs(builds, tmp_path):
    """Guard that the pair really differs in code, so the test above means something."""
    build = builds("line_shift", tmp_path / "out.o", ("LINES_MOVED",), flags=DEBUG_CFLAGS)
    original = read_elf(build.original).get_section_by_name(".text.demo_sleepy").data()
    patched = read_elf(build.patched).get_section_by_name(".text.demo_sleepy").data()
    assert original != patched


def test_moved_lines_statuses(builds, tmp_path):
    build = builds("line_shift", tmp_path / "out.o", ("LINES_MOVED",), flags=DEBUG_CFLAGS)
    assert statuses(build) == {
        "demo_sleepy": SAME,
        "demo_report_twice": SAME,
        "demo_checked": SAME,
        "demo_plain": SAME,
    }


def test_real_change_still_seen(builds, tmp_path):
    """demo_checked adds 2 instead of 1 while the lines move: it alone is patched."""
    build = builds(
        "line_shift", tmp_path / "out.o", ("LINES_MOVED", "REAL_CHANGE"), flags=DEBUG_CFLAGS
    )
    result = diff_objects(build.request())
    assert result.changed_functions == ("demo_checked",)


def test_real_change_bug_entry_line(builds, tmp_path):
    """The kept __bug_table entry carries the new line of demo_checked's BUG_ON."""
    build = builds(
        "line_shift", tmp_path / "out.o", ("LINES_MOVED", "REAL_CHANGE"), flags=DEBUG_CFLAGS
    )
    diff_objects(build.request())
    entry = read_elf(build.output).get_section_by_name("__bug_table").data()
    original = read_elf(build.original).get_section_by_name("__bug_table").data()
    line = int.from_bytes(entry[8:10], "little")
    assert len(entry) == 12
    assert line == int.from_bytes(original[8:10], "little") + 20


def test_shifted_constant_is_change(builds, tmp_path):
    """The ticks of demo_delay go from 3 to 23 while the lines move by 20.

    The immediate changes by exactly the line shift, but 3 and 23 are not
    lines of demo_report_twice, so the change counts.
    """
    build = builds(
        "line_shift",
        tmp_path / "out.o",
        ("LINES_MOVED", "SHIFTED_CONSTANT"),
        flags=DEBUG_CFLAGS,
    )
    result = diff_objects(build.request())
    assert result.changed_functions == ("demo_report_twice",)


def test_constant_without_moved_lines(builds, tmp_path):
    build = builds("line_shift", tmp_path / "out.o", ("SHIFTED_CONSTANT",), flags=DEBUG_CFLAGS)
    result = diff_objects(build.request())
    assert result.changed_functions == ("demo_report_twice",)


def test_moved_lines_without_debug_info(builds, tmp_path):
    """Without a line table nothing backs the immediates, so the functions count as changed."""
    build = builds("line_shift", tmp_path / "out.o", ("LINES_MOVED",))
    result = diff_objects(build.request())
    assert sorted(result.changed_functions) == ["demo_report_twice", "demo_sleepy"]
