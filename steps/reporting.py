"""doit reporter and logging: one line per task, one `error:` line per failure."""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable

from doit.exceptions import TaskFailed
from doit.reporter import ConsoleReporter
from rich.console import Console
from rich.logging import RichHandler

from cache import journal_path
from elfdiff.errors import ElfDiffError

from .errors import BuildError

log = logging.getLogger("klpbuild")


def setup_logging(verbose: bool = False) -> None:
    handler = RichHandler(
        console=Console(stderr=True), show_time=False, show_path=False, markup=False
    )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        handlers=[handler],
        format="%(message)s",
        force=True,
    )


INTERRUPTED = "error: interrupted; the kernel tree is back in its original state\n"
INTERRUPTED_UNRESTORED = (
    "error: interrupted before the kernel tree was restored; the next run restores it\n"
)
_main_pid = os.getpid()
_in_stage = False


def stage(function: Callable) -> Callable:
    """Wrap a stage for doit: expected errors become a failed task, not a traceback.

    An interrupt ends the whole run once the stage has cleaned up (the tree
    journal restores on the way out), with one error line from the main process.
    """

    @functools.wraps(function)
    def action(*args, **kwargs):
        global _in_stage
        _in_stage = True
        try:
            result = function(*args, **kwargs)
        except (BuildError, ElfDiffError) as error:
            return TaskFailed(str(error))
        except KeyboardInterrupt:
            _exit_interrupted()
        finally:
            _in_stage = False
        return result if isinstance(result, dict) else None

    return action


def _exit_interrupted() -> None:
    # NOTE: os._exit skips doit's database update, so the tasks this run finished
    # run again next time. Their results are cached, so that costs seconds.
    if os.getpid() == _main_pid:
        # Worker processes may still be restoring the tree: wait for them to end.
        for child in multiprocessing.active_children():
            child.join(timeout=120)
        if journal_path().exists():
            sys.stderr.write(INTERRUPTED_UNRESTORED)
        else:
            sys.stderr.write(INTERRUPTED)
    sys.stderr.flush()
    os._exit(130)


def _on_interrupt(signum, frame) -> None:
    if _in_stage:
        raise KeyboardInterrupt
    if os.getpid() == _main_pid:
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGINT)
    _exit_interrupted()


def stop_on_interrupt() -> None:
    """Make Ctrl-C end the run with one error line, after every stage has cleaned up.

    doit runs stages in worker processes, which inherit this handler: a worker
    inside a stage raises KeyboardInterrupt there, so its tree journal restores.
    """
    global _main_pid
    _main_pid = os.getpid()
    signal.signal(signal.SIGINT, _on_interrupt)
    # kill, timeout(1) and CI cancels send SIGTERM: stop the workers the same way.
    signal.signal(signal.SIGTERM, _on_interrupt)


class Reporter(ConsoleReporter):
    """Print each task as it runs or is skipped, and each failure as one error line."""

    desc = "klpbuild console output"

    def execute_task(self, task):
        if task.actions and not task.name.startswith("_"):
            self.write(f"run   {task.name}\n")

    def skip_uptodate(self, task):
        if not task.name.startswith("_"):
            self.write(f"skip  {task.name} (inputs unchanged)\n")

    def add_failure(self, task, fail):
        if fail.report:
            self.failures.append({"task": task, "exception": fail})

    def complete_run(self):
        for result in self.failures:
            task, fail = result["task"], result["exception"]
            lines = (fail.message or "").strip().splitlines()
            if fail.traceback:
                # An exception no stage expected: a bug, so name where it happened.
                detail = "".join(fail.traceback).strip().splitlines()[-1]
                log.debug("%s", "".join(fail.traceback))
                sys.stderr.write(
                    f"error: task {task.name} crashed: {detail} (rerun with verbose=1)\n"
                )
            elif lines and not lines[0].startswith("Dependent task"):
                sys.stderr.write(f"error: {lines[0]}\n")
        for message in self.runtime_errors:
            sys.stderr.write(f"error: {message.strip().splitlines()[0]}\n")
