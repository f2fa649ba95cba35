"""Livepatch state in sysfs: ``/sys/kernel/livepatch`` and ``/sys/module``."""

from dataclasses import dataclass
from pathlib import Path

from kpatchctl.errors import KpatchError
from kpatchctl.paths import SystemPaths


@dataclass(frozen=True)
class PatchState:
    """The ``enabled`` and ``transition`` attributes of one patch.

    While ``transition`` is set, ``enabled`` is the target state of the transition.
    """

    enabled: bool
    transition: bool

    @property
    def label(self) -> str:
        if self.enabled:
            return "enabling" if self.transition else "enabled"
        return "disabling" if self.transition else "disabled"


@dataclass(frozen=True)
class PatchedFunction:
    """A ``<object>/<function,sympos>`` directory below a patch in sysfs."""

    object_name: str
    function: str
    sympos: int


def _read_flag(path: Path) -> bool:
    return path.read_text().strip() == "1"


def _write_attribute(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as error:
        raise KpatchError(
            f"writing {value} to {path} failed: {error.strerror}; "
            "run 'kpatch list' to check the patch state"
        ) from error


class LivepatchSysfs:
    """Reads and writes the livepatch attributes of the kernel below ``paths.root``."""

    def __init__(self, paths: SystemPaths) -> None:
        self.paths = paths

    def has_support(self) -> bool:
        return self.paths.livepatch_dir.is_dir()

    def require_support(self) -> None:
        """Raise KpatchError when the kernel was built without CONFIG_LIVEPATCH."""
        if not self.has_support():
            raise KpatchError(
                f"the kernel has no livepatch support: {self.paths.livepatch_dir} not found; "
                "boot a kernel built with CONFIG_LIVEPATCH=y"
            )

    def patch_dir(self, name: str) -> Path:
        return self.paths.livepatch_dir / name

    def patch_names(self) -> list[str]:
        if not self.has_support():
            return []
        return sorted(entry.name for entry in self.paths.livepatch_dir.iterdir() if entry.is_dir())

    def state(self, name: str) -> PatchState | None:
        """Return the state of patch ``name``, or None when sysfs has no such patch.

        Since Linux 5.1 (commit "livepatch: Simplify API by removing registration
        step") the kernel removes the patch directory when disabling finishes, so it
        can vanish between two reads.
        """
        directory = self.patch_dir(name)
        try:
            return PatchState(
                enabled=_read_flag(directory / "enabled"),
                transition=_read_flag(directory / "transition"),
            )
        except FileNotFoundError:
            return None

    def write_enabled(self, name: str, enabled: bool) -> None:
        """Start enabling or disabling patch ``name``, or reverse its running transition."""
        _write_attribute(self.patch_dir(name) / "enabled", "1" if enabled else "0")

    def signal(self, name: str) -> bool:
        """Write 1 to the patch's ``signal`` attribute, or return False if the kernel has none."""
        path = self.patch_dir(name) / "signal"
        if not path.exists():
            return False
        _write_attribute(path, "1")
        return True

    def patched_functions(self, name: str) -> list[PatchedFunction]:
        functions = []
        for object_dir in _subdirectories(self.patch_dir(name)):
            for function_dir in _subdirectories(object_dir):
                functions.append(_patched_function(object_dir.name, function_dir.name))
        return functions

    def refcount(self, module: str) -> int | None:
        """Return ``/sys/module/<module>/refcnt``, or None when the module is not loaded."""
        try:
            return int((self.paths.sys_module_dir / module / "refcnt").read_text())
        except FileNotFoundError:
            return None


def _patched_function(object_name: str, directory_name: str) -> PatchedFunction:
    """Parse a ``<function>,<sympos>`` directory name."""
    function, separator, sympos = directory_name.rpartition(",")
    if not separator or not sympos.isdigit():
        return PatchedFunction(object_name, directory_name, 0)
    return PatchedFunction(object_name, function, int(sympos))


def _subdirectories(directory: Path) -> list[Path]:
    try:
        return sorted(entry for entry in directory.iterdir() if entry.is_dir())
    except FileNotFoundError:
        return []
