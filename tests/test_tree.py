"""The journal that puts the shared kernel tree back after every run."""

from __future__ import annotations

import os

import pytest

from cache import journal_path
from steps.tree import Journal, changes_undone, recover


def make_file(path, text, mtime):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def test_restore_after_exception(tmp_path):
    source = make_file(tmp_path / "tree" / "a.c", "original\n", 1_000_000)
    with pytest.raises(RuntimeError), changes_undone() as journal:
        journal.keep(source)
        source.write_text("patched\n")
        raise RuntimeError("compiler failed")
    assert source.read_text() == "original\n"
    assert source.stat().st_mtime == 1_000_000
    assert not journal_path().exists()


def test_created_file_removed(tmp_path):
    created = tmp_path / "tree" / "new.c"
    with changes_undone() as journal:
        journal.keep(created)
        created.parent.mkdir(parents=True, exist_ok=True)
        created.write_text("new\n")
    assert not created.exists()


def test_recover_after_kill(tmp_path):
    """A run killed with SIGKILL leaves its journal; the next run restores from it."""
    source = make_file(tmp_path / "tree" / "b.c", "original\n", 2_000_000)
    journal = Journal(journal_path())
    journal.keep(source)
    source.write_text("patched\n")
    recover()
    assert source.read_text() == "original\n"
    assert source.stat().st_mtime == 2_000_000
    assert not journal_path().exists()
