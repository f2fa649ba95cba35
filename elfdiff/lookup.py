"""The parent's symbol table: where patched code finds symbols at load time.

The parent is vmlinux or the module that links the object. Its symbol table
gives each local symbol's position among namesakes (sympos) and groups
local symbols by source file (an STT_FILE symbol followed by that file's
locals), which is how a local symbol of an object is found in the parent.
"""

from __future__ import annotations

import array
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .elf import (
    SHN_ABS,
    SHN_UNDEF,
    STB_LOCAL,
    STT_FILE,
    STT_FUNC,
    STT_NOTYPE,
    STT_OBJECT,
    STT_SECTION,
    SYMBOL_FORMAT,
)
from .errors import ElfDiffError
from .symbols import normalize


@dataclass(frozen=True)
class ParentSymbol:
    name: str
    value: int
    size: int
    bind: int
    type: int
    shndx: int


@dataclass
class FileBlock:
    """The local symbols that follow one STT_FILE symbol in the parent."""

    name: str
    symbols: list[ParentSymbol] = field(default_factory=list)

    def find(self, name: str, sym_type: int) -> ParentSymbol | None:
        exact = [s for s in self.symbols if s.name == name and s.type == sym_type]
        if exact:
            return exact[0]
        key = normalize(name)
        matches = [s for s in self.symbols if normalize(s.name) == key and s.type == sym_type]
        return matches[0] if len(matches) == 1 else None


class GlobalSymbols:
    """Lookup of the parent's defined global symbols by name."""

    def __init__(self, table: ParentTable) -> None:
        self._table = table
        self._found: dict[str, ParentSymbol | None] = {}

    def get(self, name: str) -> ParentSymbol | None:
        if name not in self._found:
            found = None
            for symbol in self._table.named(name):
                if symbol.bind == STB_LOCAL or symbol.shndx == SHN_UNDEF:
                    continue
                if symbol.type not in (STT_SECTION, STT_FILE):
                    found = symbol
            self._found[name] = found
        return self._found[name]

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None


