"""kpatch's .kpatch.relocations and .kpatch.symbols records.

kpatch's create-diff-object describes every livepatch relocation with a
record pair in these sections (struct kpatch_relocation and struct
kpatch_symbol of kpatch-build/kpatch-intermediate.h), which its
create-klp-module step turns into .klp.rela sections. elfdiff writes the
same records so that tools built for kpatch can read its output, but keeps
each relocation in its own section as well, against the undefined
.klp.sym.* symbol that elfdiff.klp converts after the module link. A tool
that builds .klp.rela sections from the records must therefore drop the
matching relocations from the ordinary relocation sections. The patch
module template discards both sections.

Layouts on x86_64, 40 bytes each:

    struct kpatch_symbol      src 0, sympos 8, bind 16, type 17, name 24, objname 32
    struct kpatch_relocation  dest 0, type 8, addend 12, external 16, objname 24, ksym 32

dest, name, objname and ksym are pointers, filled by R_X86_64_64
relocations: dest to the relocated place, ksym to the record in
.kpatch.symbols, the names to .kpatch.strings. objname of a relocation is
the object being patched, and of a symbol the object that defines it. Both
are the parent here, because symbols of other objects stay plain
relocations. For the same reason external is always 0.
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

from .elf import R_X86_64_64, SHF_ALLOC, SHT_RELA, Relocation, Section

if TYPE_CHECKING:
    from .output import KlpTarget, OutputBuilder

log = logging.getLogger(__name__)

KPATCH_SYMBOL = struct.Struct("<QQBB6xQQ")
KPATCH_RELOCATION = struct.Struct("<QIii4xQQ")
SYMBOL_NAME_OFFSET = 24
SYMBOL_OBJNAME_OFFSET = 32
RELOCATION_OBJNAME_OFFSET = 24
RELOCATION_KSYM_OFFSET = 32

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def _livepatch_relocations(builder: OutputBuilder) -> list[tuple[Section, Relocation]]:
    """Return (relocated section, relocation) for each relocation against a .klp.sym symbol."""
    found = []
    for rela in builder.sections:
        if rela.sh_type != SHT_RELA or rela.target is None:
            continue
        for relocation in rela.relocations:
            if relocation.symbol.name in builder.klp_targets:
                found.append((rela.target, relocation))
    return found


def add_relocation_records(builder: OutputBuilder) -> None:
    """Add .kpatch.relocations and .kpatch.symbols for the livepatch relocations of BUILDER."""
    relocations = _livepatch_relocations(builder)
    if not relocations:
        return

    symbol_records = bytearray()
    symbol_relocations: list[Relocation] = []
    symbol_offsets: dict[str, int] = {}
    for _, relocation in relocations:
        name = relocation.symbol.name
        if name in symbol_offsets:
            continue
        target: KlpTarget = builder.klp_targets[name]
        base = len(symbol_records)
        symbol_offsets[name] = base
        symbol_records += KPATCH_SYMBOL.pack(
            target.address, target.sympos, target.bind, target.type, 0, 0
        )
        symbol_relocations.append(
            builder.string_relocation(base + SYMBOL_NAME_OFFSET, target.name)
        )
        symbol_relocations.append(
            builder.string_relocation(base + SYMBOL_OBJNAME_OFFSET, target.objname)
        )
    symbols = builder.new_section(".kpatch.symbols", bytes(symbol_records), flags=SHF_ALLOC)
    symbols_symbol = builder.section_symbols[symbols]

    relocation_records = bytearray()
    record_relocations: list[Relocation] = []
    for place, relocation in relocations:
        if not INT32_MIN <= relocation.r_addend <= INT32_MAX:
            # The int addend field cannot carry it, but the .klp.rela entry does.
            log.warning(
                "%s+%#x: addend %#x of %s does not fit struct kpatch_relocation, so it gets no record",
                place.name,
                relocation.r_offset,
                relocation.r_addend,
                relocation.symbol.name,
            )
            continue
        target = builder.klp_targets[relocation.symbol.name]
        base = len(relocation_records)
        relocation_records += KPATCH_RELOCATION.pack(
            0, relocation.r_type, relocation.r_addend, 0, 0, 0
        )
        record_relocations.append(
            Relocation(base, R_X86_64_64, builder.section_symbols[place], relocation.r_offset)
        )
        record_relocations.append(
            builder.string_relocation(base + RELOCATION_OBJNAME_OFFSET, target.objname)
        )
        record_relocations.append(
            Relocation(
                base + RELOCATION_KSYM_OFFSET,
                R_X86_64_64,
                symbols_symbol,
                symbol_offsets[relocation.symbol.name],
            )
        )
    records = builder.new_section(
        ".kpatch.relocations", bytes(relocation_records), flags=SHF_ALLOC
    )

    for section, entries in ((symbols, symbol_relocations), (records, record_relocations)):
        rela = Section(".rela" + section.name, SHT_RELA, 0, 8, 24, b"", 0, target=section)
        rela.relocations = entries
        builder.sections.append(rela)
