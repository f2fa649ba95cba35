"""Patch modules for loadable modules, replace modes and signatures, in the guest.

The default config builds binfmt_misc as a module, with CONFIG_MODVERSIONS
and CONFIG_MODULE_SIG; examples/binfmt-misc-status.patch changes the text
of its status file. These tests share the cached kernel with
test_pipeline_kernel.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from steps.vm import Guest, run_guest
from tests.test_pipeline_kernel import PROJECT, doit

pytestmark = pytest.mark.kernel

EXAMPLES = PROJECT / "examples"
BINFMT = EXAMPLES / "binfmt-misc-status.patch"
SIGNATURE_MARK = b"~Module signature appended~\n"


def build(db: Path, out: Path, patch: Path, *variables: str) -> subprocess.CompletedProcess:
    result = doit("build", f"patch={patch}", f"out={out}", *variables, db=db)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """The bootable build's folder, found from the settings the pipeline uses."""
    from steps.settings import load_settings

    return load_settings({}).run_dir


@pytest.fixture(scope="module")
def binfmt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("binfmt")
    db = folder / "doit.db"
    build(db, folder, BINFMT)
    return folder, db, folder / "livepatch-binfmt-misc-status.ko"


def guest_lines(output: str) -> list[str]:
    """The lines the guest script printed (the first may follow firmware output)."""
    return [line[line.index("guest:") :] for line in output.splitlines() if "guest:" in line]


def elf_facts(path: Path) -> tuple[list[str], list[str], bytes]:
    with open(path, "rb") as stream:
        elf = ELFFile(stream)
        sections = [section.name for section in elf.iter_sections()]
        symbols = [
            symbol.name
            for symbol in elf.get_section_by_name(".symtab").iter_symbols()
            if symbol.name.startswith(".klp.sym.")
        ]
        modinfo = elf.get_section_by_name(".modinfo").data()
    return sections, symbols, modinfo


def test_module_target_has_module_relocations(binfmt):
    _, _, module = binfmt
    sections, symbols, modinfo = elf_facts(module)
    assert ".klp.rela.binfmt_misc..text.bm_status_read" in sections
    # `enabled` is a static variable of binfmt_misc: reached through a livepatch symbol.
    assert ".klp.sym.binfmt_misc.enabled,0" in symbols
    assert not [name for name in symbols if name.startswith(".klp.sym.vmlinux.")]
    assert b"livepatch=Y" in modinfo


def test_module_is_signed(binfmt):
    _, _, module = binfmt
    assert module.read_bytes().endswith(SIGNATURE_MARK)


def test_vm_check_with_module_loaded_first(binfmt):
    folder, db, _ = binfmt
    result = doit("vm", f"patch={BINFMT}", f"out={folder}", db=db)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "PASS" in result.stdout


def test_module_loaded_after_patch(binfmt, kernel, tmp_path):
    """The patch waits for binfmt_misc, and patches it when it loads; the signature is trusted."""
    _, _, module = binfmt
    script = """
patch=/sys/kernel/livepatch/livepatch_binfmt_misc_status
insmod /patch.ko || report "FAIL insmod patch.ko"
wait_transition $patch || report "FAIL transition"
echo "guest: patch taint [$(cat /sys/module/livepatch_binfmt_misc_status/taint)]"
insmod /binfmt_misc.ko || report "FAIL insmod binfmt_misc.ko"
mkdir -p /b && mount -t binfmt_misc x /b || report "FAIL mount"
echo "guest: status with patch [$(cat /b/status)]"
[ -d $patch/binfmt_misc ] || report "FAIL no binfmt_misc object in sysfs"
echo "guest: object patched [$(cat $patch/binfmt_misc/patched)]"
echo 0 > $patch/enabled
wait_transition $patch || report "FAIL unpatch transition"
wait_gone $patch || report "FAIL the patch did not go away"
echo "guest: status after [$(cat /b/status)]"
report DONE
"""
    verdict, output = run_guest(
        Guest(
            kernel_image=kernel / "arch/x86/boot/bzImage",
            script=script,
            work=tmp_path,
            files=(("/patch.ko", module), ("/binfmt_misc.ko", kernel / "fs/binfmt_misc.ko")),
        )
    )
    lines = guest_lines(output)
    assert verdict == "DONE", output[-3000:]
    # O: out of tree, K: livepatch; no E, so the kernel checked the signature with its key.
    assert "guest: patch taint [OK]" in lines
    assert "guest: status with patch [enabled (patched)]" in lines
    assert "guest: object patched [1]" in lines
    assert "guest: status after [enabled]" in lines


