"""The ``kpatch.service`` systemd unit that loads installed patches at boot."""

import logging
import shlex
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from kpatchctl.errors import KpatchError
from kpatchctl.paths import SystemPaths

log = logging.getLogger(__name__)

SERVICE_NAME = "kpatch.service"
WANTED_BY = "multi-user.target"
COMMAND_PLACEHOLDER = "@KPATCH@"


def kpatch_command() -> str:
    """Return the command line that starts kpatch: the installed script if on PATH."""
    script = shutil.which("kpatch")
    if script:
        return shlex.quote(str(Path(script).resolve()))
    return f"{shlex.quote(sys.executable)} -m kpatchctl"


def unit_text() -> str:
    template = resources.files("kpatchctl").joinpath(SERVICE_NAME).read_text()
    return template.replace(COMMAND_PLACEHOLDER, kpatch_command())


def _wants_link(paths: SystemPaths) -> Path:
    return paths.systemd_dir / f"{WANTED_BY}.wants" / SERVICE_NAME


def systemd_is_running(paths: SystemPaths) -> bool:
    """Return True when systemd is the init system, by the test sd_booted(3) makes."""
    return paths.under_root("/run/systemd/system").is_dir()


def enable_service(paths: SystemPaths) -> None:
    """Write the unit under ``<root>/etc/systemd/system`` and enable it.

    On the live system ``systemctl enable`` enables it, after ``systemctl
    daemon-reload`` when systemd is running (a chroot or a container without
    systemd has no manager to reload). Below another root, kpatch creates the
    ``multi-user.target.wants`` link itself, as ``systemctl enable`` would.
    A live system without systemctl gets no unit, only a warning, because the
    installed module file is still useful to an init system that runs ``kpatch
    load --all`` itself.
    """
    if paths.is_live_system and shutil.which("systemctl") is None:
        log.warning(
            "systemctl not found, so %s was not installed and the installed patches "
            "will not load at boot; without systemd, run 'kpatch load --all' from a "
            "boot script",
            SERVICE_NAME,
        )
        return
    unit = paths.systemd_dir / SERVICE_NAME
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(unit_text())
    log.info("wrote %s", unit)
    if paths.is_live_system:
        if systemd_is_running(paths):
            _systemctl(["daemon-reload"])
        _systemctl(["enable", SERVICE_NAME])
        log.info("enabled %s", SERVICE_NAME)
        return
    link = _wants_link(paths)
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(Path("/etc/systemd/system") / SERVICE_NAME)
    log.info("enabled %s below %s", SERVICE_NAME, paths.root)


def disable_service(paths: SystemPaths) -> None:
    """Disable the unit so that boot loads no patch, keeping the unit file."""
    if paths.is_live_system:
        if shutil.which("systemctl") is None:
            log.info("systemctl not found, so there is no %s to disable", SERVICE_NAME)
            return
        _systemctl(["disable", SERVICE_NAME])
        log.info("disabled %s", SERVICE_NAME)
        return
    _wants_link(paths).unlink(missing_ok=True)
    log.info("disabled %s below %s", SERVICE_NAME, paths.root)


def _systemctl(arguments: list[str]) -> None:
    """Run ``systemctl`` with ARGUMENTS and raise KpatchError if it fails."""
    command = ["systemctl", *arguments]
    log.debug("%s", shlex.join(command))
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = result.stderr.strip() or result.stdout.strip()
        reason = output.splitlines()[-1] if output else f"exit status {result.returncode}"
        raise KpatchError(f"{shlex.join(command)} failed: {reason}; check the systemd setup")
