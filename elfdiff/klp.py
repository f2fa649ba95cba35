"""Livepatch finalisation of a linked patch module.

elfdiff names every symbol that only the livepatch core can resolve
``.klp.sym.<object>.<name>,<sympos>`` and leaves it undefined. After the
module link (which would mangle them earlier), this step marks those
symbols SHN_LIVEPATCH and moves the relocations that use them into
``.klp.rela.<object>.<section>`` sections flagged SHF_RELA_LIVEPATCH, as
Documentation/livepatch/module-elf-format.rst describes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .elf import (
    SHF_ALLOC,
    SHF_INFO_LINK,
    SHF_RELA_LIVEPATCH,
    SHN_LIVEPATCH,
    SHN_UNDEF,
    SHT_RELA,
    SHT_STRTAB,
    SHT_SYMTAB,
    SHT_SYMTAB_SHNDX,
    Section,
    read_object,
)
from .errors import ElfDiffError
from .writer import write_object

log = logging.getLogger(__name__)

KLP_SYMBOL_PREFIX = ".klp.sym."


@dataclass(frozen=True)
class FinalizeResult:
    klp_sections: tuple[str, ...]
    klp_symbols: tuple[str, ...]
    undefined: tuple[str, ...]


def klp_object_of(name: str) -> str:
    """Return the object part of a .klp.sym.<object>.<name>,<sympos> symbol name."""
    rest = name[len(KLP_SYMBOL_PREFIX) :]
    objname, dot, _ = rest.partition(".")
    if not dot or "," not in rest:
        raise ElfDiffError(
            f"livepatch symbol {name} is not of the form .klp.sym.<object>.<name>,<sympos>"
        )
    return objname


def finalize_module(source: Path, destination: Path) -> FinalizeResult:
    """Write SOURCE with its livepatch symbols and relocations converted to DESTINATION."""
    obj = read_object(source)
    klp_symbols = [s for s in obj.symbols if s.name.startswith(KLP_SYMBOL_PREFIX)]
    for symbol in klp_symbols:
        if symbol.st_shndx not in (SHN_UNDEF, SHN_LIVEPATCH):
            raise ElfDiffError(f"livepatch symbol {symbol.name} is defined in {source}")
        klp_object_of(symbol.name)
        symbol.st_shndx = SHN_LIVEPATCH

    sections = [s for s in obj.sections[1:] if s.sh_type not in (SHT_SYMTAB, SHT_SYMTAB_SHNDX)]
    sections = [
        s for s in sections if not (s.sh_type == SHT_STRTAB and s.name in (".strtab", ".shstrtab"))
    ]
    added: list[Section] = []
    for rela in [s for s in sections if s.sh_type == SHT_RELA]:
        added += _split(rela)

    symbols = obj.symbols[1:]
    # A local symbol after a global one is not valid; the linker output already orders them.
    write_object(destination, sections + added, symbols, obj.e_flags)
    undefined = tuple(
        s.name for s in symbols if s.st_shndx == SHN_UNDEF and s.name and s.bind != 0
    )
    return FinalizeResult(
        tuple(s.name for s in added), tuple(s.name for s in klp_symbols), undefined
    )


def _split(rela: Section) -> list[Section]:
    """Move RELA's relocations against livepatch symbols into .klp.rela sections."""
    by_object: dict[str, list] = defaultdict(list)
    kept = []
    for relocation in rela.relocations:
        if relocation.symbol.name.startswith(KLP_SYMBOL_PREFIX):
            by_object[klp_object_of(relocation.symbol.name)].append(relocation)
        else:
            kept.append(relocation)
    if not by_object:
        return []
    rela.relocations = kept
    added = []
    for objname, relocations in sorted(by_object.items()):
        section = Section(
            name=f".klp.rela.{objname}.{rela.target.name}",
            sh_type=SHT_RELA,
            sh_flags=SHF_ALLOC | SHF_INFO_LINK | SHF_RELA_LIVEPATCH,
            sh_addralign=8,
            sh_entsize=24,
            data=b"",
            sh_size=0,
            target=rela.target,
        )
        section.relocations = relocations
        added.append(section)
        log.debug("%s: %d relocations", section.name, len(relocations))
    return added