def test_target_without_changes_refused(binfmt, tmp_path):
    _, db, _ = binfmt
    result = doit("build", f"patch={BINFMT}", f"out={tmp_path}", "target=vmlinux", db=db)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0
    assert errors == [
        "error: target=vmlinux: the patch changes nothing there; it changes binfmt_misc"
    ], result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def two_patches(tmp_path_factory):
    """meminfo (replace) and cmdline built twice: replacing and stacking."""
    folder = tmp_path_factory.mktemp("replace")
    db = folder / "doit.db"
    build(db, folder, EXAMPLES / "meminfo-string.patch", "name=first")
    build(db, folder, EXAMPLES / "cmdline-mark.patch", "name=second-replace")
    build(db, folder, EXAMPLES / "cmdline-mark.patch", "name=second-stack", "replace=0")
    return folder


REPLACE_SCRIPT = """
meminfo() {{ grep -q '^VMALLOCCHUNK:' /proc/meminfo && echo 1 || echo 0; }}
cmdline() {{ grep -q 'livepatched=1' /proc/cmdline && echo 1 || echo 0; }}
insmod /livepatch-first.ko || report "FAIL insmod first"
wait_transition /sys/kernel/livepatch/livepatch_first || report "FAIL transition first"
insmod /livepatch-{second}.ko || report "FAIL insmod {second}"
wait_transition /sys/kernel/livepatch/livepatch_{second_sysfs} || report "FAIL transition"
sleep 1
echo "guest: meminfo=$(meminfo) cmdline=$(cmdline) patches=$(ls /sys/kernel/livepatch | tr '\\n' ' ')"
report DONE
"""


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ("second-replace", "guest: meminfo=0 cmdline=1 patches=livepatch_second_replace "),
        (
            "second-stack",
            "guest: meminfo=1 cmdline=1 patches=livepatch_first livepatch_second_stack ",
        ),
    ],
)
def test_replace_modes(two_patches, kernel, tmp_path, second, expected):
    """A replacing patch takes over from the loaded one; replace=0 stacks on it."""
    folder = two_patches
    verdict, output = run_guest(
        Guest(
            kernel_image=kernel / "arch/x86/boot/bzImage",
            script=REPLACE_SCRIPT.format(second=second, second_sysfs=second.replace("-", "_")),
            work=tmp_path,
            files=tuple(
                (f"/livepatch-{name}.ko", folder / f"livepatch-{name}.ko")
                for name in ("first", second)
            ),
        )
    )
    assert verdict == "DONE", output[-3000:]
    assert expected in guest_lines(output), output[-2000:]


def test_changed_symbol_version_refused(binfmt, tmp_path):
    """With CONFIG_MODVERSIONS, a patch that changes an exported prototype is rejected."""
    _, db, _ = binfmt
    patch = PROJECT / "tests" / "patches" / "x509-export-type.patch"
    result = doit("build", f"patch={patch}", f"out={tmp_path}", db=db)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0
    assert len(errors) == 1, result.stderr
    assert "changes the type of exported symbol x509_decode_time" in errors[0]
    assert "crypto/asymmetric_keys/x509_cert_parser.o" in errors[0]
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.ko"))


def signer(module: Path) -> str:
    return subprocess.run(
        ["modinfo", "-F", "signer", str(module)], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_default_key_signs(binfmt):
    _, _, module = binfmt
    assert signer(module) == "Build time autogenerated kernel key"


def test_signkey_signs(binfmt, tmp_path):
    """signkey= names a PEM file with a key and certificate of the user's own."""
    _, db, _ = binfmt
    private, certificate = tmp_path / "private.pem", tmp_path / "certificate.pem"
    subprocess.run(
        [
            "openssl", "req", "-new", "-nodes", "-utf8", "-sha256", "-days", "30", "-batch",
            "-x509", "-subj", "/CN=klpbuild test key", "-outform", "PEM",
            "-out", str(certificate), "-keyout", str(private),
        ],
        capture_output=True,
        check=True,
    )  # fmt: skip
    key = tmp_path / "key.pem"
    key.write_bytes(private.read_bytes() + certificate.read_bytes())
    build(db, tmp_path, BINFMT, "name=own-key", f"signkey={key}")
    module = tmp_path / "livepatch-own-key.ko"
    assert module.read_bytes().endswith(SIGNATURE_MARK)
    assert signer(module) == "klpbuild test key"
