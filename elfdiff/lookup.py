"""The parent's symbol table: where patched code finds symbols at load time.

The parent is vmlinux or the module that links the object. Its symbol table
gives each local symbol's position among namesakes (sympos) and groups
local symbols by source file (an STT_FILE symbol followed by that file's
locals), which is how a local symbol of an object is found in the parent.
"""

from __future__ import annotations

import re
from collections import defaultdict
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


class ParentTable:
    """Symbols of vmlinux or of a module, with sympos computed in kallsyms order."""

    def __init__(self, name: str, symbols: list[ParentSymbol]) -> None:
        self.name = name
        self.globals: dict[str, ParentSymbol] = {}
        self.blocks: dict[str, list[FileBlock]] = defaultdict(list)
        self._namesakes: dict[str, list[ParentSymbol]] = defaultdict(list)
        block = None
        for symbol in symbols:
            if symbol.type == STT_FILE:
                block = FileBlock(symbol.name)
                self.blocks[symbol.name].append(block)
                continue
            if symbol.shndx == SHN_UNDEF or symbol.type == STT_SECTION:
                continue
            if symbol.type in (STT_FUNC, STT_OBJECT, STT_NOTYPE) and symbol.shndx != SHN_ABS:
                self._namesakes[symbol.name].append(symbol)
            if symbol.bind == STB_LOCAL:
                if block is not None:
                    block.symbols.append(symbol)
            else:
                self.globals[symbol.name] = symbol
        # kallsyms orders namesakes by address; livepatch counts sympos in that order.
        for namesakes in self._namesakes.values():
            namesakes.sort(key=lambda s: s.value)

    def sympos(self, symbol: ParentSymbol) -> int:
        """Return 0 for a unique name, else the 1-based position among namesakes."""
        namesakes = self._namesakes.get(symbol.name, [])
        if len(namesakes) <= 1:
            return 0
        for position, candidate in enumerate(namesakes, start=1):
            if candidate == symbol:
                return position
        raise ElfDiffError(
            f"symbol {symbol.name} is missing from the kallsyms order of {self.name}"
        )

    def find_block(self, file_name: str, local_names: set[tuple[str, int]]) -> FileBlock:
        """Return the block of FILE_NAME whose locals match LOCAL_NAMES best."""
        candidates = self.blocks.get(file_name, [])
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
        return ParentTable(name, _read_elf_symbols(path))
    return ParentTable(name, _read_readelf_text(path))


def _read_elf_symbols(path: Path) -> list[ParentSymbol]:
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
    symbols = []
    usable = len(data) - len(data) % SYMBOL_FORMAT.size
    for st_name, st_info, _other, st_shndx, st_value, st_size in SYMBOL_FORMAT.iter_unpack(
        data[:usable]
    ):
        end = strtab.find(b"\0", st_name)
        name = strtab[st_name:end].decode(errors="replace")
        symbols.append(
            ParentSymbol(name, st_value, st_size, st_info >> 4, st_info & 0xF, st_shndx)
        )
    return symbols


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


def _read_readelf_text(path: Path) -> list[ParentSymbol]:
    symbols = []
    for line in path.read_text(errors="replace").splitlines():
        match = _READELF_LINE.match(line)
        if not match:
            continue
        value, size, sym_type, bind, ndx, name = match.groups()
        shndx = {"UND": SHN_UNDEF, "ABS": SHN_ABS}.get(ndx)
        if shndx is None:
            shndx = int(ndx) if ndx.isdigit() else 0xFFF0
        symbols.append(
            ParentSymbol(
                name.split("@")[0] if name else "",
                int(value, 16),
                int(size, 0),
                _BINDS.get(bind, 1),
                _TYPES.get(sym_type, STT_NOTYPE),
                shndx,
            )
        )
    if not symbols:
        raise ElfDiffError(f"{path} is neither an ELF file nor `readelf -s --wide` output")
    return symbols


def read_exports(path: Path) -> dict[str, str]:
    """Map each exported symbol in Module.symvers to the module (or vmlinux) exporting it."""
    exports = {}
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ElfDiffError(f"cannot read {path}: {error.strerror}") from None
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            exports[fields[1]] = fields[2]
    return exports
