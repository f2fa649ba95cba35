"""Insert and remove kernel modules: the interface and the insmod/rmmod implementation."""

import logging
import os
import shlex
import subprocess
from pathlib import Path
from typing import Protocol

from kpatchctl.errors import KpatchError, ModuleBusyError

log = logging.getLogger(__name__)


class ModuleLoader(Protocol):
    """Inserts module files into the kernel and removes loaded modules by name."""

    def insert(self, path: Path) -> None: ...

    def remove(self, name: str) -> None: ...


class KmodLoader:
    """Run ``insmod`` and ``rmmod`` against the running kernel.

    ``live_system`` is False when ``--root`` points at a tree other than ``/``, and then
    every call raises KpatchError, because the commands would change the running kernel
    while kpatch reads the state of another tree.
    """

    def __init__(self, live_system: bool) -> None:
        self.live_system = live_system

    def insert(self, path: Path) -> None:
        self._run(["insmod", str(path)])

    def remove(self, name: str) -> None:
        self._run(["rmmod", name])

    def _run(self, command: list[str]) -> None:
        if not self.live_system:
            raise KpatchError(
                f"cannot run {command[0]} with --root other than /, because it acts on the "
                "running kernel; run load and unload without --root"
            )
        log.debug("%s", shlex.join(command))
        # LC_ALL=C keeps the strerror text English, so "busy" can be recognized.
        environment = {**os.environ, "LC_ALL": "C"}
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, check=False, env=environment
            )
        except FileNotFoundError as error:
            raise KpatchError(f"{command[0]} not found; install kmod") from error
        if result.returncode == 0:
            return
        _raise_command_error(command, result)


def _raise_command_error(command: list[str], result: subprocess.CompletedProcess) -> None:
    output = result.stderr.strip() or result.stdout.strip()
    reason = output.splitlines()[-1] if output else f"exit status {result.returncode}"
    if "Device or resource busy" in output:
        raise ModuleBusyError(
            f"{shlex.join(command)} failed: {reason}; another patch transition may be "
            "running, so wait for it to finish ('kpatch list') and retry"
        )
    raise KpatchError(
        f"{shlex.join(command)} failed: {reason}; the kernel log (dmesg) gives the reason"
    )
