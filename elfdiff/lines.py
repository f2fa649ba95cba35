"""Changes that only move a __LINE__ constant.

Adding lines above a function renumbers every line below, so a function
that passes __LINE__ to a helper (`__might_sleep(__FILE__, __LINE__)`,
`pr_err("... %d", __LINE__)`) compiles to the same code with a different
immediate, as in `mov $0x67,%esi` becoming `mov $0x7d,%esi`. Such a
function has not changed and must not be patched.

A differing immediate counts as a moved line number only when the DWARF
line tables of both objects back it. The instruction's own line must have
moved by exactly the difference of the two immediates, and each immediate
must be a line of that function. Without line tables (objects built
without -g) every such difference counts as a change.

NOTE: a constant that the patch really changes still passes this test when
both values lie within the function's lines and differ by exactly the line
shift at that instruction. Such a change is missed.

WARN() and BUG() sites keep their line in __bug_table, not in code, and
special sections are filtered per entry, so they need nothing here.
"""

from __future__ import annotations

import bisect
import io
import logging
import struct
import weakref
from dataclasses import dataclass, field

from elftools.common.exceptions import DWARFError, ELFError
from elftools.elf.elffile import ELFFile
from iced_x86 import Code, Decoder

from .elf import R_X86_64_32, R_X86_64_64, ElfObject, Section

log = logging.getLogger(__name__)

# Instructions that load a constant whole, the way gcc passes a line number:
# into an argument register, or into a stack slot for the seventh argument on.
IMMEDIATE_MOVES = frozenset((Code.MOV_R32_IMM32, Code.MOV_RM32_IMM32))


@dataclass
class SectionLines:
    """Line table rows of one code section: start offsets with file and line."""

    offsets: list[int] = field(default_factory=list)
    rows: list[tuple[str, int]] = field(default_factory=list)

    def row_at(self, offset: int) -> tuple[str, int] | None:
        """Return the (file, line) of the last row at or before OFFSET."""
        position = bisect.bisect_right(self.offsets, offset) - 1
        if position < 0:
            return None
        return self.rows[position]

    def lines_of(self, file_name: str) -> tuple[int, int] | None:
        """Return the lowest and highest line of FILE_NAME among the rows."""
        lines = [line for name, line in self.rows if name == file_name and line > 0]
        return (min(lines), max(lines)) if lines else None


_tables: weakref.WeakKeyDictionary[ElfObject, dict[int, SectionLines]] = (
    weakref.WeakKeyDictionary()
)


def line_tables(obj: ElfObject) -> dict[int, SectionLines]:
    """Return the line table rows of OBJ by code section index; empty without DWARF."""
    tables = _tables.get(obj)
    if tables is None:
        tables = _tables[obj] = _read_line_tables(obj)
    return tables


def _relocated_debug_line(obj: ElfObject) -> bytes | None:
    """Return .debug_line with its relocations applied, or None when it is missing.

    Each code address becomes (section index << 32) + offset, because every
    section of a relocatable object starts at address 0. String offsets into
    .debug_line_str become their addend, as the linker would write them.
    """
    section = obj.section_by_name(".debug_line")
    if section is None:
        return None
    data = bytearray(section.data)
    if section.rela is None:
        return bytes(data)
    for relocation in section.rela.relocations:
        symbol = relocation.symbol
        value = symbol.st_value + relocation.r_addend
        if relocation.r_type == R_X86_64_64:
            if symbol.section is not None and symbol.section.is_text:
                value += symbol.section.index << 32
            struct.pack_into("<Q", data, relocation.r_offset, value & (2**64 - 1))
        elif relocation.r_type == R_X86_64_32:
            struct.pack_into("<I", data, relocation.r_offset, value & 0xFFFFFFFF)
    return bytes(data)


def _read_line_tables(obj: ElfObject) -> dict[int, SectionLines]:
    relocated = _relocated_debug_line(obj)
    if relocated is None:
        return {}
    try:
        with open(obj.path, "rb") as stream:
            elf = ELFFile(io.BytesIO(stream.read()))
        # Relocating every debug section costs seconds on a large object, and
        # only .debug_line is needed, so it alone gets relocated, above.
        dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
        dwarf.debug_line_sec = dwarf.debug_line_sec._replace(stream=io.BytesIO(relocated))
        tables: dict[int, SectionLines] = {}
        for unit in dwarf.iter_CUs():
            program = dwarf.line_program_for_CU(unit)
            if program is not None:
                _collect_rows(program, tables)
        return tables
    except (ELFError, DWARFError, OSError, struct.error, IndexError, ValueError) as error:
        log.debug("%s: no usable line table: %s", obj.path, error)
        return {}


