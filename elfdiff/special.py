"""Special sections: arrays of fixed-size entries that point into functions.

Only the entries that describe an included function go into the output;
the rest describe code the patch module does not carry.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from .elf import STT_FUNC, STT_SECTION, Relocation, Section
from .errors import ElfDiffError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpecialSection:
    name: str
    # A fixed entry size, or the struct (and kpatch environment variable) that sizes it.
    size: int = 0
    struct: str = ""
    variable: str = ""
    # The entry's last field points at a key (struct jump_entry, struct
    # static_call_site), whose owner decides whether the entry can be kept.
    keyed: bool = False


# Decides whether a keyed entry stays: it gets the section name, the entry's
# first relocation (the code site) and its last (the key).
KeyCheck = Callable[[str, Relocation, Relocation], bool]

SPECIAL_SECTIONS = (
    SpecialSection("__bug_table", struct="bug_entry", variable="BUG_STRUCT_SIZE"),
    SpecialSection("__ex_table", struct="exception_table_entry", variable="EX_STRUCT_SIZE"),
    SpecialSection("__jump_table", struct="jump_entry", variable="JUMP_STRUCT_SIZE", keyed=True),
    SpecialSection(".altinstructions", struct="alt_instr", variable="ALT_STRUCT_SIZE"),
    SpecialSection(".parainstructions", struct="paravirt_patch_site", variable="PARA_STRUCT_SIZE"),
    SpecialSection(
        ".static_call_sites",
        struct="static_call_site",
        variable="STATIC_CALL_STRUCT_SIZE",
        keyed=True,
    ),
    SpecialSection(".printk_index", struct="pi_entry", variable="PRINTK_INDEX_STRUCT_SIZE"),
    SpecialSection(".smp_locks", size=4),
    SpecialSection(".retpoline_sites", size=4),
    SpecialSection(".return_sites", size=4),
    SpecialSection(".call_sites", size=4),
    SpecialSection(".ibt_endbr_seal", size=4),
    SpecialSection("__mcount_loc", size=8),
    SpecialSection(".orc_unwind_ip", size=4),
)
SPECIAL_BY_NAME = {special.name: special for special in SPECIAL_SECTIONS}
ORC_ENTRY_SIZE_DEFAULT = 6

# Sections that never go into a patch module.
DROPPED_PREFIXES = (
    ".discard",
    ".debug_",
    ".note",
    ".comment",
    ".BTF",
    "__patchable_function_entries",
    ".llvm_addrsig",
    ".modinfo",
    "__ksymtab",
    "__kcrctab",
    ".export_symbol",
    ".gnu.",
    ".eh_frame",
    ".rela",
    ".symtab",
    ".strtab",
    ".shstrtab",
)


def is_dropped(name: str) -> bool:
    return name.startswith(DROPPED_PREFIXES) or name == ".orc_unwind"


class StructSizes:
    """Entry sizes of special sections: environment first, then the parent's DWARF."""

    def __init__(self, dwarf_source: Callable[[str], int | None] | None = None) -> None:
        self.dwarf_source = dwarf_source
        self.cache: dict[str, int] = {}

    def size_of(self, special: SpecialSection) -> int:
        if special.size:
            return special.size
        if special.name in self.cache:
            return self.cache[special.name]
        value = os.environ.get(special.variable)
        size = None
        if value:
            try:
                size = int(value, 0)
            except ValueError:
                raise ElfDiffError(f"{special.variable}={value!r} is not a number") from None
        elif self.dwarf_source is not None:
            size = self.dwarf_source(special.struct)
        if not size:
            raise ElfDiffError(
                f"size of struct {special.struct} for {special.name} is unknown: "
                f"set {special.variable} or pass vmlinux with debug info as the parent"
            )
        self.cache[special.name] = size
        return size

    def orc_entry_size(self) -> int:
        value = os.environ.get("ORC_STRUCT_SIZE")
        if value:
            return int(value, 0)
        if self.dwarf_source is not None:
            return self.dwarf_source("orc_entry") or ORC_ENTRY_SIZE_DEFAULT
        return ORC_ENTRY_SIZE_DEFAULT


def _points_into_included_code(relocation: Relocation) -> bool:
    symbol = relocation.symbol
    if symbol.section is None:
        return False
    if symbol.type == STT_FUNC:
        return symbol.include
    return symbol.type == STT_SECTION and symbol.section.include and symbol.section.is_text


@dataclass
class FilteredSection:
    """A special section cut down to the entries of included functions."""

    source: Section
    data: bytes
    relocations: list[Relocation]
    kept: list[int]
    copy: Section | None = None


def filter_entries(
    section: Section,
    entry_size: int,
    special: SpecialSection,
    key_check: KeyCheck | None = None,
) -> FilteredSection:
    """Keep the entries of SECTION whose relocations point into included code.

    KEY_CHECK decides on each such entry of a keyed section; it returns
    False to drop the entry or raises UnsupportedChange.
    """
    if entry_size <= 0 or section.sh_size % entry_size:
        raise ElfDiffError(
            f"{section.name} is {section.sh_size} bytes, not a multiple of its entry size {entry_size}"
        )
    by_entry: dict[int, list[Relocation]] = {}
    if section.rela is not None:
        for relocation in section.rela.relocations:
            by_entry.setdefault(relocation.r_offset // entry_size, []).append(relocation)

    data = bytearray()
    relocations: list[Relocation] = []
    kept = []
    for index in range(section.sh_size // entry_size):
        entry_relocations = sorted(by_entry.get(index, []), key=lambda r: r.r_offset)
        if not any(_points_into_included_code(r) for r in entry_relocations):
            continue
        if special.keyed and key_check is not None:
            if len(entry_relocations) < 2:
                raise ElfDiffError(
                    f"entry {index} of {section.name} has {len(entry_relocations)} relocations; "
                    "expected a code site and a key"
                )
            if not key_check(section.name, entry_relocations[0], entry_relocations[-1]):
                continue
        start = index * entry_size
        base = len(data)
        data += section.data[start : start + entry_size]
        for relocation in entry_relocations:
            relocations.append(
                Relocation(
                    relocation.r_offset - start + base,
                    relocation.r_type,
                    relocation.symbol,
                    relocation.r_addend,
                )
            )
        kept.append(index)
    log.debug(
        "kept %d of %d entries of %s", len(kept), section.sh_size // entry_size, section.name
    )
    return FilteredSection(section, bytes(data), relocations, kept)


def filter_orc(orc: Section, kept: list[int], entry_size: int) -> bytes:
    """Return the .orc_unwind entries that pair with the kept .orc_unwind_ip entries."""
    if orc.sh_size % entry_size:
        raise ElfDiffError(f".orc_unwind is {orc.sh_size} bytes, not a multiple of {entry_size}")
    return b"".join(orc.data[i * entry_size : (i + 1) * entry_size] for i in kept)
