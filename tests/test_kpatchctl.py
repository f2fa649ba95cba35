"""Tests of the kpatch command against a fake sysfs and procfs tree."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kpatchctl_fakes import OTHER_RELEASE, RELEASE, FakeKernel, build_module, livepatch_fields

from kpatchctl.cli import main
from kpatchctl.context import Host
from kpatchctl.errors import KpatchError, ModuleBusyError
from kpatchctl.loader import KmodLoader
from kpatchctl.modinfo import module_name_from_file_name, read_modinfo
from kpatchctl.paths import SystemPaths

PATCH = "livepatch_test"


@pytest.fixture(autouse=True)
def hermetic(monkeypatch):
    """Keep a KPATCH_ROOT of the calling shell from reaching the tests."""
    monkeypatch.delenv("KPATCH_ROOT", raising=False)


@pytest.fixture(scope="session")
def modules(tmp_path_factory) -> dict[str, Path]:
    """Real ELF module files, compiled once for the whole session."""
    directory = tmp_path_factory.mktemp("modules")
    return {
        "patch": build_module(directory, "livepatch-test.ko", livepatch_fields(PATCH)),
        "second": build_module(
            directory, "livepatch-second.ko", livepatch_fields("livepatch_second")
        ),
        "other": build_module(
            directory, "livepatch-other.ko", livepatch_fields("livepatch_other", OTHER_RELEASE)
        ),
        "plain": build_module(
            directory, "plain.ko", ["license=GPL", "name=plain", f"vermagic={RELEASE} SMP "]
        ),
        "bare": build_module(directory, "bare.ko", []),
    }


@pytest.fixture
def kernel(tmp_path) -> FakeKernel:
    return FakeKernel(tmp_path / "root")


def run(kernel: FakeKernel, *args: str | Path, euid: int = 0) -> int:
    host = Host(loader=kernel, clock=kernel, euid=euid)
    return main(["--root", str(kernel.root), *map(str, args)], host=host)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def installed_path(kernel: FakeKernel, release: str, file_name: str) -> Path:
    return kernel.root / "var/lib/kpatch" / release / file_name


# modinfo


def test_modinfo_livepatch_flag(modules):
    assert read_modinfo(modules["patch"]).is_livepatch


def test_modinfo_vermagic_release(modules):
    assert read_modinfo(modules["patch"]).vermagic_release == RELEASE


def test_modinfo_name_field(modules):
    assert read_modinfo(modules["patch"]).name == PATCH


def test_modinfo_keeps_field_order(modules):
    keys = [key for key, _ in read_modinfo(modules["patch"]).fields]
    assert keys == ["license", "livepatch", "depends", "name", "vermagic"]


def test_modinfo_plain_module(modules):
    assert not read_modinfo(modules["plain"]).is_livepatch


def test_modinfo_rejects_text_file(tmp_path):
    text = tmp_path / "notes.ko"
    text.write_text("not an ELF file\n")
    with pytest.raises(KpatchError, match="invalid module file"):
        read_modinfo(text)


def test_modinfo_without_section(modules):
    with pytest.raises(KpatchError, match="no .modinfo section"):
        read_modinfo(modules["bare"])


def test_module_name_from_path():
    assert module_name_from_file_name("/tmp/livepatch-fix-1.ko") == "livepatch_fix_1"


# load


def test_load_enables_patch(kernel, modules):
    assert run(kernel, "load", modules["patch"]) == 0
    assert (kernel.livepatch_dir / PATCH / "enabled").read_text().strip() == "1"
    assert kernel.inserted == [modules["patch"]]


def test_load_waits_for_transition(kernel, modules, capsys):
    kernel.enable_ticks = 4
    assert run(kernel, "load", modules["patch"]) == 0
    assert (kernel.livepatch_dir / PATCH / "transition").read_text().strip() == "0"
    assert "transition of patch livepatch_test finished" in capsys.readouterr().err


def test_load_installed_by_name(kernel, modules):
    assert run(kernel, "install", modules["patch"]) == 0
    assert run(kernel, "load", PATCH) == 0
    assert kernel.inserted == [installed_path(kernel, RELEASE, "livepatch-test.ko")]


def test_load_already_enabled(kernel, modules, capsys):
    assert run(kernel, "load", modules["patch"]) == 0
    assert run(kernel, "load", modules["patch"]) == 0
    assert len(kernel.inserted) == 1
    assert "already loaded and enabled" in capsys.readouterr().err


def test_load_while_enabling_waits(kernel, modules, capsys):
    """A second load during the first one's transition waits for that transition to end."""
    kernel.add_patch_dir(PATCH, enabled=1, transition=1)
    kernel.add_module(PATCH)
    kernel.pending[PATCH] = 3
    assert run(kernel, "load", modules["patch"]) == 0
    stderr = capsys.readouterr().err
    assert kernel.inserted == []
    assert "already loaded and still enabling" in stderr
    assert f"patch {PATCH} is enabled" in stderr
    assert (kernel.livepatch_dir / PATCH / "transition").read_text() == "0\n"


