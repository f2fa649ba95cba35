"""Loaded modules, the kernel command line and per-task patch state from procfs."""

from dataclasses import dataclass
from pathlib import Path

from kpatchctl.paths import SystemPaths

# Taint flag of a module that carries MODULE_INFO(livepatch, "Y") (TAINT_LIVEPATCH).
LIVEPATCH_TAINT = "K"

# Value of /proc/<pid>/patch_state while no transition is running (KLP_UNDEFINED).
NO_TRANSITION = -1

# Command line flag that turns off loading patches at boot.
DISABLE_FLAG = "kpatch.enable=0"


@dataclass(frozen=True)
class LoadedModule:
    """One line of ``/proc/modules``."""

    name: str
    taints: str

    @property
    def is_livepatch(self) -> bool:
        return LIVEPATCH_TAINT in self.taints


@dataclass(frozen=True)
class BlockingTask:
    """A task whose ``patch_state`` differs from the target state of a transition."""

    pid: int
    tid: int
    comm: str
    patch_state: int
    stack: tuple[str, ...]


def loaded_modules(paths: SystemPaths) -> dict[str, LoadedModule]:
    """Parse ``/proc/modules``: name, size, refcount, deps, state, address, (taints)."""
    modules = {}
    try:
        lines = paths.proc_modules.read_text().splitlines()
    except FileNotFoundError:
        return {}
    for line in lines:
        fields = line.split()
        if not fields:
            continue
        last = fields[-1]
        taints = last.strip("()") if last.startswith("(") else ""
        modules[fields[0]] = LoadedModule(name=fields[0], taints=taints)
    return modules


def patches_disabled_at_boot(paths: SystemPaths) -> bool:
    """Return True when the kernel command line contains ``kpatch.enable=0``."""
    try:
        return DISABLE_FLAG in paths.proc_cmdline.read_text().split()
    except FileNotFoundError:
        return False


def blocking_tasks(paths: SystemPaths, target_state: int) -> list[BlockingTask]:
    """Find the tasks that have not switched to ``target_state`` (1 patched, 0 unpatched)."""
    tasks = []
    for task_dir in paths.proc_dir.glob("[0-9]*/task/[0-9]*"):
        try:
            patch_state = int((task_dir / "patch_state").read_text())
        except (OSError, ValueError):
            continue
        if patch_state in (NO_TRANSITION, target_state):
            continue
        tasks.append(
            BlockingTask(
                pid=int(task_dir.parent.parent.name),
                tid=int(task_dir.name),
                comm=_read_or_empty(task_dir / "comm").strip(),
                patch_state=patch_state,
                stack=_read_stack(task_dir),
            )
        )
    return sorted(tasks, key=lambda task: (task.pid, task.tid))


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _read_stack(task_dir: Path) -> tuple[str, ...]:
    """Read the kernel stack, readable by root only, without the ``[<0>]`` prefixes."""
    frames = []
    for line in _read_or_empty(task_dir / "stack").splitlines():
        _, _, frame = line.partition("] ")
        frames.append(frame or line)
    return tuple(frames)
