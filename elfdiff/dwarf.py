"""Struct sizes from the parent's DWARF, for special-section entry sizes."""

from __future__ import annotations

import logging
from pathlib import Path

from elftools.common.exceptions import DWARFError, ELFError
from elftools.elf.elffile import ELFFile

log = logging.getLogger(__name__)

SPECIAL_STRUCTS = (
    "bug_entry",
    "exception_table_entry",
    "alt_instr",
    "jump_entry",
    "orc_entry",
    "paravirt_patch_site",
    "static_call_site",
    "pi_entry",
)


def read_struct_sizes(path: Path, names: tuple[str, ...] = SPECIAL_STRUCTS) -> dict[str, int]:
    """Return DW_AT_byte_size of each named structure defined in PATH's DWARF.

    Only the top-level DIEs of each compilation unit are read, and the walk
    stops once every name is found, because full vmlinux DWARF is large.
    """
    wanted = set(names)
    sizes: dict[str, int] = {}
    try:
        with open(path, "rb") as stream:
            elf = ELFFile(stream)
            if not elf.has_dwarf_info():
                return sizes
            dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
            for unit in dwarf.iter_CUs():
                for die in unit.get_top_DIE().iter_children():
                    if die.tag != "DW_TAG_structure_type":
                        continue
                    name = die.attributes.get("DW_AT_name")
                    size = die.attributes.get("DW_AT_byte_size")
                    if name is None or size is None:
                        continue
                    text = name.value.decode(errors="replace")
                    if text in wanted and text not in sizes:
                        sizes[text] = size.value
                if len(sizes) == len(wanted):
                    break
    except (ELFError, DWARFError, OSError) as error:
        log.warning("cannot read DWARF of %s: %s", path, error)
    return sizes
