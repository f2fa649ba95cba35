"""Symbol names and the link between sections and the symbols they hold."""

from __future__ import annotations

import re

from .elf import (
    R_X86_64_PC32,
    R_X86_64_PC64,
    R_X86_64_PLT32,
    SHF_ALLOC,
    SHF_MERGE,
    SHF_STRINGS,
    STB_LOCAL,
    STT_FUNC,
    STT_NOTYPE,
    STT_OBJECT,
    STT_SECTION,
    ElfObject,
    Relocation,
    Section,
    Symbol,
)
from .x86 import bytes_after_field

# gcc numbers clones and static locals (".123"); __UNIQUE_ID_ names end in a counter.
_NUMBER_SUFFIX = re.compile(r"\.\d+")
_UNIQUE_ID = re.compile(r"^(__UNIQUE_ID_.*?)\d+$")

# Per-function and per-object section prefixes that -ffunction-sections and
# -fdata-sections produce, longest first so ".text.unlikely." wins over ".text.".
BUNDLE_PREFIXES = (
    ".text.unlikely.",
    ".text.hot.",
    ".text.",
    ".data..ro_after_init.",
    ".data..read_mostly.",
    ".data..percpu..",
    ".data.rel.ro.local.",
    ".data.rel.ro.",
    ".data.rel.local.",
    ".data.rel.",
    ".data.",
    ".rodata.",
    ".bss.",
)

# Static data that each build makes fresh and a patch must not share with the
# original: WARN_ONCE state, lock class keys, ratelimit state, __func__ strings.
SPECIAL_STATIC_PREFIXES = (
    "__key",
    "__warned",
    "__already_done",
    "__func__",
    "__print_once",
    "_rs",
    "CSWTCH",
    "__verbose",
    "descriptor",
    "__UNIQUE_ID_ddebug",
    "__msg",
    "__param_str",
    "_entry",
    "_entry_ptr",
    "_entry_ptr_",
    "__tpstrtab",
    "__bpf_trace_tp_map",
)


def normalize(name: str) -> str:
    """Return NAME without compiler-numbered suffixes: foo.isra.3 -> foo.isra."""
    match = _UNIQUE_ID.match(name)
    if match:
        return match.group(1)
    return _NUMBER_SUFFIX.sub("", name)


def is_special_static(symbol: Symbol) -> bool:
    if symbol.bind != STB_LOCAL or symbol.type not in (STT_OBJECT, STT_NOTYPE):
        return False
    base = normalize(symbol.name)
    return any(
        base == prefix or base.startswith(prefix + ".") for prefix in SPECIAL_STATIC_PREFIXES
    )


def is_cold_child(symbol: Symbol) -> bool:
    """Tell whether SYMBOL is the .cold part gcc split out of a function."""
    return symbol.type == STT_FUNC and ".cold" in symbol.name


def parent_name(symbol: Symbol) -> str:
    return symbol.name.split(".cold")[0]


def is_string_section(section: Section) -> bool:
    """Tell whether SECTION contains merged literals that code refers to by offset."""
    if section.sh_flags & SHF_MERGE and section.sh_flags & SHF_ALLOC:
        return True
    return section.name.startswith((".rodata.str", ".rodata.cst")) or bool(
        section.sh_flags & SHF_STRINGS
    )


def bundle_sections(obj: ElfObject) -> None:
    """Link each per-function or per-object section with the symbol it holds."""
    for section in obj.sections:
        if not section.sh_flags & SHF_ALLOC:
            continue
        for prefix in BUNDLE_PREFIXES:
            if section.name.startswith(prefix):
                wanted = section.name[len(prefix) :]
                break
        else:
            continue
        # gcc puts the cold part of foo, foo.cold, alone in .text.unlikely.foo.
        names = (wanted, wanted + ".cold") if prefix == ".text.unlikely." else (wanted,)
        for symbol in section.symbols:
            if (
                symbol.name in names
                and symbol.st_value == 0
                and symbol.type in (STT_FUNC, STT_OBJECT)
            ):
                section.bundle = symbol
                break


def pc_relative(relocation: Relocation) -> bool:
    return relocation.r_type in (R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_PC64)


def target_offset(section: Section, relocation: Relocation) -> int:
    """Return the offset inside the target section that RELOCATION refers to.

    Code computes a PC-relative target from the end of the instruction, so
    the field size and the instruction bytes after it count. Data such as
    `.long target - .` in __bug_table is read from the field itself.
    """
    if not pc_relative(relocation) or not section.is_text:
        return relocation.r_addend
    size = 8 if relocation.r_type == R_X86_64_PC64 else 4
    return relocation.r_addend + size + bytes_after_field(section, relocation.r_offset, size)


def symbol_at(section: Section, offset: int) -> Symbol | None:
    """Return the function or object of SECTION that covers OFFSET."""
    if section.bundle is not None:
        return section.bundle
    best = None
    for symbol in section.symbols:
        if symbol.type not in (STT_FUNC, STT_OBJECT):
            continue
        if symbol.st_value <= offset < symbol.st_value + max(symbol.st_size, 1):
            if best is None or symbol.st_size < best.st_size:
                best = symbol
    return best


def convert_section_relocations(obj: ElfObject) -> None:
    """Point relocations against section symbols at the symbol they reach.

    Assemblers write a reference to a local function or object as section
    symbol plus offset. Rewriting it to the symbol itself lets the diff
    correlate and resolve it by name. References into merged strings stay
    section-relative because strings have no symbols.
    """
    for rela in obj.sections:
        if rela.target is None:
            continue
        for relocation in rela.relocations:
            symbol = relocation.symbol
            if symbol.type != STT_SECTION or symbol.section is None:
                continue
            target = symbol.section
            if is_string_section(target):
                continue
            offset = target_offset(rela.target, relocation)
            owner = symbol_at(target, offset)
            if owner is None:
                continue
            relocation.symbol = owner
            relocation.r_addend -= owner.st_value
