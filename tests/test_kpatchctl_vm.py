"""The real kpatch command inside the qemu guest, on the meminfo example patch.

The example patch renames the VmallocChunk line of /proc/meminfo to
VMALLOCCHUNK. One boot installs, loads, lists, unloads and uninstalls the
module with `kpatch` and reads /proc/meminfo after each step; a second boot
with kpatch.enable=0 on the kernel command line checks that `kpatch load
--all`, which the boot service runs, then loads nothing. The guest prints
each command's exit status and output between marker lines, and each test
below checks one step.

Cost: the module build (seconds once the kernel is cached, about 7 minutes
on 2 cores from an empty cache), the guest Python runtime (2 s, once per
host interpreter) and two boots under TCG emulation.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from steps.guestpython import GuestPythonRequest, prepare_guest_python
from steps.settings import load_settings
from steps.vm import Guest, GuestStep, parse_steps, run_guest

pytestmark = [pytest.mark.kernel, pytest.mark.vm]

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE = PROJECT / "examples" / "meminfo-string.patch"
MODULE = "livepatch-kpatchctl-meminfo"
PATCH = "livepatch_kpatchctl_meminfo"
ORIGINAL_LINE = "VmallocChunk:"
PATCHED_LINE = "VMALLOCCHUNK:"

# meminfo prints the line the patch changes; `step` comes from the guest prelude.
MEMINFO_FUNCTION = """\
meminfo() { grep -i '^vmallocchunk:' /proc/meminfo; }
"""

MAIN_SCRIPT = f"""\
{MEMINFO_FUNCTION}
release=$(uname -r)
step release uname -r
step meminfo-initial meminfo
step install kpatch install /{MODULE}.ko
step store ls /var/lib/kpatch/$release
step meminfo-installed meminfo
step list-installed kpatch list
step load kpatch load {MODULE}
step meminfo-loaded meminfo
step list-loaded kpatch list
step info kpatch info {PATCH}
step load-again kpatch load {MODULE}
step unload kpatch unload {MODULE}
step meminfo-unloaded meminfo
step sysfs-unloaded ls /sys/kernel/livepatch
step modules-unloaded cat /proc/modules
step load-all kpatch load --all
step meminfo-load-all meminfo
step unload-all kpatch unload --all
step meminfo-unload-all meminfo
step uninstall kpatch uninstall {MODULE}
step store-uninstalled ls /var/lib
step list-uninstalled kpatch list
step unload-not-loaded kpatch unload {PATCH}
step load-missing kpatch load /missing.ko
step install-wrong-release kpatch install -k 0.0.0-other /{MODULE}.ko
cp /init /tmp/not-elf.ko
step install-not-elf kpatch install /tmp/not-elf.ko
step load-not-root python3 -c "import os; os.setgid(1000); os.setuid(1000); \
os.execv('/usr/local/bin/kpatch', ['kpatch', 'load', '/{MODULE}.ko'])"
report DONE
"""

DISABLED_SCRIPT = f"""\
{MEMINFO_FUNCTION}
step install kpatch install /{MODULE}.ko
step load-all kpatch load --all
step meminfo meminfo
step sysfs ls /sys/kernel/livepatch
report DONE
"""


def error_lines(step: GuestStep) -> list[str]:
    return [line for line in step.lines if line.startswith("error:")]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """Build the example under its own module name; return (module file, kernel image)."""
    folder = tmp_path_factory.mktemp("kpatchctl-vm")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "doit", "--db-file", str(folder / "doit.db")),
            *("build", f"patch={EXAMPLE}", f"out={folder}", f"name={MODULE}"),
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    settings = load_settings({"patch": str(EXAMPLE), "name": MODULE, "out": str(folder)})
    return settings.module_path, settings.run_dir / "arch/x86/boot/bzImage"


def boot(built, work: Path, script: str, cmdline: str = "") -> dict[str, GuestStep]:
    module, kernel_image = built
    guest_python = prepare_guest_python(GuestPythonRequest(work=work))
    verdict, console = run_guest(
        Guest(
            kernel_image=kernel_image,
            script=script,
            work=work,
            files=((f"/{module.name}", module),),
            trees=guest_python.trees,
            timeout=600,
            cmdline=cmdline,
        )
    )
    assert verdict == "DONE", console[-3000:]
    assert "Traceback" not in console, console
    return parse_steps(console)


@pytest.fixture(scope="module")
def steps(built, tmp_path_factory) -> dict[str, GuestStep]:
    return boot(built, tmp_path_factory.mktemp("guest"), MAIN_SCRIPT)


@pytest.fixture(scope="module")
def disabled_steps(built, tmp_path_factory) -> dict[str, GuestStep]:
    return boot(
        built, tmp_path_factory.mktemp("guest-disabled"), DISABLED_SCRIPT, "kpatch.enable=0"
    )


@pytest.fixture(scope="module")
def release(steps) -> str:
    return steps["release"].output.strip()


def test_meminfo_initially_original(steps):
    assert steps["meminfo-initial"].output.startswith(ORIGINAL_LINE)


def test_install_copies_module(steps, release):
    install = steps["install"]
    assert install.status == 0, install.output
    assert (
        f"installed /var/lib/kpatch/{release}/{MODULE}.ko for kernel {release}" in install.output
    )
    assert steps["store"].lines == [f"{MODULE}.ko"]


def test_install_warns_without_systemd(steps):
    """The guest has no systemd, so install warns that the patch will not load at boot."""
    warnings = [line for line in steps["install"].lines if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "systemctl not found" in warnings[0]
    assert "will not load at boot" in warnings[0]


def test_install_leaves_meminfo(steps):
    assert steps["meminfo-installed"].output.startswith(ORIGINAL_LINE)


def test_list_shows_installed(steps, release):
    listing = steps["list-installed"]
    assert listing.status == 0, listing.output
    assert listing.lines == [
        "Loaded patch modules:",
        "  (none)",
        "Installed patch modules:",
        f"  {release} (running):",
        f"    {MODULE}.ko",
    ]


def test_load_installed_name(steps):
    load = steps["load"]
    assert load.status == 0, load.output
    assert f"patch {PATCH} is enabled" in load.output


def test_load_changes_meminfo(steps):
    assert steps["meminfo-loaded"].output.startswith(PATCHED_LINE)


def test_list_shows_enabled_patch(steps):
    listing = steps["list-loaded"]
    assert listing.status == 0, listing.output
    assert f"  {PATCH} [enabled]" in listing.lines
    assert "    vmlinux: meminfo_proc_show,1" in listing.lines


def test_info_shows_live_state(steps):
    info = steps["info"]
    assert info.status == 0, info.output
    assert "livepatch:      Y" in info.lines
    assert "state:          enabled" in info.lines
    assert "patched:        vmlinux meminfo_proc_show,1" in info.lines


def test_load_again_succeeds(steps):
    again = steps["load-again"]
    assert again.status == 0, again.output
    assert "already loaded and enabled" in again.output


def test_unload_restores_meminfo(steps):
    unload = steps["unload"]
    assert unload.status == 0, unload.output
    assert f"unloaded patch {PATCH}" in unload.output
    assert steps["meminfo-unloaded"].output.startswith(ORIGINAL_LINE)


def test_unload_removes_module(steps):
    assert steps["sysfs-unloaded"].lines == []
    assert not any(line.startswith(PATCH) for line in steps["modules-unloaded"].lines)


def test_load_all_loads_installed(steps):
    load_all = steps["load-all"]
    assert load_all.status == 0, load_all.output
    assert steps["meminfo-load-all"].output.startswith(PATCHED_LINE)


def test_unload_all_restores_meminfo(steps):
    unload_all = steps["unload-all"]
    assert unload_all.status == 0, unload_all.output
    assert steps["meminfo-unload-all"].output.startswith(ORIGINAL_LINE)


def test_uninstall_removes_store(steps, release):
    uninstall = steps["uninstall"]
    assert uninstall.status == 0, uninstall.output
    assert f"uninstalled {MODULE}.ko for kernel {release}" in uninstall.output
    assert "kpatch" not in steps["store-uninstalled"].lines
    assert steps["list-uninstalled"].lines[-1] == "  (none)"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("unload-not-loaded", f"patch module {PATCH} is not loaded"),
        ("load-missing", "module file not found: /missing.ko"),
        ("install-wrong-release", "not 0.0.0-other"),
        ("install-not-elf", "invalid module file /tmp/not-elf.ko"),
        ("load-not-root", "kpatch load needs root privileges"),
    ],
)
def test_error_is_one_line(steps, name, message):
    step = steps[name]
    assert step.status == 1, step.output
    assert len(error_lines(step)) == 1, step.output
    assert message in error_lines(step)[0]


def test_disabled_boot_loads_nothing(disabled_steps):
    """With kpatch.enable=0, load --all (the boot service's command) leaves the kernel alone."""
    load_all = disabled_steps["load-all"]
    assert disabled_steps["install"].status == 0, disabled_steps["install"].output
    assert load_all.status == 0, load_all.output
    assert "kpatch.enable=0" in load_all.output
    assert disabled_steps["meminfo"].output.startswith(ORIGINAL_LINE)
    assert disabled_steps["sysfs"].lines == []
