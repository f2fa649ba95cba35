"""Write an ElfObject model back out as a relocatable x86_64 ELF file.

The writer owns the bookkeeping sections: it adds the null section,
``.symtab``, ``.strtab``, ``.shstrtab`` and, past 65,279 sections,
``.symtab_shndx``; it encodes SHT_RELA sections from their Relocation lists
and numbers symbols and sections in the order given.
"""

from __future__ import annotations

import struct
from pathlib import Path

from .elf import (
    EM_X86_64,
    ET_REL,
    RELA_FORMAT,
    SHF_INFO_LINK,
    SHN_LORESERVE,
    SHN_UNDEF,
    SHN_XINDEX,
    SHT_NOBITS,
    SHT_RELA,
    SHT_STRTAB,
    SHT_SYMTAB,
    SHT_SYMTAB_SHNDX,
    STB_LOCAL,
    SYMBOL_FORMAT,
    Section,
    Symbol,
)
from .errors import ElfDiffError

ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
ELF_IDENT = b"\x7fELF\x02\x01\x01" + bytes(9)


class StringTable:
    """A string table under construction; equal strings share one entry."""

    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self.offsets: dict[str, int] = {"": 0}

    def add(self, text: str) -> int:
        offset = self.offsets.get(text)
        if offset is None:
            offset = len(self.data)
            self.data += text.encode() + b"\0"
            self.offsets[text] = offset
        return offset


def write_object(
    path: Path, sections: list[Section], symbols: list[Symbol], e_flags: int = 0
) -> None:
    """Write SECTIONS and SYMBOLS (without the null entries) to PATH.

    Local symbols must come before global ones. Each symbol's st_shndx is
    taken from its section when it has one.
    """
    _check_symbol_order(symbols)
    extended = len(sections) + 5 >= SHN_LORESERVE

    # Number everything first: relocations and headers refer to indices.
    all_sections = [Section("", 0, 0, 0, 0, b"", 0)] + list(sections)
    symtab = Section(".symtab", SHT_SYMTAB, 0, 8, SYMBOL_FORMAT.size, b"", 0)
    strtab = Section(".strtab", SHT_STRTAB, 0, 1, 0, b"", 0)
    shstrtab = Section(".shstrtab", SHT_STRTAB, 0, 1, 0, b"", 0)
    all_sections += [symtab, strtab, shstrtab]
    shndx_table = None
    if extended:
        shndx_table = Section(".symtab_shndx", SHT_SYMTAB_SHNDX, 0, 4, 4, b"", 0)
        all_sections.append(shndx_table)
    for index, section in enumerate(all_sections):
        section.index = index
    for index, symbol in enumerate(symbols, start=1):
        symbol.index = index

    symtab.data, strtab.data, shndx_data = _encode_symbols(symbols, extended)
    symtab.sh_link = strtab.index
    symtab.sh_info = 1 + sum(1 for symbol in symbols if symbol.bind == STB_LOCAL)
    if shndx_table is not None:
        shndx_table.data = shndx_data
        shndx_table.sh_link = symtab.index
    for section in sections:
        if section.sh_type == SHT_RELA:
            _encode_relocations(section, symtab)

    names = StringTable()
    name_offsets = [names.add(section.name) for section in all_sections]
    shstrtab.data = bytes(names.data)
    for section in all_sections:
        if section.sh_type != SHT_NOBITS:
            section.sh_size = len(section.data)
    _write_file(Path(path), all_sections, name_offsets, shstrtab.index, e_flags)


def _check_symbol_order(symbols: list[Symbol]) -> None:
    seen_global = False
    for symbol in symbols:
        if symbol.bind != STB_LOCAL:
            seen_global = True
        elif seen_global:
            raise ElfDiffError(f"local symbol {symbol.name} follows a global symbol")


def _encode_symbols(symbols: list[Symbol], extended: bool) -> tuple[bytes, bytes, bytes]:
    names = StringTable()
    table = bytearray(SYMBOL_FORMAT.size)
    shndx = bytearray(4)
    for symbol in symbols:
        st_shndx = symbol.section.index if symbol.section is not None else symbol.st_shndx
        symbol.st_shndx = st_shndx
        raw_shndx = st_shndx
        if symbol.section is not None and st_shndx >= SHN_LORESERVE:
            raw_shndx = SHN_XINDEX
        table += SYMBOL_FORMAT.pack(
            names.add(symbol.name),
            symbol.st_info,
            symbol.st_other,
            raw_shndx,
            symbol.st_value,
            symbol.st_size,
        )
        shndx += struct.pack("<I", st_shndx if raw_shndx == SHN_XINDEX else 0)
    return bytes(table), bytes(names.data), bytes(shndx) if extended else b""


def _encode_relocations(rela: Section, symtab: Section) -> None:
    if rela.target is None:
        raise ElfDiffError(f"relocation section {rela.name} has no target section")
    data = bytearray()
    for relocation in rela.relocations:
        symbol = relocation.symbol
        if symbol.index <= 0:
            raise ElfDiffError(f"relocation in {rela.name} names a symbol that is not written")
        r_info = (symbol.index << 32) | relocation.r_type
        data += RELA_FORMAT.pack(relocation.r_offset, r_info, relocation.r_addend)
    rela.data = bytes(data)
    rela.sh_link = symtab.index
    rela.sh_info = rela.target.index
    rela.sh_flags |= SHF_INFO_LINK
    rela.sh_entsize = RELA_FORMAT.size
    rela.sh_addralign = 8


def _write_file(
    path: Path, sections: list[Section], name_offsets: list[int], shstrndx: int, e_flags: int
) -> None:
    body = bytearray(ELF_HEADER.size)
    offsets = [0]
    for section in sections[1:]:
        align = max(section.sh_addralign, 1)
        if section.sh_type != SHT_NOBITS:
            body += bytes(-len(body) % align)
        offsets.append(len(body))
        if section.sh_type != SHT_NOBITS:
            body += section.data
    body += bytes(-len(body) % 8)
    shoff = len(body)

    count = len(sections)
    for section, offset, name_offset in zip(sections, offsets, name_offsets):
        sh_size, sh_link = section.sh_size, section.sh_link
        if section.index == 0 and count >= SHN_LORESERVE:
            sh_size, sh_link = count, shstrndx
        body += SECTION_HEADER.pack(
            name_offset,
            section.sh_type,
            section.sh_flags,
            0,
            offset,
            sh_size,
            sh_link,
            section.sh_info,
            section.sh_addralign,
            section.sh_entsize,
        )
    e_shnum = count if count < SHN_LORESERVE else SHN_UNDEF
    e_shstrndx = shstrndx if shstrndx < SHN_LORESERVE else SHN_XINDEX
    body[: ELF_HEADER.size] = ELF_HEADER.pack(
        ELF_IDENT,
        ET_REL,
        EM_X86_64,
        1,
        0,
        0,
        shoff,
        e_flags,
        ELF_HEADER.size,
        0,
        0,
        SECTION_HEADER.size,
        e_shnum,
        e_shstrndx,
    )
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(body)
    temporary.replace(path)
