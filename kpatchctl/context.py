"""Subcommand context: the system paths and the host's module loader, clock and euid."""

import os
from dataclasses import dataclass

from kpatchctl.errors import KpatchError
from kpatchctl.loader import KmodLoader, ModuleLoader
from kpatchctl.paths import SystemPaths
from kpatchctl.store import InstallStore
from kpatchctl.sysfs import LivepatchSysfs
from kpatchctl.transition import Clock, SystemClock


@dataclass(frozen=True)
class Host:
    """The parts of the machine that tests replace: module loader, clock and euid."""

    loader: ModuleLoader
    clock: Clock
    euid: int

    @classmethod
    def real(cls, paths: SystemPaths) -> "Host":
        return cls(
            loader=KmodLoader(live_system=paths.is_live_system),
            clock=SystemClock(),
            euid=os.geteuid(),
        )


@dataclass(frozen=True)
class Context:
    paths: SystemPaths
    host: Host

    @property
    def sysfs(self) -> LivepatchSysfs:
        return LivepatchSysfs(self.paths)

    @property
    def store(self) -> InstallStore:
        return InstallStore(self.paths)

    def require_root(self, command: str) -> None:
        """Raise KpatchError unless running as root, a check skipped for ``--root`` other than /."""
        if not self.paths.is_live_system or self.host.euid == 0:
            return
        raise KpatchError(
            f"kpatch {command} needs root privileges (effective uid {self.host.euid}); "
            "run it as root, for example with sudo"
        )
