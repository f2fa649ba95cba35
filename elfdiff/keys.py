"""Rules for the static keys and static call keys that a patch module can use.

A jump label or static call site in patched code names a key. The patch
module initialises its own __jump_table and .static_call_sites when it is
loaded, and the key's address must be known by then. That holds for a key
in vmlinux (a plain relocation, or a vmlinux livepatch relocation, which
the module loader applies before that initialisation since Linux 5.8,
commit 7c8e2bdd5f0d "livepatch: Apply vmlinux-specific KLP relocations
early") and for a key the patch module defines itself. A key in a module
is resolved only when that module is loaded, possibly after the patch
module, so such a site cannot be kept. Sites of tracepoints and dynamic
debug print statements are dropped instead: the code then behaves as
compiled, a disabled tracepoint or print statement.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .compare import NEW
from .elf import SHT_RELA, Relocation, Section, Symbol
from .errors import UnsupportedChange
from .klp import KLP_SYMBOL_PREFIX
from .output import Parent
from .special import SPECIAL_BY_NAME

log = logging.getLogger(__name__)

VMLINUX = "vmlinux"
PATCH_MODULE = "the patch module"

# Keys whose sites can be dropped: the tracepoint's own static key and
# static call, and the static key inside a dynamic debug descriptor.
DROPPABLE_KEY_PREFIXES = ("__tracepoint_", "__SCK__tp_func_", "__UNIQUE_ID_ddebug")

# Code that the module loader copies over a function's instructions while it
# loads the patch module (apply_alternatives), before a module's livepatch
# relocations are applied.
LOADER_COPIED_CODE = (".altinstr_replacement",)


@dataclass(frozen=True)
class KeyRules:
    """Decide for each keyed special-section entry of patched code whether it is kept."""

    parent: Parent

    def owner(self, key: Symbol) -> str | None:
        """Return the object that defines KEY: vmlinux, a module name or the patch module.

        Return None when no object is known to define it.
        """
        if key.section is not None:
            if key.status == NEW:
                return PATCH_MODULE
            return self.parent.name
        exporter = self.parent.exports.get(key.name)
        if exporter:
            return exporter
        if key.name in self.parent.table.globals:
            return self.parent.name
        return None

    def keep(self, section_name: str, site: Relocation, key: Relocation) -> bool:
        """Return whether to keep an entry, or raise UnsupportedChange for a key in a module."""
        owner = self.owner(key.symbol)
        if owner in (None, VMLINUX, PATCH_MODULE):
            return True
        where = f"{site.symbol.name}+{site.r_addend:#x}"
        if key.symbol.name.startswith(DROPPABLE_KEY_PREFIXES):
            log.warning(
                "%s: dropping the %s entry of %s, whose key %s is in module %s",
                section_name,
                "static call" if section_name == ".static_call_sites" else "jump label",
                where,
                key.symbol.name,
                owner,
            )
            return False
        if section_name == ".static_call_sites":
            raise UnsupportedChange(
                f"static call at {where} uses key {key.symbol.name} of module {owner}, which "
                "the patch module cannot use: call the function through a pointer instead"
            )
        raise UnsupportedChange(
            f"jump label at {where} uses static key {key.symbol.name} of module {owner}, "
            "which the patch module cannot use: test the key with static_key_enabled() instead"
        )


def reject_late_special_relocations(parent_name: str, sections: list[Section]) -> None:
    """Reject livepatch relocations in special sections of a patch to a module.

    The livepatch core applies a module's livepatch relocations when that
    module loads, which can be after the patch module initialised its
    special sections from the then unrelocated entries, or copied
    unrelocated replacement code into its functions. kpatch rejects the same
    case for special sections.
    """
    if parent_name == VMLINUX:
        return
    for rela in sections:
        target = rela.target
        if rela.sh_type != SHT_RELA or target is None:
            continue
        if target.name not in SPECIAL_BY_NAME and target.name not in LOADER_COPIED_CODE:
            continue
        for relocation in rela.relocations:
            if relocation.symbol.name.startswith(KLP_SYMBOL_PREFIX):
                raise UnsupportedChange(
                    f"{target.name} entry of the patch refers to {relocation.symbol.name}, "
                    f"which the livepatch core resolves only after {parent_name} loads; "
                    "special sections of a module patch can use only exported symbols"
                )
