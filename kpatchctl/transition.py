"""Wait for patch transitions and module references, and nudge tasks that block them."""

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from kpatchctl.procfs import BlockingTask
from kpatchctl.sysfs import LivepatchSysfs

log = logging.getLogger(__name__)

# Seconds between two reads of the transition or refcnt attribute.
POLL_INTERVAL = 0.2

# Number of blocking tasks named in an error message. The log lists all of them.
MAX_TASKS_IN_MESSAGE = 5


class Clock(Protocol):
    """Monotonic time in seconds and a way to sleep."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class Timeouts:
    """How long load and unload wait, in seconds.

    ``transition`` bounds the wait for a transition and then for the module refcount.
    ``signal_after`` is when blocked tasks are signalled during a transition.
    """

    transition: float = 75.0
    signal_after: float = 15.0


def signal_patch(sysfs: LivepatchSysfs, name: str) -> None:
    """Signal the tasks that block the transition of patch ``name``."""
    if sysfs.signal(name):
        log.info("signalled the tasks that block patch %s", name)
        return
    # Commit cba82dea3061 ("livepatch: Send a fake signal periodically", Linux 5.1)
    # made the kernel signal blocked tasks every 15 s, and the same series removed
    # the signal attribute.
    log.info("kernel has no signal attribute for patch %s and signals blocked tasks itself", name)


def wait_for_transition(
    sysfs: LivepatchSysfs, clock: Clock, name: str, timeouts: Timeouts
) -> bool:
    """Wait until patch ``name`` is out of transition, or return False on timeout.

    A patch whose sysfs directory is gone counts as out of transition.
    """
    start = clock.monotonic()
    signalled = False
    announced = False
    while True:
        state = sysfs.state(name)
        elapsed = clock.monotonic() - start
        if state is None or not state.transition:
            if announced:
                log.info("transition of patch %s finished after %.1f s", name, elapsed)
            return True
        if not announced:
            log.info(
                "waiting up to %g s for the transition of patch %s", timeouts.transition, name
            )
            announced = True
        if elapsed >= timeouts.transition:
            return False
        if not signalled and elapsed >= timeouts.signal_after:
            log.info("transition of patch %s still running after %.1f s", name, elapsed)
            signal_patch(sysfs, name)
            signalled = True
        clock.sleep(POLL_INTERVAL)


def wait_for_zero_refcount(
    sysfs: LivepatchSysfs, clock: Clock, module: str, timeout: float
) -> int:
    """Wait until module ``module`` has refcnt 0 or is gone, and return the last refcnt."""
    start = clock.monotonic()
    while True:
        refcount = sysfs.refcount(module) or 0
        if refcount == 0 or clock.monotonic() - start >= timeout:
            return refcount
        clock.sleep(POLL_INTERVAL)


def log_blocking_tasks(name: str, tasks: list[BlockingTask]) -> None:
    for task in tasks:
        log.warning(
            "task %d (%s) in process %d blocks patch %s: patch_state %d",
            task.tid,
            task.comm,
            task.pid,
            name,
            task.patch_state,
        )
        if task.stack:
            log.info("stack of task %d: %s", task.tid, " <- ".join(task.stack))


def describe_tasks(tasks: list[BlockingTask]) -> str:
    """Return e.g. ``2 tasks: 812 (sleeper), 907 (kworker/0:1)`` for an error message."""
    if not tasks:
        return "no task found with a different patch_state"
    names = [f"{task.tid} ({task.comm})" for task in tasks[:MAX_TASKS_IN_MESSAGE]]
    hidden = len(tasks) - len(names)
    if hidden:
        names.append(f"{hidden} more")
    noun = "task" if len(tasks) == 1 else "tasks"
    return f"{len(tasks)} {noun}: {', '.join(names)}"
