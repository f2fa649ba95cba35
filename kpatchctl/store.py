"""Installed patch modules: ``/var/lib/kpatch/<release>/*.ko``."""

import os
import shutil
import tempfile
from pathlib import Path

from kpatchctl.errors import KpatchError
from kpatchctl.modinfo import module_name_from_file_name
from kpatchctl.paths import SystemPaths


def require_release_name(release: str) -> None:
    """Raise KpatchError for a release that is no single folder name, such as ``../etc``."""
    if not release or "/" in release or release in (".", ".."):
        raise KpatchError(
            f"invalid kernel release {release!r}: pass a release as uname -r prints it"
        )


class InstallStore:
    """The folder of installed patch modules, one subfolder per kernel release."""

    def __init__(self, paths: SystemPaths) -> None:
        self.directory = paths.install_dir

    def release_dir(self, release: str) -> Path:
        require_release_name(release)
        return self.directory / release

    def installed_files(self, release: str) -> list[Path]:
        return sorted(self.release_dir(release).glob("*.ko"))

    def installed(self) -> dict[str, list[Path]]:
        """Return the installed module files of every release that has one."""
        if not self.directory.is_dir():
            return {}
        releases = {}
        for release_dir in sorted(self.directory.iterdir()):
            files = self.installed_files(release_dir.name)
            if files:
                releases[release_dir.name] = files
        return releases

    def find(self, module: str, release: str) -> Path | None:
        """Find an installed file by file name or by module name (``-`` read as ``_``)."""
        expected_name = module_name_from_file_name(module)
        for path in self.installed_files(release):
            if path.name == module or module_name_from_file_name(path.name) == expected_name:
                return path
        return None

    def add(self, source: Path, release: str) -> Path:
        """Copy ``source`` into the release folder, replacing a file of the same name.

        The copy goes to a temporary file first, so a reader never sees half a module.
        """
        target_dir = self.release_dir(release)
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / source.name
        descriptor, temporary = tempfile.mkstemp(dir=target_dir, prefix=".install-")
        os.close(descriptor)
        try:
            shutil.copyfile(source, temporary)
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target

    def remove(self, path: Path) -> None:
        """Delete an installed file, then its release folder and the store if empty."""
        path.unlink()
        for directory in (path.parent, self.directory):
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()

    def is_empty(self) -> bool:
        return not self.installed()
