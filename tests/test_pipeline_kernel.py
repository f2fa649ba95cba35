"""The main job end to end on the real Linux 6.1 tree, and the VM check.

These tests build the default kernel twice (bootable and comparison build)
on first use, about 7 minutes on 2 cores, and reuse it from the cache after.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from cache import journal_path, locked

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE = PROJECT / "examples" / "meminfo-string.patch"
DOIT = [sys.executable, "-m", "doit"]

pytestmark = pytest.mark.kernel


def doit(*arguments: str, db: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DOIT, "--db-file", str(db), *arguments],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=3600,
    )


def source_tree() -> Path:
    from steps.source import SourceRequest, prepare_source

    return prepare_source(SourceRequest()).tree


def journal_left() -> bool:
    """Whether a restore journal remains once no run holds the cache lock."""
    with locked():
        return journal_path().exists()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build the example module once for all tests of this file."""
    folder = tmp_path_factory.mktemp("e2e")
    db = folder / "doit.db"
    first = doit("build", f"patch={EXAMPLE}", f"out={folder}", db=db)
    return folder, db, first


def test_build_writes_module(built):
    folder, _, first = built
    assert first.returncode == 0, first.stderr[-3000:]
    assert (folder / "livepatch-meminfo-string.ko").is_file()


def test_module_is_livepatch(built):
    folder, _, _ = built
    with open(folder / "livepatch-meminfo-string.ko", "rb") as stream:
        elf = ELFFile(stream)
        modinfo = elf.get_section_by_name(".modinfo").data().split(b"\0")
        names = [section.name for section in elf.iter_sections()]
        klp_symbols = [
            symbol
            for symbol in elf.get_section_by_name(".symtab").iter_symbols()
            if symbol.name.startswith(".klp.sym.vmlinux.")
        ]
        klp_rela = elf.get_section_by_name(".klp.rela.vmlinux..text.meminfo_proc_show")
        assert b"livepatch=Y" in modinfo
        assert klp_rela is not None, names
        assert klp_rela["sh_flags"] & 0x00100000
        assert klp_symbols
        assert all(symbol["st_shndx"] == 0xFF20 for symbol in klp_symbols)


def test_second_run_executes_nothing(built):
    folder, db, _ = built
    again = doit("build", f"patch={EXAMPLE}", f"out={folder}", db=db)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "run   " not in again.stdout, again.stdout


def test_tree_restored_after_build(built):
    tree = source_tree()
    pristine = subprocess.run(
        ["tar", "-xOf", "/usr/src/linux-source-6.1.tar.xz", "linux-source-6.1/fs/proc/meminfo.c"],
        capture_output=True,
    ).stdout
    assert (tree / "fs/proc/meminfo.c").read_bytes() == pristine
    assert not journal_left()


def test_vm_check_passes(built):
    folder, db, _ = built
    result = doit("vm", f"patch={EXAMPLE}", f"out={folder}", db=db)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "PASS" in result.stdout


def test_patch_not_applying_is_one_error(built, tmp_path):
    folder, db, _ = built
    broken = tmp_path / "broken.patch"
    broken.write_text(EXAMPLE.read_text().replace("VmallocChunk", "NoSuchLine"))
    tree = source_tree()
    before = digest(tree / "fs/proc/meminfo.c")
    result = doit("build", f"patch={broken}", f"out={tmp_path}", db=db)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0
    assert len(errors) == 1, result.stderr
    assert "does not apply" in errors[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert digest(tree / "fs/proc/meminfo.c") == before


def test_other_patch_passes_vm(built, tmp_path):
    """A second one-file patch against the cached kernel builds and works in the guest."""
    _, db, _ = built
    patch = PROJECT / "examples" / "cmdline-mark.patch"
    build = doit("build", f"patch={patch}", f"out={tmp_path}", db=db)
    assert build.returncode == 0, build.stderr[-3000:]
    assert "run   kernel" not in build.stdout
    check = doit("vm", f"patch={patch}", f"out={tmp_path}", db=db)
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    assert "PASS" in check.stdout


def test_compile_error_restores_tree(built, tmp_path):
    """A patch that applies but does not compile leaves the tree as it was."""
    _, db, _ = built
    broken = tmp_path / "broken-c.patch"
    broken.write_text(
        EXAMPLE.read_text().replace(
            '"VMALLOCCHUNK:   ", 0ul);', '"VMALLOCCHUNK:   ", 0ul) syntax error;'
        )
    )
    tree = source_tree()
    before = digest(tree / "fs/proc/meminfo.c")
    result = doit("build", f"patch={broken}", f"out={tmp_path}", db=db)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0
    assert errors == [errors[0]], result.stderr
    assert "does not compile" in errors[0]
    assert digest(tree / "fs/proc/meminfo.c") == before
    assert not journal_left()


def test_interrupt_restores_tree(built, tmp_path):
    """SIGINT while the patched objects compile still restores sources and objects."""
    _, db, _ = built
    from steps.settings import load_settings

    tree = source_tree()
    before = digest(tree / "fs/proc/meminfo.c")
    original = load_settings({}).cmp_dir / "fs/proc/meminfo.o"
    original_state = (digest(original), original.stat().st_mtime_ns)
    process = subprocess.Popen(
        [
            *DOIT,
            "--db-file",
            str(db),
            "build",
            f"patch={EXAMPLE}",
            "name=interrupted",
            f"out={tmp_path}",
        ],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not journal_path().exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert journal_path().exists(), "the build never started changing the tree"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert process.returncode == 130
    assert errors == ["error: interrupted; the kernel tree is back in its original state"], stderr
    assert "Traceback" not in stderr
    assert digest(tree / "fs/proc/meminfo.c") == before
    assert not journal_left()
    # No compiler outlives the run and rewrites the original object after the restore.
    time.sleep(3)
    assert (digest(original), original.stat().st_mtime_ns) == original_state
