"""The marks of kmod/kpatch-macros.h: callbacks and ignored sections and functions.

A patch marks things with small variables in sections of its own:

- ``.kpatch.callbacks.<kind>``: records of struct kpatch_<kind>_callback
  (kmod/kpatch-patch.h), a callback function pointer and an object name
  pointer that the source leaves NULL. The output carries the records and
  the callbacks; the object name becomes a relocation to the parent's name in
  ``.kpatch.strings``.
- ``.kpatch.ignore.sections``: pointers to section name strings.
- ``.kpatch.ignore.functions``: pointers to functions.

Ignored sections and functions count as unchanged, so they stay out of the
changed set. The ignore lists never reach the output.
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

from .compare import CHANGED, NEW, SAME
from .elf import STT_FUNC, STT_OBJECT, STT_SECTION, ElfObject, Relocation, Section, Symbol
from .errors import ElfDiffError, UnsupportedChange
from .symbols import is_cold_child, parent_name

if TYPE_CHECKING:
    from .include import Inclusion
    from .output import OutputBuilder

log = logging.getLogger(__name__)

CALLBACK_KINDS = ("pre_patch", "post_patch", "pre_unpatch", "post_unpatch")
CALLBACK_SECTIONS = tuple(f".kpatch.callbacks.{kind}" for kind in CALLBACK_KINDS)
IGNORE_SECTIONS = ".kpatch.ignore.sections"
IGNORE_FUNCTIONS = ".kpatch.ignore.functions"

# struct kpatch_<kind>_callback: the callback, then the object name.
CALLBACK_RECORD = struct.Struct("<QQ")
OBJNAME_OFFSET = 8


def _mark_relocations(patched: ElfObject, name: str) -> list[Relocation]:
    section = patched.section_by_name(name)
    if section is None or section.rela is None:
        return []
    return sorted(section.rela.relocations, key=lambda r: r.r_offset)


def _string_at(section: Section, offset: int) -> str:
    end = section.data.find(b"\0", offset)
    if offset >= len(section.data) or end < 0:
        raise ElfDiffError(
            f"{IGNORE_SECTIONS} points at offset {offset} of {section.name}, where no string is"
        )
    return section.data[offset:end].decode(errors="replace")


def ignored_sections(patched: ElfObject) -> list[Section]:
    """Return the sections that KPATCH_IGNORE_SECTION names, in mark order."""
    sections = []
    for relocation in _mark_relocations(patched, IGNORE_SECTIONS):
        strings = relocation.symbol.section
        if relocation.symbol.type != STT_SECTION or strings is None:
            raise ElfDiffError(
                f"{IGNORE_SECTIONS} entry at offset {relocation.r_offset} points at "
                f"{relocation.symbol.name or 'a symbol'}, not at a section name string"
            )
        name = _string_at(strings, relocation.r_addend)
        section = patched.section_by_name(name)
        if section is None:
            raise ElfDiffError(
                f"KPATCH_IGNORE_SECTION names section {name}, which {patched.path.name} "
                "does not have; check the name in the mark"
            )
        if section not in sections:
            sections.append(section)
    return sections


def ignored_functions(patched: ElfObject) -> list[Symbol]:
    """Return the functions that KPATCH_IGNORE_FUNCTION names, in mark order."""
    functions = []
    for relocation in _mark_relocations(patched, IGNORE_FUNCTIONS):
        symbol = relocation.symbol
        if symbol.type != STT_FUNC or symbol.section is None:
            raise ElfDiffError(
                f"KPATCH_IGNORE_FUNCTION names {symbol.name or 'a section'}, "
                f"which is not a function defined in {patched.path.name}"
            )
        if symbol not in functions:
            functions.append(symbol)
    return functions


def _set_same(section: Section) -> None:
    section.status = SAME
    if section.section_symbol is not None:
        section.section_symbol.status = SAME
    for symbol in section.symbols:
        symbol.status = SAME


def apply_ignore_marks(patched: ElfObject) -> None:
    """Count the ignored sections and functions of PATCHED as unchanged.

    Call after compare(); raise UnsupportedChange for an ignored function that
    the patch adds, because code in the patch may call it.
    """
    for section in ignored_sections(patched):
        log.info("ignoring section %s (%s)", section.name, section.status)
        _set_same(section)

    functions = {s.name: s for s in patched.symbols if s.type == STT_FUNC and s.section}
    for function in ignored_functions(patched):
        if function.status == NEW:
            raise UnsupportedChange(
                f"KPATCH_IGNORE_FUNCTION({function.name}) names a function that the patch "
                "adds; only functions of the original can be ignored"
            )
        if function.status != CHANGED:
            log.warning(
                "function %s has no change; KPATCH_IGNORE_FUNCTION(%s) is not needed",
                function.name,
                function.name,
            )
        log.info("ignoring function %s", function.name)
        _ignore_function(function)
        # The .cold part of an ignored function changes along with it.
        for child in functions.values():
            if is_cold_child(child) and parent_name(child) == function.name:
                _ignore_function(child)


def _ignore_function(function: Symbol) -> None:
    function.status = SAME
    section = function.section
    # A section that several functions share (.init.text, for one) counts as
    # unchanged once none of its functions and objects has changed.
    if section.bundle is function or all(
        symbol.status == SAME
        for symbol in section.symbols
        if symbol.type in (STT_FUNC, STT_OBJECT)
    ):
        _set_same(section)


def include_callbacks(patched: ElfObject, inclusion: Inclusion) -> None:
    """Include every callback section of PATCHED and, through it, the callbacks."""
    for name in CALLBACK_SECTIONS:
        section = patched.section_by_name(name)
        if section is None or section.sh_size == 0:
            continue
        _check_callback_records(section)
        # Including the section includes new callbacks; a callback that the
        # original already had is referred to in the parent.
        inclusion.section(section)
        for relocation in section.rela.relocations:
            log.info("callback %s: %s", name.rsplit(".", 1)[1], relocation.symbol.name)


def _check_callback_records(section: Section) -> None:
    if section.sh_size % CALLBACK_RECORD.size:
        raise ElfDiffError(
            f"{section.name} is {section.sh_size} bytes, not a multiple of the "
            f"{CALLBACK_RECORD.size}-byte callback record"
        )
    relocations = section.rela.relocations if section.rela is not None else []
    by_offset = {relocation.r_offset: relocation for relocation in relocations}
    for offset in range(0, section.sh_size, CALLBACK_RECORD.size):
        callback = by_offset.get(offset)
        if callback is None or callback.symbol.type != STT_FUNC:
            raise ElfDiffError(
                f"{section.name} record at offset {offset} has no callback function"
            )
        if offset + OBJNAME_OFFSET in by_offset:
            raise ElfDiffError(
                f"{section.name} record at offset {offset} already has an object name; "
                "the patch source must leave it NULL"
            )
    if len(by_offset) != section.sh_size // CALLBACK_RECORD.size:
        raise ElfDiffError(f"{section.name} has relocations outside its callback fields")


def add_callback_objnames(builder: OutputBuilder) -> None:
    """Point the object name of each copied callback record at the parent's name."""
    for source, copy in builder.copies.items():
        if source.name not in CALLBACK_SECTIONS:
            continue
        rela = next((s for s in builder.sections if s.target is copy), None)
        if rela is None:
            raise ElfDiffError(f"{source.name} was copied without its relocations")
        for offset in range(0, copy.sh_size, CALLBACK_RECORD.size):
            rela.relocations.append(
                builder.string_relocation(offset + OBJNAME_OFFSET, builder.parent.name)
            )
