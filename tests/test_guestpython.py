"""Tests of the guest Python builder: ldd parsing, and the trees run in a chroot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from steps.errors import BuildError
from steps.guestpython import (
    DEFAULT_PYTHON,
    GuestPythonRequest,
    PythonLayout,
    console_script,
    parse_ldd,
    prepare_guest_python,
    read_layout,
)

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd4a9e2000)
\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f117c435000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f117c209000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f117c529000)
"""

needs_host_python = pytest.mark.skipif(
    not DEFAULT_PYTHON.is_file(), reason=f"{DEFAULT_PYTHON} is not installed"
)


def test_parse_ldd_libraries():
    assert parse_ldd(LDD_OUTPUT) == [
        Path("/lib/x86_64-linux-gnu/libm.so.6"),
        Path("/lib/x86_64-linux-gnu/libc.so.6"),
        Path("/lib64/ld-linux-x86-64.so.2"),
    ]


def test_parse_ldd_static_binary():
    assert parse_ldd("\tstatically linked\n") == []


def test_parse_ldd_missing_library():
    with pytest.raises(BuildError, match="shared library libgone.so.1 not found"):
        parse_ldd("\tlibgone.so.1 => not found\n")


def test_console_script_text():
    layout = PythonLayout(
        executable=Path("/usr/bin/python3.11"),
        version="3.11",
        full_version="3.11.2",
        stdlib=Path("/usr/lib/python3.11"),
        dynload=Path("/usr/lib/python3.11/lib-dynload"),
        purelib=Path("/usr/local/lib/python3.11/dist-packages"),
        scripts=Path("/usr/local/bin"),
    )
    text = console_script(layout, "kpatchctl.cli:main")
    assert text.splitlines() == [
        "#!/usr/bin/python3.11",
        "import sys",
        "from kpatchctl.cli import main",
        "sys.exit(main())",
    ]


def test_read_layout_missing_python(tmp_path):
    with pytest.raises(BuildError, match="not found"):
        read_layout(tmp_path / "python3")


@pytest.fixture(scope="module")
def guest_root(tmp_path_factory) -> Path:
    """Both trees merged into one folder, as run_guest merges them into the initramfs.

    The module-scoped fixture runs before the autouse fixture of conftest.py
    seals the cache, so it points KPATCH_CACHE at a temporary folder itself.
    """
    work = tmp_path_factory.mktemp("guest-python")
    saved = os.environ.get("KPATCH_CACHE")
    os.environ["KPATCH_CACHE"] = str(work / "cache")
    try:
        guest = prepare_guest_python(GuestPythonRequest(work=work))
    finally:
        if saved is None:
            del os.environ["KPATCH_CACHE"]
        else:
            os.environ["KPATCH_CACHE"] = saved
    root = work / "root"
    for tree in guest.trees:
        subprocess.run(["cp", "-a", f"{tree}/.", str(root)], check=True)
    return root


def chroot(root: Path, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [shutil.which("chroot") or "/usr/sbin/chroot", str(root), *command],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"},
        check=False,
    )


@needs_host_python
def test_runtime_cached_by_key(guest_root):
    """The runtime tree lands under the cache's guest folder, named by version and key."""
    cached = list((guest_root.parent / "cache" / "guest").iterdir())
    assert len(cached) == 1
    assert cached[0].name.startswith("python3.")


@needs_host_python
def test_runtime_leaves_out_tests(guest_root):
    layout = read_layout(DEFAULT_PYTHON)
    stdlib = guest_root / str(layout.stdlib).lstrip("/")
    assert (stdlib / "argparse.py").is_file()
    assert not (stdlib / "test").exists()
    assert not list(stdlib.glob("config-*"))


@needs_host_python
def test_packages_precompiled(guest_root):
    layout = read_layout(DEFAULT_PYTHON)
    site = guest_root / str(layout.purelib).lstrip("/")
    assert list((site / "kpatchctl" / "__pycache__").glob("cli.*.pyc"))
    assert (site / "kpatchctl" / "kpatch.service").is_file()


@needs_host_python
@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_kpatch_runs_in_chroot(guest_root):
    """The copied interpreter runs with only the copied libraries and stdlib."""
    result = chroot(guest_root, "kpatch", "version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("kpatch ")
    assert "unknown" not in result.stdout


@needs_host_python
@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_python_imports_in_chroot(guest_root):
    modules = "argparse, logging, subprocess, tempfile, json, random, elftools.elf.elffile"
    result = chroot(guest_root, "python3", "-c", f"import {modules}")
    assert result.returncode == 0, result.stderr
