"""Reading the files a patch touches, and rejections by path."""

from __future__ import annotations

import pytest

from steps.errors import BuildError
from steps.patchfile import check_supported, touched_files

PATCH = """\
--- a/fs/proc/meminfo.c
+++ b/fs/proc/meminfo.c
@@ -1 +1 @@
-a
+b
--- /dev/null
+++ b/fs/proc/new.c
@@ -0,0 +1 @@
+c
"""


def test_touched_files(tmp_path):
    patch = tmp_path / "x.patch"
    patch.write_text(PATCH)
    files = touched_files(patch)
    assert [f.path for f in files] == ["fs/proc/meminfo.c", "fs/proc/new.c"]
    assert files[1].created


def test_not_a_diff(tmp_path):
    patch = tmp_path / "x.patch"
    patch.write_text("hello\n")
    with pytest.raises(BuildError, match="not a unified diff"):
        touched_files(patch)


@pytest.mark.parametrize("path", ["lib/string.c", "arch/x86/entry/entry_64.S"])
def test_rejected_paths(tmp_path, path):
    patch = tmp_path / "x.patch"
    patch.write_text(f"--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-a\n+b\n")
    with pytest.raises(BuildError, match="cannot be patched|only C code"):
        check_supported(patch, touched_files(patch))