class ParentTable:
    """Symbols of vmlinux or of a module, with sympos computed in kallsyms order.

    A vmlinux has tens of thousands of symbols and a diff needs a few dozen,
    so the table keeps the raw .symtab bytes and decodes entries on demand.
    """

    def __init__(self, name: str, symtab: bytes, strtab: bytes) -> None:
        self.name = name
        self.symtab = symtab[: len(symtab) - len(symtab) % SYMBOL_FORMAT.size]
        self.strtab = strtab
        self.globals = GlobalSymbols(self)
        # st_name of every entry: the first 4 of each entry's 24 bytes.
        columns = array.array("I", self.symtab)
        if sys.byteorder != "little":
            columns.byteswap()
        self._name_offsets = columns[:: SYMBOL_FORMAT.size // 4]
        self._namesakes: dict[str, list[ParentSymbol]] = {}

    def __len__(self) -> int:
        return len(self._name_offsets)

    def name_at(self, offset: int) -> str:
        end = self.strtab.find(b"\0", offset)
        return self.strtab[offset : end if end >= 0 else len(self.strtab)].decode(errors="replace")

    def symbol(self, index: int) -> ParentSymbol:
        st_name, st_info, _, st_shndx, st_value, st_size = SYMBOL_FORMAT.unpack_from(
            self.symtab, index * SYMBOL_FORMAT.size
        )
        return ParentSymbol(
            self.name_at(st_name), st_value, st_size, st_info >> 4, st_info & 0xF, st_shndx
        )

    def named(self, name: str) -> list[ParentSymbol]:
        """Return the symbols called NAME, in symbol table order."""
        # The linker shares string tails ("count" inside "my_count"), so every
        # place where NAME and its terminator occur can be a symbol's name.
        key = name.encode() + b"\0"
        indices = []
        position = self.strtab.find(key)
        while position >= 0:
            index = -1
            while True:
                try:
                    index = self._name_offsets.index(position, index + 1)
                except ValueError:
                    break
                indices.append(index)
            position = self.strtab.find(key, position + 1)
        return [self.symbol(index) for index in sorted(indices)]

    def namesakes(self, name: str) -> list[ParentSymbol]:
        """Return the functions and objects called NAME in kallsyms (address) order."""
        found = self._namesakes.get(name)
        if found is None:
            found = [
                symbol
                for symbol in self.named(name)
                if symbol.shndx not in (SHN_UNDEF, SHN_ABS)
                and symbol.type in (STT_FUNC, STT_OBJECT, STT_NOTYPE)
            ]
            found.sort(key=lambda s: s.value)
            self._namesakes[name] = found
        return found

    def sympos(self, symbol: ParentSymbol) -> int:
        """Return 0 for a unique name, else the 1-based position among namesakes."""
        namesakes = self.namesakes(symbol.name)
        if len(namesakes) <= 1:
            return 0
        for position, candidate in enumerate(namesakes, start=1):
            if candidate == symbol:
                return position
        raise ElfDiffError(
            f"symbol {symbol.name} is missing from the kallsyms order of {self.name}"
        )

    def _file_indices(self) -> list[int]:
        """Return the indices of the STT_FILE entries. st_info is byte 4 of each entry."""
        infos = self.symtab[4 :: SYMBOL_FORMAT.size]
        local_file = bytes(((STB_LOCAL << 4) | STT_FILE,))
        indices = []
        position = infos.find(local_file)
        while position >= 0:
            indices.append(position)
            position = infos.find(local_file, position + 1)
        return indices

    def blocks(self, file_name: str) -> list[FileBlock]:
        """Return a FileBlock for each STT_FILE symbol called FILE_NAME."""
        blocks = []
        files = self._file_indices()
        for start, end in zip(files, files[1:] + [len(self)]):
            if self.name_at(self._name_offsets[start]) != file_name:
                continue
            block = FileBlock(file_name)
            for index in range(start + 1, end):
                symbol = self.symbol(index)
                if symbol.bind != STB_LOCAL or symbol.shndx == SHN_UNDEF:
                    continue
                if symbol.type != STT_SECTION:
                    block.symbols.append(symbol)
            blocks.append(block)
        return blocks

    def find_block(self, file_name: str, local_names: set[tuple[str, int]]) -> FileBlock:
        """Return the block of FILE_NAME whose locals match LOCAL_NAMES best."""
        candidates = self.blocks(file_name)
        if not candidates:
            raise ElfDiffError(
                f"no symbols of {file_name} in {self.name}; is this the parent the object was built into?"
            )
        scored = []
        for block in candidates:
            score = sum(1 for name, sym_type in local_names if block.find(name, sym_type))
            scored.append((score, block))
        scored.sort(key=lambda item: -item[0])
        if len(scored) > 1 and scored[0][0] == scored[1][0] and local_names:
            raise ElfDiffError(
                f"{len(candidates)} files named {file_name} in {self.name} match the object equally well"
            )
        return scored[0][1]


def read_parent(path: Path, name: str) -> ParentTable:
    """Read the parent's symbols from an ELF file or from `readelf -s --wide` output."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            magic = stream.read(4)
    except OSError as error:
        raise ElfDiffError(f"cannot read parent symbol table {path}: {error.strerror}") from None
    if magic == b"\x7fELF":
        return ParentTable(name, *_read_elf_symbols(path))
    return ParentTable(name, *_read_readelf_text(path))


def _read_elf_symbols(path: Path) -> tuple[bytes, bytes]:
    try:
        with open(path, "rb") as stream:
            elf = ELFFile(stream)
            symtab = elf.get_section_by_name(".symtab")
            if symtab is None:
                raise ElfDiffError(f"{path} has no .symtab; build it without stripping symbols")
            strtab = elf.get_section(symtab["sh_link"]).data()
            data = symtab.data()
    except ELFError as error:
        raise ElfDiffError(f"{path} is not a valid ELF file: {error}") from None
    return data, strtab


_READELF_LINE = re.compile(
    r"^\s*\d+:\s+([0-9a-fA-F]+)\s+(\d+|0x[0-9a-fA-F]+)\s+(\w+)\s+(\w+)\s+\w+\s+(\w+)\s*(.*)$"
)
_TYPES = {
    "NOTYPE": STT_NOTYPE,
    "OBJECT": STT_OBJECT,
    "FUNC": STT_FUNC,
    "SECTION": STT_SECTION,
    "FILE": STT_FILE,
}
_BINDS = {"LOCAL": 0, "GLOBAL": 1, "WEAK": 2}


def _read_readelf_text(path: Path) -> tuple[bytes, bytes]:
    """Turn `readelf -s --wide` lines into .symtab and .strtab contents."""
    symtab = bytearray()
    strtab = bytearray(b"\0")
    for line in path.read_text(errors="replace").splitlines():
        match = _READELF_LINE.match(line)
        if not match:
            continue
        value, size, sym_type, bind, ndx, name = match.groups()
        shndx = {"UND": SHN_UNDEF, "ABS": SHN_ABS}.get(ndx)
        if shndx is None:
            shndx = int(ndx) if ndx.isdigit() else 0xFFF0
        st_info = (_BINDS.get(bind, 1) << 4) | _TYPES.get(sym_type, STT_NOTYPE)
        st_name = len(strtab)
        strtab += (name.split("@")[0] if name else "").encode() + b"\0"
        symtab += SYMBOL_FORMAT.pack(st_name, st_info, 0, shndx, int(value, 16), int(size, 0))
    if not symtab:
        raise ElfDiffError(f"{path} is neither an ELF file nor `readelf -s --wide` output")
    return bytes(symtab), bytes(strtab)


@dataclass(frozen=True)
class Symvers:
    """Module.symvers: the object that exports each symbol, and its namespace if any."""

    exports: dict[str, str]
    namespaces: dict[str, str]


def read_symvers(path: Path) -> Symvers:
    """Read Module.symvers lines: CRC, symbol, object, export type, namespace (Linux 6.1)."""
    exports = {}
    namespaces = {}
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ElfDiffError(f"cannot read {path}: {error.strerror}") from None
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            exports[fields[1]] = fields[2]
        if len(fields) >= 5 and fields[4]:
            namespaces[fields[1]] = fields[4]
    return Symvers(exports, namespaces)


def read_exports(path: Path) -> dict[str, str]:
    """Map each exported symbol in Module.symvers to the module (or vmlinux) exporting it."""
    return read_symvers(path).exports
