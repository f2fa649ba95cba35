"""x86_64 instruction boundaries, for PC-relative relocation targets.

A PC-relative relocation's addend is ``target - end of the relocated field``
minus the bytes that follow the field inside the same instruction (an
immediate operand, for example). Finding the real target therefore needs
the instruction's end, which iced-x86 decodes.
"""

from __future__ import annotations

import bisect
import weakref

from iced_x86 import Decoder

from .elf import Section


class InstructionMap:
    """Start offsets and lengths of the instructions of one code section."""

    def __init__(self, section: Section) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        decoder = Decoder(64, section.data, ip=0)
        for instruction in decoder:
            self.starts.append(instruction.ip)
            self.ends.append(instruction.ip + instruction.len)

    def instruction_end(self, offset: int) -> int | None:
        """Return the end of the instruction that contains OFFSET, if decoded."""
        position = bisect.bisect_right(self.starts, offset) - 1
        if position < 0 or self.ends[position] <= offset:
            return None
        return self.ends[position]


_maps: weakref.WeakKeyDictionary[Section, InstructionMap] = weakref.WeakKeyDictionary()


def bytes_after_field(section: Section, r_offset: int, field_size: int = 4) -> int:
    """Return how many instruction bytes follow a FIELD_SIZE relocated field."""
    if not section.is_text:
        return 0
    instruction_map = _maps.get(section)
    if instruction_map is None:
        instruction_map = _maps[section] = InstructionMap(section)
    end = instruction_map.instruction_end(r_offset)
    if end is None:
        return 0
    return max(end - (r_offset + field_size), 0)
