"""Assemble the output object: included sections, symbols, and kpatch records.

Included code may refer to things the output does not carry. A symbol that
vmlinux exports stays a plain undefined symbol for the module loader. Any
other becomes a livepatch symbol named ``.klp.sym.<object>.<name>,<sympos>``,
which the finalisation step turns into an SHN_LIVEPATCH symbol with
``.klp.rela`` sections after the module link.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field

from .elf import (
    R_X86_64_64,
    SHF_ALLOC,
    SHF_WRITE,
    SHN_UNDEF,
    SHT_PROGBITS,
    SHT_RELA,
    STB_GLOBAL,
    STB_LOCAL,
    STT_FILE,
    STT_FUNC,
    STT_SECTION,
    ElfObject,
    Relocation,
    Section,
    Symbol,
)
from .errors import ElfDiffError, UnsupportedChange
from .lookup import FileBlock, ParentSymbol, ParentTable
from .marks import add_callback_objnames
from .modinfo import add_namespace_imports
from .records import add_relocation_records
from .special import FilteredSection
from .symbols import is_special_static

log = logging.getLogger(__name__)

KPATCH_FUNC = struct.Struct("<QQQQQQQ")
NEVER_KLP = {"__fentry__", "__x86_return_thunk"}


@dataclass
class Parent:
    """The object the patched code links against: its name, symbols and exports."""

    name: str
    table: ParentTable
    block: FileBlock | None
    exports: dict[str, str]
    # The namespace of each exported symbol that has one, from Module.symvers.
    namespaces: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KlpTarget:
    """A symbol of the parent that only the livepatch core resolves, at load time."""

    objname: str
    name: str
    sympos: int
    bind: int
    type: int
    # The address in vmlinux; 0 in a module, whose address is known only once loaded.
    address: int


def klp_symbol_name(objname: str, name: str, sympos: int) -> str:
    return f".klp.sym.{objname}.{name},{sympos}"


@dataclass
class OutputBuilder:
    patched: ElfObject
    parent: Parent
    sections: list[Section] = field(default_factory=list)
    copies: dict[Section, Section] = field(default_factory=dict)
    symbols: dict[Symbol, Symbol] = field(default_factory=dict)
    externals: dict[str, Symbol] = field(default_factory=dict)
    section_symbols: dict[Section, Symbol] = field(default_factory=dict)
    # What each .klp.sym.* symbol of the output stands for, by symbol name.
    klp_targets: dict[str, KlpTarget] = field(default_factory=dict)
    strings: Section | None = None
    string_offsets: dict[str, int] = field(default_factory=dict)

    def copy_section(self, section: Section, data: bytes | None = None) -> Section:
        copy = Section(
            name=section.name,
            sh_type=section.sh_type,
            sh_flags=section.sh_flags,
            sh_addralign=section.sh_addralign,
            sh_entsize=section.sh_entsize,
            data=section.data if data is None else data,
            sh_size=section.sh_size if data is None else len(data),
        )
        self.sections.append(copy)
        self.copies[section] = copy
        symbol = Symbol("", 0, 0, STB_LOCAL, STT_SECTION, 0, 0, section=copy)
        self.section_symbols[copy] = symbol
        return copy

    def add_relocations(self, target: Section, relocations: list[Relocation]) -> None:
        if not relocations:
            return
        rela = Section(".rela" + target.name, SHT_RELA, 0, 8, 24, b"", 0, target=target)
        rela.relocations = [
            Relocation(r.r_offset, r.r_type, self.resolve(r.symbol), r.r_addend)
            for r in relocations
        ]
        self.sections.append(rela)

    def new_section(
        self, name: str, data: bytes, flags: int = SHF_ALLOC, align: int = 8
    ) -> Section:
        section = Section(name, SHT_PROGBITS, flags, align, 0, data, len(data))
        self.sections.append(section)
        self.section_symbols[section] = Symbol(
            "", 0, 0, STB_LOCAL, STT_SECTION, 0, 0, section=section
        )
        return section

    def string_relocation(self, r_offset: int, text: str) -> Relocation:
        """Return an R_X86_64_64 relocation at R_OFFSET to TEXT in .kpatch.strings."""
        if self.strings is None:
            self.strings = self.new_section(".kpatch.strings", b"", flags=SHF_ALLOC, align=1)
        offset = self.string_offsets.get(text)
        if offset is None:
            offset = len(self.strings.data)
            self.string_offsets[text] = offset
            self.strings.data += text.encode() + b"\0"
            self.strings.sh_size = len(self.strings.data)
        return Relocation(r_offset, R_X86_64_64, self.section_symbols[self.strings], offset)

    def resolve(self, symbol: Symbol) -> Symbol:
        """Return the output symbol that stands for SYMBOL of the patched object."""
        if symbol.type == STT_SECTION:
            if symbol.section not in self.copies:
                raise ElfDiffError(
                    f"reference to section {symbol.section.name}, which is not included"
                )
            return self.section_symbols[self.copies[symbol.section]]
        if symbol.include:
            copy = self.symbols.get(symbol)
            if copy is None:
                copy = self._copy_symbol(symbol)
            return copy
        return self._external(symbol)

    def _copy_symbol(self, symbol: Symbol) -> Symbol:
        section = self.copies.get(symbol.section)
        if section is None:
            raise ElfDiffError(f"symbol {symbol.name} is included but its section is not")
        bind = symbol.bind
        # Changed functions replace functions of the parent; a global would clash with them.
        if symbol.status == "changed" or is_special_static(symbol):
            bind = STB_LOCAL
        copy = Symbol(
            symbol.name,
            symbol.st_value,
            symbol.st_size,
            bind,
            symbol.type,
            symbol.st_other,
            0,
            section=section,
        )
        self.symbols[symbol] = copy
        return copy

    def _external(self, symbol: Symbol) -> Symbol:
        name = self._external_name(symbol)
        copy = self.externals.get(name)
        if copy is None:
            copy = Symbol(name, 0, 0, STB_GLOBAL, 0, 0, SHN_UNDEF)
            self.externals[name] = copy
        return copy

    def _external_name(self, symbol: Symbol) -> str:
        parent = self.parent
        if symbol.bind == STB_LOCAL:
            return self._klp_name(symbol, self.find_local(symbol))
        name = symbol.name
        exporter = parent.exports.get(name)
        if name in NEVER_KLP or exporter == "vmlinux":
            return name
        if exporter:
            # A module's export stays a plain symbol, as in the module being patched:
            # the patch module then depends on the exporter. A livepatch relocation
            # would be applied only when the klp_object of the exporter loads, and
            # the patch has no klp_object for a module it does not patch.
            if parent.name == "vmlinux":
                raise UnsupportedChange(
                    f"patched vmlinux code uses {name}, which module {exporter} exports; "
                    "vmlinux cannot refer to a module"
                )
            return name
        found = parent.table.globals.get(name)
        if found is None:
            # Defined by another object of the same patch.
            return name
        return self._klp_name(symbol, found)

    def _klp_name(self, symbol: Symbol, found: ParentSymbol) -> str:
        """Return the .klp.sym name of FOUND in the parent and remember what it stands for."""
        parent = self.parent
        sympos = parent.table.sympos(found)
        name = klp_symbol_name(parent.name, found.name, sympos)
        if name not in self.klp_targets:
            address = found.value if parent.name == "vmlinux" else 0
            self.klp_targets[name] = KlpTarget(
                parent.name, found.name, sympos, symbol.bind, symbol.type, address
            )
        return name

    def find_local(self, symbol: Symbol) -> ParentSymbol:
        block = self.parent.block
        # The parent was built from the original object, whose numbered suffixes
        # (count.1, foo.isra.0) can differ from the patched ones, so look up the twin's name.
        name = symbol.twin.name if symbol.twin is not None else symbol.name
        found = block.find(name, symbol.type) if block is not None else None
        if found is None:
            source = block.name if block is not None else self.patched.path.name
            raise ElfDiffError(
                f"local symbol {name} of {source} not found in {self.parent.name}; "
                "was the running kernel built from the same source and config?"
            )
        return found


def build_output(
    patched: ElfObject,
    parent: Parent,
    included: list[Section],
    specials: list[FilteredSection],
    orc: bytes | None,
    changed: list[Symbol],
) -> tuple[list[Section], list[Symbol]]:
    """Return the sections and symbols of the output object, ready for the writer."""
    builder = OutputBuilder(patched, parent)
    for section in included:
        builder.copy_section(section)
    for special in specials:
        copy = builder.copy_section(special.source, special.data)
        if special.source.name == ".orc_unwind_ip" and orc is not None:
            orc_source = patched.section_by_name(".orc_unwind")
            builder.copy_section(orc_source, orc)
        special.copy = copy

    for symbol in patched.symbols[1:]:
        if symbol.include and symbol.type != STT_SECTION:
            builder.resolve(symbol)

    for section in included:
        if section.rela is not None:
            builder.add_relocations(builder.copies[section], section.rela.relocations)
    for special in specials:
        builder.add_relocations(special.copy, special.relocations)

    add_callback_objnames(builder)
    _add_function_records(builder, changed)
    add_relocation_records(builder)
    add_namespace_imports(builder)
    return builder.sections, _order_symbols(builder, patched)


def _add_function_records(builder: OutputBuilder, changed: list[Symbol]) -> None:
    records = bytearray()
    relocations = []
    pending = []
    for symbol in changed:
        found = (
            builder.find_local(symbol)
            if symbol.bind == STB_LOCAL
            else builder.parent.table.globals.get(symbol.name)
        )
        if found is None:
            raise ElfDiffError(f"function {symbol.name} not found in {builder.parent.name}")
        base = len(records)
        sympos = builder.parent.table.sympos(found)
        records += KPATCH_FUNC.pack(0, symbol.st_size, found.value, found.size, sympos, 0, 0)
        pending.append((base, symbol, found.name))
        log.info(
            "patching %s (old size %d, new size %d, sympos %d)",
            found.name,
            found.size,
            symbol.st_size,
            sympos,
        )

    funcs = builder.new_section(".kpatch.funcs", bytes(records), flags=SHF_ALLOC | SHF_WRITE)
    for base, symbol, name in pending:
        relocations.append(Relocation(base, R_X86_64_64, builder.resolve(symbol), 0))
        relocations.append(builder.string_relocation(base + 40, name))
        relocations.append(builder.string_relocation(base + 48, builder.parent.name))
    rela = Section(".rela.kpatch.funcs", SHT_RELA, 0, 8, 24, b"", 0, target=funcs)
    rela.relocations = relocations
    builder.sections.append(rela)


def _order_symbols(builder: OutputBuilder, patched: ElfObject) -> list[Symbol]:
    file_symbol = next((s for s in patched.symbols if s.type == STT_FILE), None)
    ordered: list[Symbol] = []
    if file_symbol is not None:
        ordered.append(Symbol(file_symbol.name, 0, 0, STB_LOCAL, STT_FILE, 0, 0xFFF1))
    ordered += [
        builder.section_symbols[s] for s in builder.sections if s in builder.section_symbols
    ]
    copies = list(builder.symbols.values())
    ordered += [s for s in copies if s.bind == STB_LOCAL and s.type == STT_FUNC]
    ordered += [s for s in copies if s.bind == STB_LOCAL and s.type != STT_FUNC]
    ordered += [s for s in copies if s.bind != STB_LOCAL]
    ordered += list(builder.externals.values())
    return ordered
