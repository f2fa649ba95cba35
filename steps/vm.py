"""Boot the built kernel in qemu with a busybox initramfs and run a script there.

run_guest is the general form: files and folders copied into the initramfs,
a shell script as the body of /init, and a verdict line back on the serial
console. run_vm_check is the check behind `doit vm`: the check command must
fail before the patch is loaded, pass while it is enabled and fail again
after it is disabled and unloaded. The guest reboots at the end, so qemu
(-no-reboot) exits.
"""

from __future__ import annotations

import gzip
import logging
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .commands import log as command_log
from .errors import BuildError

log = logging.getLogger("klpbuild.vm")

BUSYBOX = Path("/bin/busybox")
RESULT_MARK = "KLP-RESULT:"

PRELUDE = """#!/bin/busybox sh
# The firmware's last console output ends without a newline.
echo
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /tmp /run
report() {{ echo "{mark} $*"; reboot -f; }}
wait_transition() {{
    i=0
    while [ -e "$1/transition" ] && [ "$(cat "$1/transition")" != 0 ]; do
        i=$((i + 1)); [ $i -gt 600 ] && return 1; sleep 0.1
    done
}}
wait_gone() {{
    i=0
    while [ -e "$1" ]; do i=$((i + 1)); [ $i -gt 600 ] && return 1; sleep 0.1; done
}}
step() {{
    name=$1; shift
    "$@" > /tmp/step.out 2>&1
    echo "STEP $name $?"
    sed "s/^/OUT $name: /" /tmp/step.out
}}
"""

CHECK_SCRIPT = """check() {{ sh -c {check} >/dev/null 2>&1; }}
patch=/sys/kernel/livepatch/{sysfs_name}
for module in {parents}; do
    insmod /$module.ko || report "FAIL insmod $module.ko (a module the patch changes)"
done
sh -c {setup} || report "FAIL the setup command failed"
check && report "FAIL the check passes before the patch is loaded"
insmod /{module_file} || report "FAIL insmod {module_file}"
wait_transition $patch || report "FAIL the patch transition did not finish"
[ "$(cat $patch/enabled)" = 1 ] || report "FAIL the patch is not enabled"
check || report "FAIL the check fails with the patch enabled"
echo "guest: patched: $(sh -c {show} 2>&1)"
echo 0 > $patch/enabled
wait_transition $patch || report "FAIL the unpatch transition did not finish"
wait_gone $patch || report "FAIL the patch did not go away"
rmmod {module_name} || report "FAIL rmmod {module_name}"
check && report "FAIL the check still passes after the patch is unloaded"
report PASS
"""


# What the firmware and the serial console print to reset the terminal.
ESCAPE_SEQUENCE = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|.)")


@dataclass
class GuestStep:
    """Exit status and output lines of one guest command run with `step`."""

    status: int
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def parse_steps(console: str) -> dict[str, GuestStep]:
    """Collect the output of the prelude's `step NAME COMMAND...` calls from CONSOLE.

    `step` prints "STEP NAME STATUS", then each output line as "OUT NAME: LINE".
    Other console lines, such as kernel messages, are skipped.
    """
    steps: dict[str, GuestStep] = {}
    for line in ESCAPE_SEQUENCE.sub("", console).splitlines():
        line = line.rstrip("\r")
        if line.startswith("STEP "):
            _, name, status = line.split()
            steps[name] = GuestStep(int(status))
        elif line.startswith("OUT "):
            name, _, text = line[len("OUT ") :].partition(": ")
            steps[name].lines.append(text)
    return steps


@dataclass(frozen=True)
class Guest:
    """One boot of the built kernel: files to put in the initramfs and a script to run.

    FILES maps absolute guest paths to host files; TREES are host folders whose
    contents are merged into the guest root. SCRIPT runs under busybox sh after
    the prelude, which mounts proc, sysfs and devtmpfs and defines the helpers
    report, wait_transition, wait_gone and step (see parse_steps). It should end with `report VERDICT`,
    which prints the verdict line and powers the guest off.
    """

    kernel_image: Path
    script: str
    work: Path
    files: tuple[tuple[str, Path], ...] = ()
    trees: tuple[Path, ...] = ()
    timeout: int = 180
    memory_mb: int = 512
    cmdline: str = ""