def test_load_signals_stalled_transition(kernel, modules):
    kernel.stall_enable = True
    kernel.finish_on_signal = True
    assert run(kernel, "load", "--signal-after", "3", "--timeout", "10", modules["patch"]) == 0
    assert [name for name, _ in kernel.signals] == [PATCH]
    assert kernel.signals[0][1] >= 1003.0


def test_load_timeout_exit_code(kernel, modules):
    kernel.stall_enable = True
    kernel.add_task(812, 813, "sleeper", blocks=True)
    assert run(kernel, "load", "--signal-after", "1", "--timeout", "2", modules["patch"]) == 3


def test_load_timeout_names_blocking_task(kernel, modules, capsys):
    kernel.stall_enable = True
    kernel.add_task(812, 813, "sleeper", blocks=True)
    run(kernel, "load", "--signal-after", "1", "--timeout", "2", modules["patch"])
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert "813 (sleeper)" in lines[0]
    assert "systemd" not in lines[0]


def test_load_timeout_logs_stack(kernel, modules, capsys):
    kernel.stall_enable = True
    kernel.add_task(812, 813, "sleeper", blocks=True)
    run(kernel, "load", "--signal-after", "1", "--timeout", "2", modules["patch"])
    assert "stack of task 813: do_nanosleep+0x8d/0x190 <- ksys_read" in capsys.readouterr().err


def test_load_timeout_rolls_back(kernel, modules):
    kernel.stall_enable = True
    run(kernel, "load", "--signal-after", "1", "--timeout", "2", modules["patch"])
    assert not (kernel.livepatch_dir / PATCH).exists()
    assert kernel.removed == [PATCH]


def test_load_stalled_rollback(kernel, modules, capsys):
    kernel.stall_enable = True
    kernel.stall_disable = True
    assert run(kernel, "load", "--signal-after", "1", "--timeout", "2", modules["patch"]) == 3
    assert "rollback is still running" in capsys.readouterr().err
    assert kernel.removed == []


def test_load_retries_busy_insert(kernel, modules, capsys):
    kernel.busy_inserts = 2
    assert run(kernel, "load", modules["patch"]) == 0
    assert kernel.inserted == [modules["patch"]]
    assert "retrying in 2 s" in capsys.readouterr().err


def test_load_gives_up_when_busy(kernel, modules, capsys):
    kernel.busy_inserts = 5
    assert run(kernel, "load", modules["patch"]) == 1
    assert "Device or resource busy" in error_lines(capsys.readouterr().err)[0]


def test_load_replaces_disabled_module(kernel, modules):
    kernel.add_module(PATCH, refcount=0)
    assert run(kernel, "load", modules["patch"]) == 0
    assert kernel.removed == [PATCH]
    assert kernel.inserted == [modules["patch"]]


def test_load_all_installed(kernel, modules):
    for name in ("patch", "second"):
        assert run(kernel, "install", modules[name]) == 0
    assert run(kernel, "install", "-k", OTHER_RELEASE, modules["other"]) == 0
    assert run(kernel, "load", "--all") == 0
    assert sorted(path.name for path in kernel.livepatch_dir.iterdir()) == [
        "livepatch_second",
        PATCH,
    ]


