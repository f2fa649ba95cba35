"""Relocation targets and name normalisation."""

from __future__ import annotations

from elfdiff.elf import (
    R_X86_64_PC32,
    SHF_ALLOC,
    SHF_EXECINSTR,
    SHT_PROGBITS,
    Relocation,
    Section,
    Symbol,
)
from elfdiff.symbols import normalize, target_offset


def section(name: str, flags: int, data: bytes) -> Section:
    return Section(name, SHT_PROGBITS, flags, 1, 0, data, len(data))


def test_data_pc32_target_is_addend():
    """`.long target - .` in __bug_table refers to target + addend, not 4 bytes further."""
    table = section("__bug_table", SHF_ALLOC, bytes(12))
    relocation = Relocation(0, R_X86_64_PC32, Symbol("", 0, 0, 0, 3, 0, 1), 0x20)
    assert target_offset(table, relocation) == 0x20


def test_code_pc32_counts_instruction_tail():
    """cmpl $1, x(%rip) has a 1-byte immediate after the displacement field."""
    code = section(".text.f", SHF_ALLOC | SHF_EXECINSTR, bytes.fromhex("833d0000000001") + b"\xc3")
    relocation = Relocation(2, R_X86_64_PC32, Symbol("", 0, 0, 0, 3, 0, 1), -5)
    assert target_offset(code, relocation) == 0


def test_normalize_suffixes():
    assert normalize("foo.isra.3") == "foo.isra"
    assert normalize("count.12") == "count"
    assert normalize("__UNIQUE_ID_ddebug123") == "__UNIQUE_ID_ddebug"
