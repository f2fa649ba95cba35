"""An editable model of an x86_64 relocatable ELF object.

pyelftools reads the file and section headers; symbol and relocation tables
are unpacked with ``struct`` because they are large and fixed in layout.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .errors import ElfDiffError

SHT_NULL = 0
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_RELA = 4
SHT_NOBITS = 8
SHT_REL = 9
SHT_GROUP = 17
SHT_SYMTAB_SHNDX = 18

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_MERGE = 0x10
SHF_STRINGS = 0x20
SHF_INFO_LINK = 0x40
SHF_GROUP = 0x200
SHF_RELA_LIVEPATCH = 0x00100000

SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_LIVEPATCH = 0xFF20
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF

STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2

STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3
STT_FILE = 4
STT_TLS = 6

EM_X86_64 = 62
ET_REL = 1

R_X86_64_NONE = 0
R_X86_64_64 = 1
R_X86_64_PC32 = 2
R_X86_64_PLT32 = 4
R_X86_64_32 = 10
R_X86_64_32S = 11
R_X86_64_PC64 = 24

SYMBOL_FORMAT = struct.Struct("<IBBHQQ")
RELA_FORMAT = struct.Struct("<QQq")


@dataclass(eq=False)
class Symbol:
    name: str
    st_value: int
    st_size: int
    bind: int
    type: int
    st_other: int
    st_shndx: int
    index: int = 0
    section: Section | None = None
    # Filled in by the diff: the symbol in the other object, and its status.
    twin: Symbol | None = None
    status: str = ""
    include: bool = False

    @property
    def st_info(self) -> int:
        return (self.bind << 4) | self.type

    def __repr__(self) -> str:
        return f"<Symbol {self.name or self.section and self.section.name}>"


@dataclass(eq=False)
class Relocation:
    r_offset: int
    r_type: int
    symbol: Symbol
    r_addend: int


@dataclass(eq=False)
class Section:
    name: str
    sh_type: int
    sh_flags: int
    sh_addralign: int
    sh_entsize: int
    data: bytes
    sh_size: int
    sh_link: int = 0
    sh_info: int = 0
    index: int = 0
    # For a SHT_RELA section: the section its entries apply to, and the entries.
    target: Section | None = None
    relocations: list[Relocation] = field(default_factory=list)
    # For other sections: the SHT_RELA section that applies to this one.
    rela: Section | None = None
    # The STT_SECTION symbol of this section, when the object has one.
    section_symbol: Symbol | None = None
    # The symbols defined in this section, in symbol table order.
    symbols: list[Symbol] = field(default_factory=list)
    # The function or object that owns this whole section (-ffunction-sections,
    # -fdata-sections), when there is one.
    bundle: Symbol | None = None
    twin: Section | None = None
    status: str = ""
    include: bool = False

    @property
    def is_text(self) -> bool:
        return bool(self.sh_flags & SHF_EXECINSTR)

    def __repr__(self) -> str:
        return f"<Section {self.name}>"


@dataclass(eq=False)
class ElfObject:
    path: Path
    sections: list[Section]
    symbols: list[Symbol]
    e_flags: int = 0

    def section_by_name(self, name: str) -> Section | None:
        for section in self.sections:
            if section.name == name:
                return section
        return None


def read_object(path: Path) -> ElfObject:
    """Read a relocatable x86_64 object; raise ElfDiffError on anything else."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except OSError as error:
        raise ElfDiffError(f"cannot read {path}: {error.strerror}") from None
    try:
        return _parse(path, raw)
    except (
        ELFError,
        struct.error,
        IndexError,
        ValueError,
        KeyError,
        OverflowError,
        UnicodeDecodeError,
    ) as error:
        raise ElfDiffError(f"{path} is not a valid ELF object: {error}") from None


def _parse(path: Path, raw: bytes) -> ElfObject:
    import io

    elf = ELFFile(io.BytesIO(raw))
    header = elf.header
    if elf.elfclass != 64 or not elf.little_endian or header["e_machine"] != "EM_X86_64":
        raise ElfDiffError(f"{path} is not an x86_64 object (machine {header['e_machine']})")
    if header["e_type"] != "ET_REL":
        raise ElfDiffError(f"{path} is {header['e_type']}, not a relocatable object (ET_REL)")
    if elf.num_segments():
        raise ElfDiffError(f"{path} has program headers; expected a compiler-produced object")

    sections = []
    for index in range(elf.num_sections()):
        sections.append(_read_section(elf, raw, index, path))
    if elf.num_sections() == 0 or header["e_shstrndx"] == SHN_UNDEF:
        raise ElfDiffError(f"{path} has no section headers")

    symtabs = [s for s in sections if s.sh_type == SHT_SYMTAB]
    if len(symtabs) != 1:
        raise ElfDiffError(f"{path} has {len(symtabs)} symbol tables; expected one")
    symbols = _read_symbols(symtabs[0], sections, path)
    for section in sections:
        if section.sh_type == SHT_RELA:
            _read_relocations(section, sections, symbols, path)
        elif section.sh_type == SHT_REL:
            raise ElfDiffError(
                f"{path}: section {section.name} uses SHT_REL; x86_64 uses SHT_RELA"
            )
    return ElfObject(path=path, sections=sections, symbols=symbols, e_flags=header["e_flags"])


