"""Mark every element of the patched object as same, changed or new."""

from __future__ import annotations

from .elf import (
    SHT_NOBITS,
    STT_SECTION,
    ElfObject,
    Relocation,
    Section,
    Symbol,
)
from .lines import only_line_numbers_differ
from .special import is_dropped
from .symbols import is_string_section, normalize, target_offset

SAME = "same"
CHANGED = "changed"
NEW = "new"


def _string_at(section: Section, offset: int) -> bytes:
    if section.sh_entsize > 1 and not section.name.startswith(".rodata.str"):
        return section.data[offset : offset + section.sh_entsize]
    end = section.data.find(b"\0", offset)
    return section.data[offset : end if end >= 0 else len(section.data)]


def relocation_key(section: Section, relocation: Relocation) -> tuple:
    """Describe RELOCATION by what it refers to, not by symbol index or offset of a string."""
    symbol = relocation.symbol
    target = symbol.section
    if target is not None and is_string_section(target):
        # Compare the text, whether the reference goes through the section symbol or a label (.LC0).
        base = 0 if symbol.type == STT_SECTION else symbol.st_value
        text = _string_at(target, base + target_offset(section, relocation))
        return (relocation.r_offset, relocation.r_type, "string", text)
    if symbol.type == STT_SECTION and target is not None:
        return (
            relocation.r_offset,
            relocation.r_type,
            normalize(target.name),
            relocation.r_addend,
        )
    return (relocation.r_offset, relocation.r_type, normalize(symbol.name), relocation.r_addend)


def _relocation_keys(section: Section, start: int = 0, end: int | None = None) -> list[tuple]:
    if section.rela is None:
        return []
    keys = []
    for relocation in section.rela.relocations:
        if relocation.r_offset >= start and (end is None or relocation.r_offset < end):
            key = relocation_key(section, relocation)
            keys.append((key[0] - start,) + key[1:])
    return sorted(keys, key=repr)


def sections_differ(original: Section, patched: Section) -> bool:
    if (original.sh_type, original.sh_flags, original.sh_size) != (
        patched.sh_type,
        patched.sh_flags,
        patched.sh_size,
    ):
        return True
    if patched.sh_type != SHT_NOBITS and original.data != patched.data:
        return True
    return _relocation_keys(original) != _relocation_keys(patched)


def symbols_differ(original: Symbol, patched: Symbol) -> bool:
    """Compare two symbols that share a section with other symbols, byte range by byte range."""
    if original.st_size != patched.st_size or original.section is None or patched.section is None:
        return True
    old_bytes = original.section.data[original.st_value : original.st_value + original.st_size]
    new_bytes = patched.section.data[patched.st_value : patched.st_value + patched.st_size]
    if old_bytes != new_bytes:
        return True
    old_keys = _relocation_keys(
        original.section, original.st_value, original.st_value + original.st_size
    )
    new_keys = _relocation_keys(
        patched.section, patched.st_value, patched.st_value + patched.st_size
    )
    return old_keys != new_keys


def _only_moved_lines(original: ElfObject, section: Section, patched: ElfObject) -> bool:
    """Tell whether code SECTION of PATCHED differs from its twin only in __LINE__ constants."""
    twin = section.twin
    if not section.is_text or twin.sh_size != section.sh_size or twin.sh_type != section.sh_type:
        return False
    if twin.sh_flags != section.sh_flags or _relocation_keys(twin) != _relocation_keys(section):
        return False
    return only_line_numbers_differ(original, twin, patched, section)


def compare(patched: ElfObject, original: ElfObject | None = None) -> None:
    """Set the status of each section and symbol of PATCHED against its twin.

    With ORIGINAL given, a code section that differs only in moved __LINE__
    constants counts as the same.
    """
    for section in patched.sections[1:]:
        if section.target is not None:
            continue
        if section.twin is None:
            section.status = NEW
        elif is_dropped(section.name):
            # Debug information and the like never reach the output.
            section.status = SAME
        elif not sections_differ(section.twin, section):
            section.status = SAME
        elif original is not None and _only_moved_lines(original, section, patched):
            section.status = SAME
        else:
            section.status = CHANGED

    for symbol in patched.symbols[1:]:
        if symbol.twin is None:
            symbol.status = NEW
        elif symbol.type == STT_SECTION or symbol.section is None:
            symbol.status = SAME if symbol.section is None else symbol.section.status
        elif symbol.section.bundle is symbol:
            symbol.status = symbol.section.status
        elif symbol.section.status == SAME:
            symbol.status = SAME
        else:
            symbol.status = CHANGED if symbols_differ(symbol.twin, symbol) else SAME
