"""System paths of the running kernel, all below one root folder."""

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SystemPaths:
    """Kernel, procfs and install paths below ``root``, which is ``/`` on a live system."""

    root: Path

    def under_root(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    @property
    def is_live_system(self) -> bool:
        return self.root.resolve() == Path("/")

    @property
    def livepatch_dir(self) -> Path:
        return self.under_root("/sys/kernel/livepatch")

    @property
    def sys_module_dir(self) -> Path:
        return self.under_root("/sys/module")

    @property
    def proc_dir(self) -> Path:
        return self.under_root("/proc")

    @property
    def proc_modules(self) -> Path:
        return self.under_root("/proc/modules")

    @property
    def proc_cmdline(self) -> Path:
        return self.under_root("/proc/cmdline")

    @property
    def install_dir(self) -> Path:
        return self.under_root("/var/lib/kpatch")

    @property
    def systemd_dir(self) -> Path:
        return self.under_root("/etc/systemd/system")

    def kernel_release(self) -> str:
        """Return the running kernel release, from procfs below the root when it exists."""
        osrelease = self.under_root("/proc/sys/kernel/osrelease")
        if osrelease.is_file():
            return osrelease.read_text().strip()
        return os.uname().release
