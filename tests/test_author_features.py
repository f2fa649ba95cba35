"""The patch author features of kmod/kpatch-macros.h and kpatch-syscall.h, in the guest.

Each example patch under examples/ (callbacks, a shadow variable,
KPATCH_PRINTK, a system call, an ignored __init function) is built under a
module name of its own and checked in a boot of its own. The guest loads
the module, exercises what the patch changed, disables and unloads the
patch, and prints each command's exit status and output after marker
words. Two more builds show what the marks prevent: the same changes
without KPATCH_IGNORE_FUNCTION or KPATCH_SYSCALL_DEFINE1 stop at the diff.

Cost: each module build recompiles one or two objects (seconds once the
kernel is cached, about 7 minutes on 2 cores from an empty cache), and each
boot runs under TCG emulation.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from steps.settings import load_settings
from steps.vm import Guest, GuestStep, parse_steps, run_guest

pytestmark = [pytest.mark.kernel, pytest.mark.vm]

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLES = PROJECT / "examples"

# The timestamp dmesg puts before a message with CONFIG_PRINTK_TIME.
DMESG_TIME = re.compile(r"^\[\s*\d+\.\d+\]\s")

# enable_patch and disable_patch load and unload $MODULE and wait for its
# livepatch transition at $PATCH. `step` comes from the guest prelude.
GUEST_FUNCTIONS = """\
enable_patch() {
    insmod /$MODULE.ko || return 1
    wait_transition $PATCH || return 2
    [ "$(cat $PATCH/enabled)" = 1 ] || return 3
}
disable_patch() {
    echo 0 > $PATCH/enabled || return 1
    wait_transition $PATCH || return 2
    wait_gone $PATCH || return 3
    rmmod $MODULE || return 4
}
"""


def log_messages(step: GuestStep) -> list[str]:
    """Return the dmesg lines of STEP's output without their timestamps."""
    return [DMESG_TIME.sub("", line) for line in step.lines]