def build_initramfs(guest: Guest) -> Path:
    """Write a gzipped newc cpio archive with busybox, the guest's files and /init."""
    if not BUSYBOX.is_file():
        raise BuildError(f"{BUSYBOX} not found; install busybox-static")
    root = guest.work / "initramfs"
    shutil.rmtree(root, ignore_errors=True)
    for folder in ("bin", "proc", "sys", "dev"):
        (root / folder).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for tree in guest.trees:
        shutil.copytree(tree, root, symlinks=True, dirs_exist_ok=True)
    for guest_path, host_path in guest.files:
        target = root / guest_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(host_path, target)
    init = root / "init"
    init.write_text(PRELUDE.format(mark=RESULT_MARK) + guest.script)
    init.chmod(0o755)

    archive = guest.work / "initramfs.cpio.gz"
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
    shutil.rmtree(root, ignore_errors=True)
    return archive


def qemu_command(guest: Guest, initramfs: Path) -> list[str]:
    append = "console=ttyS0 panic=-1 oops=panic quiet " + guest.cmdline
    return [
        "qemu-system-x86_64",
        "-accel",
        "tcg",
        "-m",
        str(guest.memory_mb),
        "-smp",
        "1",
        "-nographic",
        "-no-reboot",
        "-nic",
        "none",
        "-kernel",
        str(guest.kernel_image),
        "-initrd",
        str(initramfs),
        "-append",
        append.strip(),
    ]


def run_guest(guest: Guest) -> tuple[str, str]:
    """Boot GUEST and return (its verdict, the console output).

    The console is also kept in WORK/vm-console.log. A guest that prints no
    verdict or does not stop within the timeout raises BuildError naming that file.
    """
    if not guest.kernel_image.is_file():
        raise BuildError(f"kernel image {guest.kernel_image} not found; run `doit kernel`")
    if shutil.which("qemu-system-x86_64") is None:
        raise BuildError("qemu-system-x86_64 not found; install qemu-system-x86")
    guest.work.mkdir(parents=True, exist_ok=True)
    initramfs = build_initramfs(guest)
    command = qemu_command(guest, initramfs)
    command_log.debug("%s", shlex.join(command))
    console_log = guest.work / "vm-console.log"
    try:
        completed = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=guest.timeout
        )
        output = completed.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode(errors="replace")
        console_log.write_text(output)
        raise BuildError(
            f"the VM did not finish within {guest.timeout} s; console in {console_log}"
        ) from None
    console_log.write_text(output)
    for line in output.splitlines():
        if line.startswith("guest:"):
            log.info("%s", line.strip())
        if RESULT_MARK in line:
            return line.split(RESULT_MARK, 1)[1].strip(), output
    raise BuildError(f"the guest printed no verdict; console in {console_log}")


@dataclass(frozen=True)
class VmCheck:
    kernel_image: Path
    module: Path
    check: str  # a shell command that succeeds only while the patch is active
    show: str  # a shell command whose output is printed while the patch is active
    work: Path
    timeout: int = 180
    parents: tuple[Path, ...] = ()  # modules the patch changes, loaded before the check
    setup: str = "true"  # a shell command run after loading them


def run_vm_check(request: VmCheck) -> tuple[bool, str]:
    """Boot, check, and return (passed, the guest's verdict line)."""
    if not request.module.is_file():
        raise BuildError(f"patch module {request.module} not found; run `doit build` first")
    module_name = request.module.name[: -len(".ko")]
    script = CHECK_SCRIPT.format(
        check=shlex.quote(request.check),
        show=shlex.quote(request.show),
        module_file=request.module.name,
        module_name=module_name,
        sysfs_name=module_name.replace("-", "_"),
        parents=" ".join(shlex.quote(path.name[: -len(".ko")]) for path in request.parents),
        setup=shlex.quote(request.setup),
    )
    verdict, _ = run_guest(
        Guest(
            kernel_image=request.kernel_image,
            script=script,
            work=request.work,
            files=(
                (f"/{request.module.name}", request.module),
                *((f"/{path.name}", path) for path in request.parents),
            ),
            timeout=request.timeout,
        )
    )
    return verdict == "PASS", verdict