def test_load_all_honours_cmdline_flag(kernel, modules, capsys):
    (kernel.root / "proc/cmdline").write_text("root=/dev/vda kpatch.enable=0 quiet\n")
    assert run(kernel, "install", modules["patch"]) == 0
    assert run(kernel, "load", "--all") == 0
    assert kernel.inserted == []
    assert "kpatch.enable=0" in capsys.readouterr().err


def test_load_all_nothing_installed(kernel, capsys):
    assert run(kernel, "load", "--all") == 0
    assert f"no patch module is installed for kernel {RELEASE}" in capsys.readouterr().err


def test_load_missing_file(kernel, capsys):
    assert run(kernel, "load", "/nonexistent/livepatch-gone.ko") == 1
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert "module file not found: /nonexistent/livepatch-gone.ko" in lines[0]


def test_load_not_livepatch(kernel, modules, capsys):
    assert run(kernel, "load", modules["plain"]) == 1
    assert "is not a livepatch module" in error_lines(capsys.readouterr().err)[0]


def test_load_wrong_release(kernel, modules, capsys):
    assert run(kernel, "load", modules["other"]) == 1
    line = error_lines(capsys.readouterr().err)[0]
    assert f"built for kernel {OTHER_RELEASE}, not {RELEASE}" in line


def test_load_without_livepatch_support(kernel, modules, capsys):
    kernel.livepatch_dir.rmdir()
    assert run(kernel, "load", modules["patch"]) == 1
    assert "no livepatch support" in error_lines(capsys.readouterr().err)[0]
    assert kernel.inserted == []


def test_load_needs_root(kernel, modules, capsys):
    host = Host(loader=kernel, clock=kernel, euid=1000)
    assert main(["--root", "/", "load", str(modules["patch"])], host=host) == 1
    assert "needs root privileges (effective uid 1000)" in error_lines(capsys.readouterr().err)[0]
    assert kernel.inserted == []


def test_root_check_skipped_below_root(kernel, modules):
    assert run(kernel, "load", modules["patch"], euid=1000) == 0


def test_load_no_traceback(kernel, capsys):
    run(kernel, "load", "/nonexistent.ko")
    assert "Traceback" not in capsys.readouterr().err


# the insmod and rmmod loader


def test_kmod_loader_rejects_other_root(tmp_path):
    with pytest.raises(KpatchError, match="--root other than /"):
        KmodLoader(live_system=False).insert(tmp_path / "livepatch-test.ko")


