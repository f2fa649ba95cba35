"""Symbol versions (CONFIG_MODVERSIONS) of the objects a patch recompiles.

With modversions, genksyms computes a CRC of each exported symbol's type,
and kbuild writes it into the object's .cmd file as `#SYMVER name 0xCRC`.
A patch that changes one of them changes the interface that modules were
built against: those modules and the running kernel would disagree about
the symbol's type, which a livepatch cannot reconcile.
"""

from __future__ import annotations

from pathlib import Path

from .errors import BuildError


def read_versions(cmd_file: Path) -> dict[str, str]:
    """Return {exported symbol: CRC} from a kbuild .cmd file (empty without modversions)."""
    versions = {}
    if not cmd_file.is_file():
        return versions
    for line in cmd_file.read_text(errors="replace").splitlines():
        if line.startswith("#SYMVER "):
            parts = line.split()
            if len(parts) == 3:
                versions[parts[1]] = parts[2]
    return versions


def check_versions_kept(obj: str, before: dict[str, str], after: dict[str, str]) -> None:
    """Reject a patch that changes or removes the version of a symbol OBJ exports."""
    changed = sorted(name for name, crc in before.items() if after.get(name, crc) != crc)
    removed = sorted(name for name in before if name not in after)
    if changed:
        raise BuildError(
            f"the patch changes the type of exported symbol {', '.join(changed)} ({obj}): "
            "its symbol version differs, and modules built against the old one would break; "
            "keep the exported interface and change only the code behind it"
        )
    if removed:
        raise BuildError(
            f"the patch removes exported symbol {', '.join(removed)} ({obj}); "
            "loaded modules may use it, so keep the export"
        )
