"""Choose what the output carries: changed and new code and what it needs.

Unchanged functions and data are not copied: included code refers to the
originals in the parent instead.
"""

from __future__ import annotations

import logging

from .compare import CHANGED, NEW
from .elf import (
    STB_LOCAL,
    STT_FUNC,
    STT_OBJECT,
    STT_SECTION,
    ElfObject,
    Relocation,
    Section,
    Symbol,
)
from .errors import ElfDiffError, UnsupportedChange
from .special import SPECIAL_BY_NAME, is_dropped
from .symbols import is_cold_child, is_special_static, is_string_section, parent_name

log = logging.getLogger(__name__)

INIT_SECTION_PREFIXES = (".init.", ".exit.", ".head.text", ".meminit.", ".ref.")


def has_ftrace_site(symbol: Symbol, mcount: Section | None) -> bool:
    """Tell whether SYMBOL starts with a call to __fentry__ that ftrace can patch."""
    section = symbol.section
    if section is not None and section.rela is not None:
        for relocation in section.rela.relocations:
            if (
                relocation.symbol.name == "__fentry__"
                and relocation.r_offset - symbol.st_value < 16
            ):
                return True
    if mcount is not None and mcount.rela is not None:
        for relocation in mcount.rela.relocations:
            target = relocation.symbol
            if target is symbol or (target.type == STT_SECTION and target.section is section):
                return True
    return False


class Inclusion:
    def __init__(self, patched: ElfObject) -> None:
        self.patched = patched
        self.sections: list[Section] = []

    def symbol(self, symbol: Symbol) -> None:
        if symbol.include:
            return
        symbol.include = True
        if symbol.section is not None:
            self.section(symbol.section)

    def section(self, section: Section) -> None:
        if section.include:
            return
        section.include = True
        self.sections.append(section)
        if section.section_symbol is not None:
            section.section_symbol.include = True
        for symbol in section.symbols:
            if section.bundle is symbol:
                symbol.include = True
        if section.rela is not None:
            self.targets(section.rela.relocations)

    def targets(self, relocations: list[Relocation]) -> None:
        for relocation in relocations:
            self.target(relocation.symbol)

    def target(self, symbol: Symbol) -> None:
        section = symbol.section
        if section is None:
            return
        if symbol.type == STT_SECTION:
            if is_string_section(section) or not section.symbols or section.status == NEW:
                self.section(section)
            return
        if is_string_section(section):
            # A label on a string, such as the .LC0 that gas keeps for the file name
            # in __bug_table, brings its strings along like a section reference.
            self.symbol(symbol)
            return
        if symbol.status == NEW or is_special_static(symbol):
            self.symbol(symbol)


def include_changed_functions(patched: ElfObject, inclusion: Inclusion) -> list[Symbol]:
    """Include every changed or new function; return the changed ones livepatch redirects."""
    mcount = patched.section_by_name("__mcount_loc")
    changed = []
    functions = {
        s.name: s for s in patched.symbols if s.type == STT_FUNC and s.section is not None
    }
    for symbol in functions.values():
        if symbol.status not in (CHANGED, NEW):
            continue
        section = symbol.section
        if section.name.startswith(INIT_SECTION_PREFIXES):
            raise UnsupportedChange(
                f"__init function {symbol.name} changed; init code has already run and cannot be "
                f"patched; if only the next boot needs the change, mark it "
                f"KPATCH_IGNORE_FUNCTION({symbol.name})"
            )
        if section.bundle is not symbol:
            raise UnsupportedChange(
                f"function {symbol.name} changed but shares section {section.name} with other code; "
                "build with -ffunction-sections and without an explicit section attribute"
            )
        inclusion.symbol(symbol)
        if symbol.status == NEW:
            continue
        if is_cold_child(symbol):
            parent = functions.get(parent_name(symbol))
            if parent is None:
                raise ElfDiffError(
                    f"function {parent_name(symbol)}, parent of {symbol.name}, not found"
                )
            # The new child jumps back into the new parent, so livepatch must redirect the parent.
            parent.status = CHANGED
            symbol = parent
            inclusion.symbol(symbol)
        # An unchanged child jumps back into the old parent, so the children go along.
        for child in functions.values():
            if is_cold_child(child) and parent_name(child) == symbol.name:
                inclusion.symbol(child)
        if symbol not in changed:
            changed.append(symbol)

    for symbol in changed:
        if not has_ftrace_site(symbol, mcount):
            raise UnsupportedChange(
                f"function {symbol.name} changed but has no ftrace call site: it is notrace, "
                "or an inline function the compiler did not inline; patch its callers instead"
            )
    return changed


def include_new_globals(patched: ElfObject, inclusion: Inclusion) -> None:
    """Include every new global function and variable, even one no changed code uses.

    Other objects of the patch, or later patches, may use them by name.
    """
    for symbol in patched.symbols[1:]:
        if symbol.bind != STB_LOCAL and symbol.section is not None and symbol.status == NEW:
            if symbol.type in (STT_FUNC, STT_OBJECT):
                log.debug("including new global %s", symbol.name)
                inclusion.symbol(symbol)


def verify(patched: ElfObject) -> None:
    """Reject changes that the included code does not carry."""
    for section in patched.sections[1:]:
        if section.target is not None or section.status != CHANGED or section.include:
            continue
        name = section.name
        if is_dropped(name) or name in SPECIAL_BY_NAME or is_string_section(section):
            continue
        if name in (".orc_unwind", ".altinstr_replacement", ".altinstr_aux"):
            continue
        owner = section.bundle
        if owner is not None and owner.type == STT_OBJECT:
            if is_special_static(owner):
                continue
            raise UnsupportedChange(
                f"static data {owner.name} changed; a livepatch cannot change existing data: "
                "use a shadow variable (klp_shadow_get_or_alloc) or a callback instead"
            )
        if name.startswith(INIT_SECTION_PREFIXES):
            raise UnsupportedChange(f"__init code or data in {name} changed; it cannot be patched")
        raise UnsupportedChange(
            f"section {name} changed but is not selected for inclusion: it contains no changed "
            "function; mark it with KPATCH_IGNORE_SECTION if the change does not matter"
        )
    for symbol in patched.symbols[1:]:
        if symbol.type == STT_OBJECT and symbol.status == CHANGED and symbol.section is not None:
            if (
                symbol.section.bundle is None
                and not is_special_static(symbol)
                and not symbol.include
            ):
                if not is_string_section(symbol.section):
                    raise UnsupportedChange(
                        f"static data {symbol.name} changed; a livepatch cannot change existing data"
                    )