def _collect_rows(program, tables: dict[int, SectionLines]) -> None:
    version = program.header["version"]
    files = program.header["file_entry"]
    # DWARF 5 numbers files from 0, earlier versions from 1.
    first_file = 0 if version >= 5 else 1
    for entry in program.get_entries():
        state = entry.state
        if state is None or state.end_sequence:
            continue
        index = state.file - first_file
        name = files[index].name.decode(errors="replace") if 0 <= index < len(files) else ""
        table = tables.setdefault(state.address >> 32, SectionLines())
        table.offsets.append(state.address & 0xFFFFFFFF)
        table.rows.append((name, state.line))
    for table in tables.values():
        order = sorted(range(len(table.offsets)), key=table.offsets.__getitem__)
        table.offsets = [table.offsets[i] for i in order]
        table.rows = [table.rows[i] for i in order]


@dataclass(frozen=True)
class ImmediateChange:
    offset: int
    old: int
    new: int


def _immediate_changes(original: Section, patched: Section) -> list[ImmediateChange] | None:
    """Return the immediates that differ, or None when anything else differs."""
    old_decoder = Decoder(64, original.data, ip=0)
    new_decoder = Decoder(64, patched.data, ip=0)
    changes = []
    for old in old_decoder:
        old_offsets = old_decoder.get_constant_offsets(old)
        if not new_decoder.can_decode:
            return None
        new = new_decoder.decode()
        new_offsets = new_decoder.get_constant_offsets(new)
        start, end = old.ip, old.ip + old.len
        if new.ip != start or new.len != old.len:
            return None
        if original.data[start:end] == patched.data[start:end]:
            continue
        if old.code != new.code or old.code not in IMMEDIATE_MOVES:
            return None
        at = old_offsets.immediate_offset
        if new_offsets.immediate_offset != at or old_offsets.immediate_size != 4:
            return None
        old_bytes = original.data[start:end]
        new_bytes = patched.data[start:end]
        if old_bytes[:at] != new_bytes[:at] or old_bytes[at + 4 :] != new_bytes[at + 4 :]:
            return None
        changes.append(ImmediateChange(start, old.immediate32, new.immediate32))
    if new_decoder.can_decode:
        return None
    return changes


def _is_line_shift(
    change: ImmediateChange, old_lines: SectionLines, new_lines: SectionLines
) -> bool:
    old_row = old_lines.row_at(change.offset)
    new_row = new_lines.row_at(change.offset)
    if old_row is None or new_row is None or old_row[0] != new_row[0]:
        return False
    if change.new - change.old != new_row[1] - old_row[1]:
        return False
    old_range = old_lines.lines_of(old_row[0])
    new_range = new_lines.lines_of(new_row[0])
    if old_range is None or new_range is None:
        return False
    return (
        old_range[0] <= change.old <= old_range[1] and new_range[0] <= change.new <= new_range[1]
    )


def only_line_numbers_differ(
    original_object: ElfObject, original: Section, patched_object: ElfObject, patched: Section
) -> bool:
    """Tell whether two code sections differ only in __LINE__ immediates.

    The caller has checked that the sizes and the relocations are the same.
    """
    changes = _immediate_changes(original, patched)
    if not changes:
        return False
    old_lines = line_tables(original_object).get(original.index)
    new_lines = line_tables(patched_object).get(patched.index)
    if old_lines is None or new_lines is None:
        log.debug("%s: immediates differ and there is no line table to check them", patched.name)
        return False
    for change in changes:
        if not _is_line_shift(change, old_lines, new_lines):
            log.debug(
                "%s+%#x: immediate %d became %d, not a moved line number",
                patched.name,
                change.offset,
                change.old,
                change.new,
            )
            return False
    log.debug("%s: only __LINE__ constants differ", patched.name)
    return True
