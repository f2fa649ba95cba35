"""Apply patches to the shared tree and always put it back.

Every file the run may change (patched sources, the objects and .cmd files
that make rewrites) is copied aside first and listed in a journal in the
cache. Restoring copies them back with their original timestamps, so make
sees an unchanged tree. A run that was killed leaves the journal behind, and
the next run restores from it before doing anything else.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

from cache import journal_path, locked

from .commands import run
from .errors import BuildError

log = logging.getLogger("klpbuild.tree")


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.backup_dir = path.with_suffix(".files")
        self.entries: list[dict] = []

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.entries, indent=1))
        temporary.replace(self.path)

    def keep(self, path: Path) -> None:
        """Copy PATH aside (or note that it does not exist yet) before it changes."""
        path = path.resolve()
        if any(entry["path"] == str(path) for entry in self.entries):
            return
        entry = {"path": str(path), "backup": None}
        if path.exists():
            backup = self.backup_dir / f"{len(self.entries)}"
            backup.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, backup)
            entry["backup"] = str(backup)
        self.entries.append(entry)
        self.save()

    def restore(self) -> None:
        for entry in reversed(self.entries):
            path = Path(entry["path"])
            if entry["backup"] is None:
                path.unlink(missing_ok=True)
            else:
                shutil.copy2(entry["backup"], path)
        shutil.rmtree(self.backup_dir, ignore_errors=True)
        self.path.unlink(missing_ok=True)
        self.entries = []


def recover() -> None:
    """Restore the files of a run that was killed before it could clean up."""
    path = journal_path()
    if not path.exists():
        return
    journal = Journal(path)
    try:
        journal.entries = json.loads(path.read_text())
    except ValueError:
        raise BuildError(
            f"the restore journal {path} is damaged; remove it and re-unpack the source"
        ) from None
    log.warning("restoring %d files left changed by an interrupted run", len(journal.entries))
    journal.restore()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def tree_locked():
    """Hold the cache lock, with the tree first restored from a killed run's journal.

    Every stage that compiles in the shared tree uses it, so none compiles
    sources that a killed run left patched.
    """
    with locked():
        recover()
        yield


@contextmanager
def changes_undone():
    """Yield a Journal; on exit, also by exception or SIGTERM, restore what it kept.

    The cache lock is held throughout, so concurrent runs take turns.
    """
    with tree_locked():
        journal = Journal(journal_path())
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            yield journal
        finally:
            _restore(journal, previous)


def _restore(journal: Journal, previous) -> None:
    # A second signal during the restore must not leave it half done: hold
    # SIGINT and SIGTERM until it is over.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        journal.restore()
        log.info("restored the kernel tree: sources, objects and .cmd files")
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def apply_patch(tree: Path, patch: Path, log_file: Path) -> None:
    start = log_file.stat().st_size if log_file.exists() else 0
    try:
        run(
            [
                "patch",
                "-p1",
                "-N",
                "--batch",
                "--no-backup-if-mismatch",
                "-r",
                "-",
                "-d",
                str(tree),
                "-i",
                str(patch),
            ],
            log_file=log_file,
            what=f"patch {patch.name}",
        )
    except BuildError:
        raise BuildError(
            f"{patch.name} does not apply to {tree.name}; rebase it on this kernel source "
            f"(patch output in {log_file})"
        ) from None
    with open(log_file, errors="replace") as stream:
        stream.seek(start)
        fuzzy = [line.strip() for line in stream if "with fuzz" in line]
    for line in fuzzy:
        log.warning("%s: %s; check that the change landed where you meant", patch.name, line)
