"""Patches the pipeline rejects on the real 6.1 tree, each with one error line.

lib/ changes are rejected before any compiler runs; __init code and static
data changes are rejected by the diff, naming the function or variable. The
tree is back in its original state after each.
"""

from __future__ import annotations

import pytest

from tests.test_pipeline_kernel import PROJECT, digest, doit, journal_left, source_tree

pytestmark = pytest.mark.kernel

PATCHES = PROJECT / "tests" / "patches"


@pytest.mark.parametrize(
    ("patch", "source", "message"),
    [
        (
            "lib-strcpy.patch",
            "lib/string.c",
            "lib-strcpy.patch changes lib/string.c: lib/ code is linked into many places",
        ),
        (
            "meminfo-init-mode.patch",
            "fs/proc/meminfo.c",
            "__init function proc_meminfo_init changed",
        ),
        (
            "binfmt-misc-disabled.patch",
            "fs/binfmt_misc.c",
            "static data enabled changed; a livepatch cannot change existing data",
        ),
    ],
)
def test_rejected_patch(tmp_path, patch, source, message):
    tree = source_tree()
    before = digest(tree / source)
    result = doit("build", f"patch={PATCHES / patch}", f"out={tmp_path}", db=tmp_path / "db")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not list(tmp_path.glob("*.ko"))
    assert digest(tree / source) == before
    assert not journal_left()


def test_lib_rejected_before_compiling(tmp_path):
    result = doit(
        "build", f"patch={PATCHES / 'lib-strcpy.patch'}", "name=lib-strcpy", db=tmp_path / "db"
    )
    assert "run   patched" in result.stdout
    assert not (PROJECT / "build" / "livepatch-lib-strcpy" / "patched.log").exists()
