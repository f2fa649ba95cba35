"""Boot the built kernel in qemu, load the patch module and check its effect.

The guest is a busybox initramfs whose /init runs the check command three
times: before loading (must fail), with the patch enabled (must pass) and
after disabling and unloading it (must fail again), then reboots so qemu
exits (-no-reboot). Its verdict comes back on the serial console.
"""

from __future__ import annotations

import gzip
import logging
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .commands import log as command_log
from .errors import BuildError

log = logging.getLogger("klpbuild.vm")

BUSYBOX = Path("/bin/busybox")
RESULT_MARK = "KLP-RESULT:"

INIT_SCRIPT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev 2>/dev/null

report() {{ echo "{mark} $1"; reboot -f; }}
check() {{ sh -c {check} >/dev/null 2>&1; }}
wait_transition() {{
    i=0
    while [ -e "$1/transition" ] && [ "$(cat "$1/transition")" != 0 ]; do
        i=$((i + 1)); [ $i -gt 600 ] && return 1; sleep 0.1
    done
}}

patch=/sys/kernel/livepatch/{sysfs_name}
check && report "FAIL the check passes before the patch is loaded"
insmod /{module_file} || report "FAIL insmod {module_file}"
wait_transition $patch || report "FAIL the patch transition did not finish"
[ "$(cat $patch/enabled)" = 1 ] || report "FAIL the patch is not enabled"
check || report "FAIL the check fails with the patch enabled"
echo "guest: patched: $(sh -c {show} 2>&1)"
echo 0 > $patch/enabled
wait_transition $patch || report "FAIL the unpatch transition did not finish"
i=0
while [ -d $patch ]; do i=$((i + 1)); [ $i -gt 600 ] && report "FAIL the patch did not go away"; sleep 0.1; done
rmmod {module_name} || report "FAIL rmmod {module_name}"
check && report "FAIL the check still passes after the patch is unloaded"
report PASS
"""


@dataclass(frozen=True)
class VmCheck:
    kernel_image: Path
    module: Path
    check: str  # a shell command that succeeds only while the patch is active
    show: str  # a shell command whose output is printed while the patch is active
    work: Path
    timeout: int = 180


def build_initramfs(request: VmCheck) -> Path:
    """Write a gzipped newc cpio archive with busybox, the module and /init."""
    if not BUSYBOX.is_file():
        raise BuildError(f"{BUSYBOX} not found; install busybox-static")
    root = request.work / "initramfs"
    shutil.rmtree(root, ignore_errors=True)
    for folder in ("bin", "proc", "sys", "dev"):
        (root / folder).mkdir(parents=True)

    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    shutil.copy2(request.module, root / request.module.name)
    module_name = request.module.name[: -len(".ko")]
    init = root / "init"
    init.write_text(
        INIT_SCRIPT.format(
            mark=RESULT_MARK,
            check=shlex.quote(request.check),
            show=shlex.quote(request.show),
            module_file=request.module.name,
            module_name=module_name,
            sysfs_name=module_name.replace("-", "_"),
        )
    )
    init.chmod(0o755)

    archive = request.work / "initramfs.cpio.gz"
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    completed = subprocess.run(
        ["cpio", "--quiet", "-o", "-H", "newc"],
        cwd=root,
        input=("\n".join(names) + "\n").encode(),
        capture_output=True,
    )
    if completed.returncode != 0:
        raise BuildError(f"cpio failed: {completed.stderr.decode(errors='replace').strip()}")
    archive.write_bytes(gzip.compress(completed.stdout, compresslevel=1))
    return archive


def qemu_command(request: VmCheck, initramfs: Path) -> list[str]:
    return [
        "qemu-system-x86_64",
        "-accel",
        "tcg",
        "-m",
        "512",
        "-smp",
        "1",
        "-nographic",
        "-no-reboot",
        "-nic",
        "none",
        "-kernel",
        str(request.kernel_image),
        "-initrd",
        str(initramfs),
        "-append",
        "console=ttyS0 panic=-1 oops=panic quiet",
    ]


def run_vm_check(request: VmCheck) -> tuple[bool, str]:
    """Boot, check, and return (passed, the guest's verdict line)."""
    if not request.kernel_image.is_file():
        raise BuildError(f"kernel image {request.kernel_image} not found; run `doit kernel`")
    if not request.module.is_file():
        raise BuildError(f"patch module {request.module} not found; run `doit build` first")
    if shutil.which("qemu-system-x86_64") is None:
        raise BuildError("qemu-system-x86_64 not found; install qemu-system-x86")

    initramfs = build_initramfs(request)
    command = qemu_command(request, initramfs)
    command_log.debug("%s", shlex.join(command))
    console_log = request.work / "vm-console.log"
    try:
        completed = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=request.timeout
        )
        output = completed.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode(errors="replace")
        console_log.write_text(output)
        raise BuildError(
            f"the VM did not finish within {request.timeout} s; console in {console_log}"
        ) from None
    console_log.write_text(output)

    for line in output.splitlines():
        if line.startswith("guest:"):
            log.info("%s", line.strip())
        if RESULT_MARK in line:
            verdict = line.split(RESULT_MARK, 1)[1].strip()
            return verdict == "PASS", verdict
    raise BuildError(f"the guest printed no verdict; console in {console_log}")