def _read_section(elf: ELFFile, raw: bytes, index: int, path: Path) -> Section:
    section = elf.get_section(index)
    header = section.header
    name = section.name if index else ""
    sh_type = header["sh_type"]
    sh_type = sh_type if isinstance(sh_type, int) else _SH_TYPES.get(sh_type, -1)
    size = header["sh_size"]
    align = header["sh_addralign"]
    if align & (align - 1):
        raise ElfDiffError(f"{path}: section {name} has sh_addralign {align}, not a power of two")
    if sh_type in (SHT_NOBITS, SHT_NULL):
        data = b""
    else:
        offset = header["sh_offset"]
        if offset + size > len(raw):
            raise ElfDiffError(f"{path}: section {name} runs past the end of the file")
        data = raw[offset : offset + size]
    return Section(
        name=name,
        sh_type=sh_type,
        sh_flags=header["sh_flags"],
        sh_addralign=align,
        sh_entsize=header["sh_entsize"],
        data=data,
        sh_size=size,
        sh_link=header["sh_link"],
        sh_info=header["sh_info"],
        index=index,
    )


_SH_TYPES = {
    "SHT_NULL": SHT_NULL,
    "SHT_PROGBITS": SHT_PROGBITS,
    "SHT_SYMTAB": SHT_SYMTAB,
    "SHT_STRTAB": SHT_STRTAB,
    "SHT_RELA": SHT_RELA,
    "SHT_HASH": 5,
    "SHT_DYNAMIC": 6,
    "SHT_NOTE": 7,
    "SHT_NOBITS": SHT_NOBITS,
    "SHT_REL": SHT_REL,
    "SHT_SHLIB": 10,
    "SHT_DYNSYM": 11,
    "SHT_INIT_ARRAY": 14,
    "SHT_FINI_ARRAY": 15,
    "SHT_PREINIT_ARRAY": 16,
    "SHT_GROUP": SHT_GROUP,
    "SHT_SYMTAB_SHNDX": SHT_SYMTAB_SHNDX,
    "SHT_GNU_ATTRIBUTES": 0x6FFFFFF5,
    "SHT_GNU_HASH": 0x6FFFFFF6,
    "SHT_GNU_LIBLIST": 0x6FFFFFF7,
    "SHT_GNU_verdef": 0x6FFFFFFD,
    "SHT_GNU_verneed": 0x6FFFFFFE,
    "SHT_GNU_versym": 0x6FFFFFFF,
    "SHT_X86_64_UNWIND": 0x70000001,
}


def _string_at(table: bytes, offset: int) -> str:
    end = table.index(b"\0", offset)
    return table[offset:end].decode()


def _read_symbols(symtab: Section, sections: list[Section], path: Path) -> list[Symbol]:
    if symtab.sh_link >= len(sections):
        raise ElfDiffError(f"{path}: symbol table links to missing section {symtab.sh_link}")
    strtab = sections[symtab.sh_link].data
    shndx_table = next((s for s in sections if s.sh_type == SHT_SYMTAB_SHNDX), None)
    extended = (
        struct.unpack(f"<{len(shndx_table.data) // 4}I", shndx_table.data) if shndx_table else ()
    )
    symbols = []
    usable = len(symtab.data) - len(symtab.data) % SYMBOL_FORMAT.size
    for index, fields in enumerate(SYMBOL_FORMAT.iter_unpack(symtab.data[:usable])):
        st_name, st_info, st_other, raw_shndx, st_value, st_size = fields
        st_shndx = extended[index] if raw_shndx == SHN_XINDEX else raw_shndx
        symbol = Symbol(
            name=_string_at(strtab, st_name),
            st_value=st_value,
            st_size=st_size,
            bind=st_info >> 4,
            type=st_info & 0xF,
            st_other=st_other,
            st_shndx=st_shndx,
            index=index,
        )
        if raw_shndx == SHN_XINDEX or SHN_UNDEF < raw_shndx < SHN_LORESERVE:
            if st_shndx >= len(sections):
                raise ElfDiffError(
                    f"{path}: symbol {symbol.name} points at missing section {st_shndx}"
                )
            symbol.section = sections[st_shndx]
            if symbol.type == STT_SECTION:
                symbol.section.section_symbol = symbol
            else:
                symbol.section.symbols.append(symbol)
        symbols.append(symbol)
    if not symbols:
        raise ElfDiffError(f"{path} has an empty symbol table")
    return symbols


def _read_relocations(
    rela: Section, sections: list[Section], symbols: list[Symbol], path: Path
) -> None:
    if not 0 < rela.sh_info < len(sections):
        raise ElfDiffError(
            f"{path}: relocation section {rela.name} applies to missing section {rela.sh_info}"
        )
    rela.target = sections[rela.sh_info]
    rela.target.rela = rela
    usable = len(rela.data) - len(rela.data) % RELA_FORMAT.size
    for r_offset, r_info, r_addend in RELA_FORMAT.iter_unpack(rela.data[:usable]):
        symbol_index = r_info >> 32
        if symbol_index >= len(symbols):
            raise ElfDiffError(
                f"{path}: relocation in {rela.name} names missing symbol {symbol_index}"
            )
        if r_offset >= max(rela.target.sh_size, 1):
            raise ElfDiffError(
                f"{path}: relocation in {rela.name} points past the end of {rela.target.name}"
            )
        rela.relocations.append(
            Relocation(r_offset, r_info & 0xFFFFFFFF, symbols[symbol_index], r_addend)
        )
