"""Run external commands and log each one in a form that can be pasted."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from .errors import BuildError

log = logging.getLogger("klpbuild.commands")


def run(
    command: list[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    log_file: Path | None = None,
    what: str | None = None,
) -> str:
    """Run COMMAND; return its output, or raise BuildError naming the log on failure."""
    shown = shlex.join(command)
    if cwd is not None:
        shown = f"cd {shlex.quote(str(cwd))} && {shown}"
    log.debug("%s", shown)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        # A session of its own, so that an interrupt stops make with every compiler
        # under it before the caller restores the tree.
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except FileNotFoundError:
        raise BuildError(f"{command[0]} not found; install it (see README)") from None
    try:
        output, _ = process.communicate()
    except BaseException:
        _stop_group(process)
        raise
    completed = subprocess.CompletedProcess(command, process.returncode, output)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a") as stream:
            stream.write(f"$ {shown}\n{completed.stdout}\n")
    if completed.returncode != 0:
        tail = "\n".join(completed.stdout.strip().splitlines()[-15:])
        log.error("command failed: %s\n%s", shown, tail)
        where = f"; full output in {log_file}" if log_file else ""
        raise BuildError(f"{what or command[0]} failed (exit {completed.returncode}){where}")
    return completed.stdout


def _stop_group(process: subprocess.Popen) -> None:
    """Stop PROCESS and everything it started, and wait until they are gone."""
    for signum, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 30)):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()
            try:
                # Signal 0 checks whether any member of the group is left.
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
