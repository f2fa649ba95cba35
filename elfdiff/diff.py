"""Compare an original and a patched object and write what changed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .compare import NEW, compare
from .correlate import correlate
from .elf import STB_LOCAL, STT_FILE, STT_FUNC, STT_OBJECT, ElfObject, read_object
from .errors import ElfDiffError, NoChange
from .include import Inclusion, include_changed_functions, include_new_globals, verify
from .keys import KeyRules, reject_late_special_relocations
from .lookup import ParentTable, read_parent, read_symvers
from .marks import apply_ignore_marks, include_callbacks
from .output import Parent, build_output
from .special import SPECIAL_SECTIONS, StructSizes, filter_entries, filter_orc
from .symbols import bundle_sections, convert_section_relocations, is_cold_child
from .writer import write_object

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiffRequest:
    original: Path
    patched: Path
    parent_name: str
    parent_symtab: Path
    module_symvers: Path
    patch_name: str
    output: Path


@dataclass(frozen=True)
class DiffResult:
    changed_functions: tuple[str, ...]
    new_functions: tuple[str, ...]
    klp_symbols: tuple[str, ...]


def load(path: Path) -> ElfObject:
    obj = read_object(path)
    bundle_sections(obj)
    convert_section_relocations(obj)
    return obj


def _check_headers(original: ElfObject, patched: ElfObject) -> None:
    if original.e_flags != patched.e_flags:
        raise ElfDiffError("the objects have different ELF header flags")
    original_file = next((s.name for s in original.symbols if s.type == STT_FILE), None)
    patched_file = next((s.name for s in patched.symbols if s.type == STT_FILE), None)
    if original_file != patched_file:
        raise ElfDiffError(
            f"the objects come from different sources ({original_file} and {patched_file})"
        )


def _local_names(obj: ElfObject) -> set[tuple[str, int]]:
    return {
        (s.name, s.type)
        for s in obj.symbols
        if s.bind == STB_LOCAL and s.type in (STT_FUNC, STT_OBJECT) and s.section is not None
    }


def find_block(table: ParentTable, original: ElfObject):
    file_name = next((s.name for s in original.symbols if s.type == STT_FILE), None)
    if file_name is None:
        return None
    return table.find_block(file_name, _local_names(original))


def diff_objects(request: DiffRequest, sizes: StructSizes | None = None) -> DiffResult:
    """Write the changed functions of REQUEST.patched to REQUEST.output.

    Raise NoChange when nothing differs, UnsupportedChange for a change a
    livepatch cannot carry, and ElfDiffError for bad input.
    """
    original = load(request.original)
    patched = load(request.patched)
    _check_headers(original, patched)
    correlate(original, patched)
    compare(patched, original)
    apply_ignore_marks(patched)

    inclusion = Inclusion(patched)
    changed = include_changed_functions(patched, inclusion)
    include_callbacks(patched, inclusion)
    include_new_globals(patched, inclusion)
    if not changed and not any(s.include for s in patched.symbols):
        verify(patched)
        raise NoChange(f"{request.patched}: no functional change")

    table = read_parent(request.parent_symtab, request.parent_name)
    symvers = read_symvers(request.module_symvers)
    parent = Parent(
        name=request.parent_name,
        table=table,
        block=find_block(table, original),
        exports=symvers.exports,
        namespaces=symvers.namespaces,
    )
    sizes = sizes or StructSizes(_dwarf_source(request.parent_symtab))
    specials, orc = _filter_special_sections(patched, inclusion, sizes, KeyRules(parent))
    verify(patched)

    sections, symbols = build_output(patched, parent, inclusion.sections, specials, orc, changed)
    reject_late_special_relocations(parent.name, sections)
    write_object(request.output, sections, symbols, patched.e_flags)
    return DiffResult(
        changed_functions=tuple(s.name for s in changed),
        new_functions=tuple(
            s.name
            for s in patched.symbols
            if s.type == STT_FUNC and s.status == NEW and s.include and not is_cold_child(s)
        ),
        klp_symbols=tuple(s.name for s in symbols if s.name.startswith(".klp.sym.")),
    )


def _filter_special_sections(
    patched: ElfObject, inclusion: Inclusion, sizes: StructSizes, key_rules: KeyRules
):
    specials = []
    orc = None
    for special in SPECIAL_SECTIONS:
        section = patched.section_by_name(special.name)
        if section is None or section.sh_size == 0:
            continue
        filtered = filter_entries(section, sizes.size_of(special), special, key_rules.keep)
        if not filtered.kept:
            continue
        inclusion.targets(filtered.relocations)
        specials.append(filtered)
        if special.name == ".orc_unwind_ip":
            orc_section = patched.section_by_name(".orc_unwind")
            if orc_section is None:
                raise ElfDiffError(".orc_unwind_ip has no .orc_unwind beside it")
            orc = filter_orc(orc_section, filtered.kept, sizes.orc_entry_size())
    return specials, orc


def _dwarf_source(parent: Path):
    cache: dict[str, int] | None = None

    def size_of(struct_name: str) -> int | None:
        nonlocal cache
        if cache is None:
            from .dwarf import read_struct_sizes

            # A parent given as `readelf -s` text has no DWARF to read.
            with open(parent, "rb") as stream:
                is_elf = stream.read(4) == b"\x7fELF"
            cache = read_struct_sizes(parent) if is_elf else {}
        return cache.get(struct_name)

    return size_of


__all__ = ["DiffRequest", "DiffResult", "diff_objects"]