def build(patches: str, module: str, folder: Path) -> subprocess.CompletedProcess:
    """Run `doit build` for PATCHES (comma-separated) under the name livepatch-MODULE."""
    return subprocess.run(
        [
            *(sys.executable, "-m", "doit", "--db-file", str(folder / "doit.db")),
            *("build", f"patch={patches}", f"out={folder}", f"name={module}"),
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=3600,
    )


def check_example(example: str, script: str, folder: Path) -> dict[str, GuestStep]:
    """Build examples/EXAMPLE.patch, boot the guest with SCRIPT and return its steps."""
    patch = EXAMPLES / f"{example}.patch"
    module = f"author-{example}"
    result = build(str(patch), module, folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return boot(folder, module, str(patch), script)


def boot(folder: Path, module: str, patches: str, script: str) -> dict[str, GuestStep]:
    """Boot the guest with the built livepatch-MODULE and SCRIPT; return its steps."""
    settings = load_settings({"patch": patches, "name": module, "out": str(folder)})
    sysfs_name = settings.module.replace("-", "_")
    header = f"MODULE={settings.module}\nPATCH=/sys/kernel/livepatch/{sysfs_name}\n"
    verdict, console = run_guest(
        Guest(
            kernel_image=settings.run_dir / "arch/x86/boot/bzImage",
            script=header + GUEST_FUNCTIONS + script + "report DONE\n",
            work=folder / "guest",
            files=((f"/{settings.module_path.name}", settings.module_path),),
            timeout=300,
        )
    )
    assert verdict == "DONE", console[-3000:]
    return parse_steps(console)


def diff_summary(example: str, obj: str) -> dict:
    """Return the diff summary that the build of EXAMPLE wrote for OBJ."""
    settings = load_settings({"name": f"author-{example}"})
    return json.loads((settings.work / "diff" / f"{obj}.json").read_text())


# Callbacks.

CALLBACKS_SCRIPT = """\
step version-before cat /proc/version
step enable enable_patch
step version-patched cat /proc/version
step disable disable_patch
step version-after cat /proc/version
step log sh -c 'dmesg | grep livepatch-callbacks:'
"""
CALLBACKS_LINE = "livepatch callbacks: post-patch ran"


@pytest.fixture(scope="module")
def callbacks(tmp_path_factory) -> dict[str, GuestStep]:
    return check_example("callbacks", CALLBACKS_SCRIPT, tmp_path_factory.mktemp("callbacks"))


def test_callbacks_enable_disable(callbacks):
    assert callbacks["enable"].status == 0, callbacks["enable"].output
    assert callbacks["disable"].status == 0, callbacks["disable"].output


def test_callbacks_run_in_order(callbacks):
    assert log_messages(callbacks["log"]) == [
        "livepatch-callbacks: pre-patch vmlinux",
        "livepatch-callbacks: post-patch vmlinux",
        "livepatch-callbacks: pre-unpatch vmlinux",
        "livepatch-callbacks: post-unpatch vmlinux",
    ]


def test_post_patch_flag_seen(callbacks):
    """The post-patch callback sets a flag that the patched /proc/version reads."""
    assert CALLBACKS_LINE in callbacks["version-patched"].lines
    assert CALLBACKS_LINE not in callbacks["version-before"].lines


def test_pre_unpatch_flag_cleared(callbacks):
    assert CALLBACKS_LINE not in callbacks["version-after"].lines
    assert callbacks["version-after"].lines == callbacks["version-before"].lines


# Shadow variables. busybox sh runs the last command of `sh -c` in its own
# process, which would rename it, so `exit $?` comes last.

SHADOW_SCRIPT = """\
step enable enable_patch
step writer sh -c 'echo -n first > /proc/$$/comm; echo -n second > /proc/$$/comm; \
grep -e ^Name: -e ^CommWrites: /proc/$$/status; exit $?'
step other grep ^CommWrites: /proc/1/status
step disable disable_patch
step after sh -c 'echo third > /proc/$$/comm; grep -c ^CommWrites: /proc/$$/status'
"""


@pytest.fixture(scope="module")
def shadow(tmp_path_factory) -> dict[str, GuestStep]:
    return check_example("shadow-variable", SHADOW_SCRIPT, tmp_path_factory.mktemp("shadow"))


def test_shadow_enable_disable(shadow):
    assert shadow["enable"].status == 0, shadow["enable"].output
    assert shadow["disable"].status == 0, shadow["disable"].output


def test_shadow_counts_writes(shadow):
    """comm_write sets the shadow count of its task, proc_pid_status reads it."""
    assert shadow["writer"].status == 0, shadow["writer"].output
    assert shadow["writer"].lines == ["Name:\tsecond", "CommWrites:\t2"]


def test_shadow_per_task(shadow):
    assert shadow["other"].lines == ["CommWrites:\t0"]


def test_shadow_gone_after_unpatch(shadow):
    assert shadow["after"].lines == ["0"]


# KPATCH_PRINTK.

PRINTK_SCRIPT = """\
step enable enable_patch
step read cat /proc/uptime
step disable disable_patch
step read-after cat /proc/uptime
step log sh -c 'dmesg | grep livepatch-printk:'
"""


@pytest.fixture(scope="module")
def printk(tmp_path_factory) -> dict[str, GuestStep]:
    return check_example("printk", PRINTK_SCRIPT, tmp_path_factory.mktemp("printk"))


def test_printk_enable_disable(printk):
    assert printk["enable"].status == 0, printk["enable"].output
    assert printk["disable"].status == 0, printk["disable"].output


def test_printk_logs_while_patched(printk):
    """One read while patched logs one message; the read after unpatching logs none."""
    assert printk["read"].status == 0
    assert printk["read-after"].status == 0
    assert log_messages(printk["log"]) == ["livepatch-printk: cat read /proc/uptime"]


# KPATCH_SYSCALL_DEFINE.

SYSCALL_SCRIPT = """\
step before uname -s
step release-before uname -r
step enable enable_patch
step patched uname -s
step release-patched uname -r
step disable disable_patch
step after uname -s
"""


@pytest.fixture(scope="module")
def syscall(tmp_path_factory) -> dict[str, GuestStep]:
    return check_example("syscall", SYSCALL_SCRIPT, tmp_path_factory.mktemp("syscall"))


def test_syscall_enable_disable(syscall):
    assert syscall["enable"].status == 0, syscall["enable"].output
    assert syscall["disable"].status == 0, syscall["disable"].output


def test_syscall_patched(syscall):
    assert syscall["before"].lines == ["Linux"]
    assert syscall["patched"].lines == ["Linux-livepatched"]
    assert syscall["after"].lines == ["Linux"]


def test_syscall_other_fields_kept(syscall):
    assert syscall["release-patched"].lines == syscall["release-before"].lines


def test_syscall_patches_entry_point(syscall):
    """The x86_64 entry point is the changed function; the renamed body is new."""
    summary = diff_summary("syscall", "kernel/sys.o")
    assert summary["changed_functions"] == ["__x64_sys_newuname"]
    assert "__kpatch_do_sys_newuname" in summary["new_functions"]


def test_plain_syscall_define_rejected(tmp_path):
    """Without KPATCH_SYSCALL_DEFINE1 the changed body, __do_sys_newuname, is notrace."""
    text = (EXAMPLES / "syscall.patch").read_text()
    plain = text.replace(
        '+#include "kpatch-syscall.h"\n+KPATCH_SYSCALL_DEFINE1(', "+\n+SYSCALL_DEFINE1("
    )
    assert plain != text
    patch = tmp_path / "syscall-plain.patch"
    patch.write_text(plain)
    result = build(str(patch), "author-syscall-plain", tmp_path)
    assert result.returncode != 0
    assert "function __do_sys_newuname changed but has no ftrace call site" in result.stderr


# KPATCH_IGNORE_FUNCTION.

IGNORE_SCRIPT = """\
step before cat /proc/loadavg
step enable enable_patch
step patched cat /proc/loadavg
step disable disable_patch
step after cat /proc/loadavg
"""


@pytest.fixture(scope="module")
def ignore_init(tmp_path_factory) -> dict[str, GuestStep]:
    return check_example("ignore-init", IGNORE_SCRIPT, tmp_path_factory.mktemp("ignore"))


def test_ignore_enable_disable(ignore_init):
    assert ignore_init["enable"].status == 0, ignore_init["enable"].output
    assert ignore_init["disable"].status == 0, ignore_init["disable"].output


def test_ignore_runtime_change_applied(ignore_init):
    assert not ignore_init["before"].output.endswith(" livepatched")
    assert ignore_init["patched"].output.endswith(" livepatched")
    assert not ignore_init["after"].output.endswith(" livepatched")


def test_ignored_init_not_patched(ignore_init):
    summary = diff_summary("ignore-init", "fs/proc/loadavg.o")
    assert summary["changed_functions"] == ["loadavg_proc_show"]


def test_unmarked_init_change_rejected(tmp_path):
    """The same change without KPATCH_IGNORE_FUNCTION stops at the changed __init function."""
    text = (EXAMPLES / "ignore-init.patch").read_text()
    # The mark is the last added line of the last hunk, which gets one line shorter.
    unmarked = text.replace("+KPATCH_IGNORE_FUNCTION(proc_loadavg_init);\n", "")
    unmarked = unmarked.replace("@@ -30,8 +31,9 @@", "@@ -30,8 +31,8 @@")
    assert unmarked.count("@@ -30,8 +31,8 @@") == 1
    patch = tmp_path / "ignore-init-unmarked.patch"
    patch.write_text(unmarked)
    result = build(str(patch), "author-ignore-init-unmarked", tmp_path)
    assert result.returncode != 0
    assert "__init function proc_loadavg_init changed" in result.stderr


# Two callbacks of one kind for one object.

DUPLICATE_SCRIPT = """\
step enable enable_patch
step log sh -c 'dmesg | grep "callbacks for object"'
step sysfs ls /sys/kernel/livepatch
"""


def test_duplicate_callbacks_rejected(tmp_path):
    """Both patches have a post-unpatch callback for vmlinux, which has one slot for it."""
    patches = f"{EXAMPLES / 'callbacks.patch'},{EXAMPLES / 'shadow-variable.patch'}"
    result = build(patches, "author-duplicate-callbacks", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    steps = boot(tmp_path, "author-duplicate-callbacks", patches, DUPLICATE_SCRIPT)
    assert steps["enable"].status == 1
    assert "Invalid argument" in steps["enable"].output
    # busybox insmod tries finit_module, then init_module, so the hook runs twice.
    messages = log_messages(steps["log"])
    assert messages
    assert set(messages) == {
        "livepatch_author_duplicate_callbacks: two post-unpatch callbacks for object vmlinux; "
        "an object can have one of each kind"
    }
    assert steps["sysfs"].lines == []
