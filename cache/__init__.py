"""Where the pipeline keeps what outlives one run, and the keys that name it.

Layout under the cache root (``KPATCH_CACHE``, default ``~/.kpatch``)::

    src/<package>_<version>/       unpacked kernel source, shared by all builds
    builds/<key>/run/              kbuild O= folder of the kernel that boots
    builds/<key>/cmp/              O= folder of the -ffunction-sections build
    builds/<key>/struct-sizes.json special-section entry sizes from DWARF
    builds/<key>/key.txt           what the key was computed from
    guest/python<version>-<key>/   Python runtime copied into the qemu guest
    journal.json                   files to restore if a run was interrupted
    lock                           held while a run builds or changes the tree

The build key covers the source, the config and the compiler, so a change
to any of them builds a fresh kernel and the old one stays reusable.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("klpbuild.cache")


def cache_root() -> Path:
    return Path(os.environ.get("KPATCH_CACHE") or Path.home() / ".kpatch")


def source_root() -> Path:
    return cache_root() / "src"


def journal_path() -> Path:
    return cache_root() / "journal.json"


def build_key(source_id: str, config_text: str, compiler: str) -> str:
    """Return a short stable key for one source, config and compiler."""
    digest = hashlib.sha256()
    for part in (source_id, config_text, compiler):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def build_root(key: str) -> Path:
    return cache_root() / "builds" / key


@contextmanager
def locked():
    """Hold the cache lock, so that two runs never build or patch the shared tree at once."""
    path = cache_root() / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as stream:
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another run to release %s", path)
            fcntl.flock(stream, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(stream, fcntl.LOCK_UN)
