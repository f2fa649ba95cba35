"""Shared fixtures: every test runs sealed off from the machine's caches.

Tests marked `kernel` keep the real cache (KPATCH_CACHE, default ~/.kpatch),
because the kernel build they share takes minutes; they still pass from an
empty cache, only slower.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
REAL_CACHE = Path(os.environ.get("KPATCH_CACHE") or Path.home() / ".kpatch")


@pytest.fixture(autouse=True)
def sealed_environment(request, tmp_path, monkeypatch):
    for variable in ("ARCH", "CROSS_COMPILE", "KBUILD_OUTPUT", "KCFLAGS", "CC", "LLVM"):
        monkeypatch.delenv(variable, raising=False)
    if request.node.get_closest_marker("kernel"):
        monkeypatch.setenv("KPATCH_CACHE", str(REAL_CACHE))
    else:
        monkeypatch.setenv("KPATCH_CACHE", str(tmp_path / "kpatch-cache"))
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
