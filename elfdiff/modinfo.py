"""The .modinfo of the output: the symbol namespaces the patch module imports.

A module that uses a symbol exported with EXPORT_SYMBOL_NS must name the
namespace in an `import_ns=` line of its .modinfo: modpost rejects the
module otherwise, and so does the module loader. The output imports the
namespace of each symbol that stays a plain undefined symbol (livepatch
relocations are resolved by the livepatch core, which does not check
namespaces), plus every `import_ns=` line of the patched object itself, so
a patch to a module keeps the module's imports.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .elf import SHF_ALLOC

if TYPE_CHECKING:
    from .output import OutputBuilder

log = logging.getLogger(__name__)

IMPORT_NS = "import_ns="


def _object_imports(builder: OutputBuilder) -> set[str]:
    section = builder.patched.section_by_name(".modinfo")
    if section is None:
        return set()
    lines = section.data.decode(errors="replace").split("\0")
    return {line[len(IMPORT_NS) :] for line in lines if line.startswith(IMPORT_NS)}


def _symbol_imports(builder: OutputBuilder) -> set[str]:
    namespaces = builder.parent.namespaces
    return {
        namespaces[name]
        for name in builder.externals
        if name in namespaces and name not in builder.klp_targets
    }


def add_namespace_imports(builder: OutputBuilder) -> None:
    """Add a .modinfo with one import_ns= line per namespace the output needs."""
    namespaces = sorted(_object_imports(builder) | _symbol_imports(builder))
    if not namespaces:
        return
    for namespace in namespaces:
        log.debug("importing symbol namespace %s", namespace)
    data = b"".join(f"{IMPORT_NS}{namespace}\0".encode() for namespace in namespaces)
    builder.new_section(".modinfo", data, flags=SHF_ALLOC, align=1)
