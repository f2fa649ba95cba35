"""Struct sizes from the parent's DWARF, for special-section entry sizes."""

from __future__ import annotations

import logging
from pathlib import Path

from elftools.common.exceptions import DWARFError, ELFError
from elftools.elf.elffile import ELFFile

log = logging.getLogger(__name__)

# Each struct with the source files whose compilation unit defines it. Reading
# only those units takes a second where a walk over all of vmlinux takes ~20.
SPECIAL_STRUCTS = {
    "bug_entry": ("lib/bug.c",),
    "exception_table_entry": ("arch/x86/mm/extable.c",),
    "alt_instr": ("arch/x86/kernel/alternative.c",),
    "jump_entry": ("kernel/jump_label.c",),
    "orc_entry": ("arch/x86/kernel/unwind_orc.c",),
    "paravirt_patch_site": ("arch/x86/kernel/alternative.c", "arch/x86/kernel/paravirt.c"),
    "static_call_site": ("kernel/static_call_inline.c",),
    "pi_entry": ("kernel/printk/index.c",),
}


def read_struct_sizes(
    path: Path, structs: dict[str, tuple[str, ...]] = SPECIAL_STRUCTS
) -> dict[str, int]:
    """Return DW_AT_byte_size of each struct, read from the units that define it.

    A struct whose units are not in PATH (a kernel without that feature) is
    left out of the result.
    """
    sources = {source for files in structs.values() for source in files}
    sizes: dict[str, int] = {}
    try:
        with open(path, "rb") as stream:
            elf = ELFFile(stream)
            if not elf.has_dwarf_info():
                return sizes
            dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
            for unit in dwarf.iter_CUs():
                top = unit.get_top_DIE()
                name = top.attributes.get("DW_AT_name")
                unit_name = name.value.decode(errors="replace") if name else ""
                if not unit_name.endswith(tuple(sources)):
                    continue
                wanted = {
                    s
                    for s, files in structs.items()
                    if unit_name.endswith(files) and s not in sizes
                }
                _collect(top, wanted, sizes)
                if len(sizes) == len(structs):
                    break
    except (ELFError, DWARFError, OSError) as error:
        log.warning("cannot read DWARF of %s: %s", path, error)
    return sizes


def _collect(top, wanted: set[str], sizes: dict[str, int]) -> None:
    for die in top.iter_children():
        if die.tag != "DW_TAG_structure_type":
            continue
        name = die.attributes.get("DW_AT_name")
        size = die.attributes.get("DW_AT_byte_size")
        if name is None or size is None:
            continue
        text = name.value.decode(errors="replace")
        if text in wanted:
            sizes[text] = size.value
