"""Every example patch builds and passes its `doit vm` check (its .check file)."""

from __future__ import annotations

import pytest

from tests.test_pipeline_kernel import PROJECT, doit

pytestmark = [pytest.mark.kernel, pytest.mark.vm]

EXAMPLES = sorted((PROJECT / "examples").glob("*.patch"))


def test_every_example_has_check():
    missing = [patch.name for patch in EXAMPLES if not patch.with_suffix(".check").is_file()]
    assert EXAMPLES
    assert missing == []


@pytest.mark.parametrize("patch", EXAMPLES, ids=lambda patch: patch.stem)
def test_example_passes_vm_check(tmp_path, patch):
    db = tmp_path / "doit.db"
    built = doit("build", f"patch={patch}", f"out={tmp_path}", db=db)
    assert built.returncode == 0, built.stderr[-3000:]
    checked = doit("vm", f"patch={patch}", f"out={tmp_path}", db=db)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    assert "PASS" in checked.stdout.splitlines()