@pytest.fixture
def fake_insmod(tmp_path, monkeypatch) -> Path:
    """Put an insmod on PATH that records its arguments and fails with EBUSY."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "insmod-arguments"
    script = bin_dir / "insmod"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {record}\n'
        'echo "insmod: ERROR: could not insert module $1: Device or resource busy" >&2\n'
        "exit 1\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return record


def test_kmod_loader_runs_insmod(fake_insmod):
    with pytest.raises(ModuleBusyError):
        KmodLoader(live_system=True).insert(Path("/tmp/livepatch test.ko"))
    assert fake_insmod.read_text() == "/tmp/livepatch test.ko\n"


def test_kmod_loader_logs_command(fake_insmod, caplog):
    caplog.set_level("DEBUG", logger="kpatchctl")
    with pytest.raises(ModuleBusyError):
        KmodLoader(live_system=True).insert(Path("/tmp/livepatch test.ko"))
    assert "insmod '/tmp/livepatch test.ko'" in caplog.messages


# unload


def test_unload_removes_module(kernel, modules):
    assert run(kernel, "load", modules["patch"]) == 0
    assert run(kernel, "unload", PATCH) == 0
    assert not (kernel.livepatch_dir / PATCH).exists()
    assert kernel.removed == [PATCH]
    assert kernel.proc_modules.read_text() == ""


def test_unload_by_file_name(kernel, modules):
    assert run(kernel, "load", modules["patch"]) == 0
    assert run(kernel, "unload", "livepatch-test.ko") == 0
    assert kernel.removed == [PATCH]


def test_unload_waits_for_refcount(kernel, modules):
    kernel.reference_ticks = 5
    assert run(kernel, "load", modules["patch"]) == 0
    assert run(kernel, "unload", PATCH) == 0
    assert kernel.removed == [PATCH]


def test_unload_refcount_timeout(kernel, modules, capsys):
    kernel.reference_ticks = None
    assert run(kernel, "load", modules["patch"]) == 0
    assert run(kernel, "unload", "--timeout", "1", PATCH) == 1
    assert "still has refcnt 1 after 1 s" in error_lines(capsys.readouterr().err)[0]


def test_unload_not_loaded(kernel, capsys):
    assert run(kernel, "unload", PATCH) == 1
    assert "patch module livepatch_test is not loaded" in error_lines(capsys.readouterr().err)[0]


def test_unload_plain_module(kernel, capsys):
    kernel.add_module("ext4", taints="")
    assert run(kernel, "unload", "ext4") == 1
    assert "not a livepatch module" in error_lines(capsys.readouterr().err)[0]
    assert kernel.removed == []


def test_unload_timeout(kernel, modules, capsys):
    kernel.stall_disable = True
    kernel.add_task(812, 813, "sleeper", blocks=True)
    assert run(kernel, "load", modules["patch"]) == 0
    assert run(kernel, "unload", "--signal-after", "1", "--timeout", "2", PATCH) == 3
    assert "813 (sleeper)" in error_lines(capsys.readouterr().err)[0]
    assert (kernel.livepatch_dir / PATCH / "transition").read_text().strip() == "1"


def test_unload_all(kernel, modules):
    for name in ("patch", "second"):
        assert run(kernel, "load", modules[name]) == 0
    assert run(kernel, "unload", "--all") == 0
    assert sorted(kernel.removed) == ["livepatch_second", PATCH]


def test_unload_all_retries_failure(kernel, modules):
    for name in ("patch", "second"):
        assert run(kernel, "load", modules[name]) == 0
    kernel.failing_removes["livepatch_second"] = 1
    assert run(kernel, "unload", "--all") == 0
    assert kernel.removed == [PATCH, "livepatch_second"]


def test_unload_all_leftover_module(kernel):
    kernel.add_module("livepatch_old", refcount=0)
    assert run(kernel, "unload", "--all") == 0
    assert kernel.removed == ["livepatch_old"]


def test_unload_all_reports_failure(kernel, modules, capsys):
    kernel.stall_disable = True
    assert run(kernel, "load", modules["patch"]) == 0
    assert run(kernel, "unload", "--all", "--signal-after", "1", "--timeout", "2") == 3
    assert len(error_lines(capsys.readouterr().err)) == 1


def test_unload_without_livepatch_support(kernel, capsys):
    kernel.livepatch_dir.rmdir()
    assert run(kernel, "unload", "--all") == 1
    assert "no livepatch support" in error_lines(capsys.readouterr().err)[0]


# list


def test_list_states(kernel, capsys):
    kernel.add_patch_dir("patch_a", enabled=1, transition=0)
    kernel.add_patch_dir("patch_b", enabled=1, transition=1)
    kernel.add_patch_dir("patch_c", enabled=0, transition=1)
    kernel.add_patch_dir("patch_d", enabled=0, transition=0)
    assert run(kernel, "list") == 0
    output = capsys.readouterr().out
    assert "patch_a [enabled]" in output
    assert "patch_b [enabling]" in output
    assert "patch_c [disabling]" in output
    assert "patch_d [disabled]" in output


def test_list_patched_functions(kernel, modules, capsys):
    assert run(kernel, "load", modules["patch"]) == 0
    assert run(kernel, "list") == 0
    assert "vmlinux: cmdline_proc_show,1" in capsys.readouterr().out


def test_list_installed_per_release(kernel, modules, capsys):
    assert run(kernel, "install", modules["patch"]) == 0
    assert run(kernel, "install", "-k", OTHER_RELEASE, modules["other"]) == 0
    assert run(kernel, "list") == 0
    output = capsys.readouterr().out
    assert f"{RELEASE} (running):\n    livepatch-test.ko" in output
    assert f"{OTHER_RELEASE}:\n    livepatch-other.ko" in output


def test_list_blocking_tasks(kernel, modules, capsys):
    kernel.add_task(812, 813, "sleeper", blocks=True)
    kernel.add_patch_dir("patch_b", enabled=1, transition=1)
    (kernel.root / "proc/812/task/813/patch_state").write_text("0\n")
    assert run(kernel, "list") == 0
    output = capsys.readouterr().out
    assert "Tasks blocking the transition of patch_b:\n  813 sleeper (patch_state 0)" in output


def test_list_without_livepatch_support(kernel, capsys):
    kernel.livepatch_dir.rmdir()
    assert run(kernel, "list") == 0
    assert "(kernel has no livepatch support)" in capsys.readouterr().out


def test_list_from_environment(kernel, monkeypatch, capsys):
    kernel.add_patch_dir("patch_a", enabled=1, transition=0)
    monkeypatch.setenv("KPATCH_ROOT", str(kernel.root))
    assert main(["list"], host=Host(loader=kernel, clock=kernel, euid=0)) == 0
    assert "patch_a [enabled]" in capsys.readouterr().out


# info


def test_info_for_file(kernel, modules, capsys):
    assert run(kernel, "info", modules["patch"]) == 0
    output = capsys.readouterr().out
    assert "livepatch:      Y" in output
    assert f"vermagic:       {RELEASE} SMP preempt mod_unload" in output


def test_info_for_installed(kernel, modules, capsys):
    assert run(kernel, "install", modules["patch"]) == 0
    assert run(kernel, "info", PATCH) == 0
    expected = installed_path(kernel, RELEASE, "livepatch-test.ko")
    assert f"filename:       {expected}" in capsys.readouterr().out


def test_info_for_other_release(kernel, modules, capsys):
    assert run(kernel, "install", "-k", OTHER_RELEASE, modules["other"]) == 0
    capsys.readouterr()
    assert run(kernel, "info", "-k", OTHER_RELEASE, "livepatch-other") == 0
    expected = installed_path(kernel, OTHER_RELEASE, "livepatch-other.ko")
    assert f"filename:       {expected}" in capsys.readouterr().out
    assert run(kernel, "info", "livepatch-other") != 0


def test_info_for_loaded(kernel, modules, capsys):
    assert run(kernel, "load", modules["patch"]) == 0
    assert run(kernel, "info", PATCH) == 0
    output = capsys.readouterr().out
    assert "state:          enabled" in output
    assert "patched:        vmlinux cmdline_proc_show,1" in output


def test_info_unknown_module(kernel, capsys):
    assert run(kernel, "info", "livepatch_none") == 1
    assert "module not found: livepatch_none" in error_lines(capsys.readouterr().err)[0]


# install and uninstall


def unit_file(kernel: FakeKernel) -> Path:
    return kernel.root / "etc/systemd/system/kpatch.service"


def wants_link(kernel: FakeKernel) -> Path:
    return kernel.root / "etc/systemd/system/multi-user.target.wants/kpatch.service"


def test_install_copies_module(kernel, modules):
    assert run(kernel, "install", modules["patch"]) == 0
    copy = installed_path(kernel, RELEASE, "livepatch-test.ko")
    assert copy.read_bytes() == modules["patch"].read_bytes()


def test_install_writes_unit(kernel, modules):
    assert run(kernel, "install", modules["patch"]) == 0
    text = unit_file(kernel).read_text()
    assert "ConditionKernelCommandLine=!kpatch.enable=0" in text
    assert "load --all\n" in text
    assert "@KPATCH@" not in text


def test_install_enables_unit(kernel, modules):
    assert run(kernel, "install", modules["patch"]) == 0
    assert os.readlink(wants_link(kernel)) == "/etc/systemd/system/kpatch.service"


def test_install_other_release(kernel, modules):
    assert run(kernel, "install", "-k", OTHER_RELEASE, modules["other"]) == 0
    assert installed_path(kernel, OTHER_RELEASE, "livepatch-other.ko").is_file()


def test_install_replaces_file(kernel, modules, capsys):
    assert run(kernel, "install", modules["patch"]) == 0
    assert run(kernel, "install", modules["patch"]) == 0
    assert "replaced" in capsys.readouterr().err


def test_install_wrong_release(kernel, modules, capsys):
    assert run(kernel, "install", modules["other"]) == 1
    line = error_lines(capsys.readouterr().err)[0]
    assert f"-k {OTHER_RELEASE}" in line
    assert not (kernel.root / "var/lib/kpatch").exists()


def test_install_not_livepatch(kernel, modules, capsys):
    assert run(kernel, "install", modules["plain"]) == 1
    assert "is not a livepatch module" in error_lines(capsys.readouterr().err)[0]


def test_install_missing_file(kernel, tmp_path, capsys):
    assert run(kernel, "install", tmp_path / "livepatch-gone.ko") == 1
    assert "module file not found" in error_lines(capsys.readouterr().err)[0]


def test_install_rejects_suffix(kernel, modules, tmp_path, capsys):
    renamed = tmp_path / "livepatch-test.o"
    renamed.write_bytes(modules["patch"].read_bytes())
    assert run(kernel, "install", renamed) == 1
    assert "is not a .ko file" in error_lines(capsys.readouterr().err)[0]


def test_install_invalid_release(kernel, modules, capsys):
    assert run(kernel, "install", "-k", "../../etc", modules["patch"]) == 1
    assert "invalid kernel release '../../etc'" in error_lines(capsys.readouterr().err)[0]


def test_install_store_not_folder(kernel, modules, capsys):
    """An OSError below the subcommands is reported as one error line, not a traceback."""
    (kernel.root / "var/lib").mkdir(parents=True)
    (kernel.root / "var/lib/kpatch").write_text("")
    assert run(kernel, "install", modules["patch"]) == 1
    stderr = capsys.readouterr().err
    assert len(error_lines(stderr)) == 1
    assert "Traceback" not in stderr


def test_install_needs_root(kernel, modules, capsys):
    host = Host(loader=kernel, clock=kernel, euid=1000)
    assert main(["--root", "/", "install", str(modules["patch"])], host=host) == 1
    assert "kpatch install needs root" in error_lines(capsys.readouterr().err)[0]


def test_uninstall_removes_file(kernel, modules):
    assert run(kernel, "install", modules["patch"]) == 0
    assert run(kernel, "uninstall", PATCH) == 0
    assert not (kernel.root / "var/lib/kpatch").exists()


def test_uninstall_disables_unit(kernel, modules):
    assert run(kernel, "install", modules["patch"]) == 0
    assert run(kernel, "uninstall", "livepatch-test.ko") == 0
    assert not wants_link(kernel).is_symlink()
    assert unit_file(kernel).is_file()


def test_uninstall_keeps_unit_while_used(kernel, modules):
    assert run(kernel, "install", modules["patch"]) == 0
    assert run(kernel, "install", "-k", OTHER_RELEASE, modules["other"]) == 0
    assert run(kernel, "uninstall", PATCH) == 0
    assert wants_link(kernel).is_symlink()


def test_uninstall_not_installed(kernel, capsys):
    assert run(kernel, "uninstall", "-k", OTHER_RELEASE, PATCH) == 1
    line = error_lines(capsys.readouterr().err)[0]
    assert f"{PATCH} is not installed for kernel {OTHER_RELEASE}" in line


def test_uninstall_rejects_path(kernel, capsys):
    assert run(kernel, "uninstall", "/tmp/livepatch-test.ko") == 1
    assert "no path" in error_lines(capsys.readouterr().err)[0]


# the boot service on a live system


@pytest.fixture
def live(kernel, tmp_path, monkeypatch) -> Path:
    """Treat the fake root as the live system, with a PATH holding only tmp_path/bin.

    Returns that bin folder, where a test can put a fake systemctl.
    """
    monkeypatch.setattr(SystemPaths, "is_live_system", property(lambda paths: True))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def fake_systemctl(bin_dir: Path, exit_status: int = 0) -> Path:
    """Write a systemctl that records its arguments, one call a line, and returns the file."""
    calls = bin_dir / "systemctl-calls"
    script = bin_dir / "systemctl"
    script.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n'
        f'[ {exit_status} = 0 ] || echo "Failed to enable unit: Access denied" >&2\n'
        f"exit {exit_status}\n"
    )
    script.chmod(0o755)
    return calls


def test_install_without_systemctl(kernel, modules, live, capsys):
    """A live system without systemd keeps the module and warns that boot will not load it."""
    assert run(kernel, "install", modules["patch"]) == 0
    stderr = capsys.readouterr().err
    assert installed_path(kernel, RELEASE, "livepatch-test.ko").is_file()
    assert "warning: systemctl not found" in stderr
    assert "will not load at boot" in stderr
    assert not unit_file(kernel).exists()


def test_uninstall_without_systemctl(kernel, modules, live, capsys):
    assert run(kernel, "install", modules["patch"]) == 0
    assert run(kernel, "uninstall", PATCH) == 0
    assert not installed_path(kernel, RELEASE, "livepatch-test.ko").exists()
    assert error_lines(capsys.readouterr().err) == []


def test_install_systemd_running(kernel, modules, live):
    calls = fake_systemctl(live)
    (kernel.root / "run/systemd/system").mkdir(parents=True)
    assert run(kernel, "install", modules["patch"]) == 0
    assert calls.read_text().splitlines() == ["daemon-reload", "enable kpatch.service"]
    assert unit_file(kernel).is_file()


def test_install_systemd_not_running(kernel, modules, live):
    """In a chroot or image build, systemctl enables the unit offline, with no reload."""
    calls = fake_systemctl(live)
    assert run(kernel, "install", modules["patch"]) == 0
    assert calls.read_text().splitlines() == ["enable kpatch.service"]


def test_install_systemctl_fails(kernel, modules, live, capsys):
    fake_systemctl(live, exit_status=1)
    assert run(kernel, "install", modules["patch"]) == 1
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert "livepatch-test.ko is installed, but kpatch.service is not enabled" in lines[0]
    assert "Failed to enable unit: Access denied" in lines[0]
    assert installed_path(kernel, RELEASE, "livepatch-test.ko").is_file()


def test_uninstall_runs_systemctl_disable(kernel, modules, live):
    calls = fake_systemctl(live)
    assert run(kernel, "install", modules["patch"]) == 0
    assert run(kernel, "uninstall", PATCH) == 0
    assert calls.read_text().splitlines()[-1] == "disable kpatch.service"


# signal


def test_signal_patch_in_transition(kernel):
    kernel.add_patch_dir("patch_a", enabled=1, transition=0)
    kernel.add_patch_dir("patch_b", enabled=1, transition=1)
    assert run(kernel, "signal") == 0
    assert (kernel.livepatch_dir / "patch_b/signal").read_text() == "1"
    assert (kernel.livepatch_dir / "patch_a/signal").read_text() == "0\n"


def test_signal_nothing_in_transition(kernel, capsys):
    assert run(kernel, "signal") == 0
    assert "no patch is in transition" in capsys.readouterr().err


def test_signal_without_attribute(kernel, capsys):
    kernel.has_signal = False
    kernel.add_patch_dir("patch_b", enabled=1, transition=1)
    assert run(kernel, "signal") == 0
    assert "signals blocked tasks itself" in capsys.readouterr().err


def test_signal_without_livepatch_support(kernel, capsys):
    kernel.livepatch_dir.rmdir()
    assert run(kernel, "signal") == 1
    assert "no livepatch support" in error_lines(capsys.readouterr().err)[0]


# command line


def test_version(kernel, capsys):
    assert run(kernel, "version") == 0
    assert capsys.readouterr().out.startswith("kpatch ")


def test_usage_error(kernel):
    assert run(kernel, "load") == 2


def test_help_lists_exit_codes(capsys):
    assert main(["--help"]) == 0
    assert "3    a patch transition did not finish" in capsys.readouterr().out


def test_invalid_timeout(kernel):
    assert run(kernel, "load", "--timeout", "-1", PATCH) == 2


def test_service_unit_condition():
    unit = Path(__file__).parents[1] / "kpatchctl/kpatch.service"
    assert "ConditionKernelCommandLine=!kpatch.enable=0" in unit.read_text()


def test_module_entry_point(kernel):
    result = subprocess.run(
        [sys.executable, "-m", "kpatchctl", "--root", str(kernel.root), "load", "/none.ko"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[1],
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: module file not found: /none.ko")
    assert len(result.stderr.splitlines()) == 1
