"""kpatch's .kpatch.relocations and .kpatch.symbols records in elfdiff's output."""

from dataclasses import dataclass
from pathlib import Path

import pytest
from elfdiff_helpers import CaseCache, read_elf, relocations_of, run_command, symbol_names

from elfdiff.diff import diff_objects
from elfdiff.records import KPATCH_RELOCATION, KPATCH_SYMBOL

KPATCH_LDS = Path(__file__).resolve().parent.parent / "kmod" / "kpatch.lds"


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    return CaseCache(tmp_path_factory.mktemp("records")).build


@dataclass(frozen=True)
class Record:
    """One kpatch_relocation with its kpatch_symbol, pointers resolved."""

    section: str
    offset: int
    r_type: int
    addend: int
    external: int
    objname: str
    symbol_name: str
    symbol_objname: str
    sympos: int
    bind: int
    type: int
    address: int


def _string(strings: bytes, offset: int) -> str:
    return strings[offset : strings.index(b"\0", offset)].decode()


def read_records(path: Path) -> list[Record]:
    """Decode .kpatch.relocations of PATH, following its pointers through the relocations."""
    elf = read_elf(path)
    strings = elf.get_section_by_name(".kpatch.strings").data()
    symbol_data = elf.get_section_by_name(".kpatch.symbols").data()
    relocation_data = elf.get_section_by_name(".kpatch.relocations").data()
    symbol_pointers = {row[1]: row for row in relocations_of(path, ".rela.kpatch.symbols")}
    record_pointers = {row[1]: row for row in relocations_of(path, ".rela.kpatch.relocations")}

    records = []
    for index, fields in enumerate(KPATCH_RELOCATION.iter_unpack(relocation_data)):
        _, r_type, addend, external, _, _ = fields
        base = index * KPATCH_RELOCATION.size
        place = record_pointers[base]
        objname = record_pointers[base + 24]
        ksym = record_pointers[base + 32]
        assert objname[0] == ".kpatch.strings"
        assert ksym[0] == ".kpatch.symbols"
        symbol_base = ksym[3]
        address, sympos, bind, sym_type, _, _ = KPATCH_SYMBOL.unpack_from(symbol_data, symbol_base)
        records.append(
            Record(
                section=place[0],
                offset=place[3],
                r_type=r_type,
                addend=addend,
                external=external,
                objname=_string(strings, objname[3]),
                symbol_name=_string(strings, symbol_pointers[symbol_base + 24][3]),
                symbol_objname=_string(strings, symbol_pointers[symbol_base + 32][3]),
                sympos=sympos,
                bind=bind,
                type=sym_type,
                address=address,
            )
        )
    return records


def klp_relocations(path: Path) -> list[tuple[str, str, int, str, int]]:
    """Return (section, symbol, r_offset, r_type, r_addend) of each relocation against .klp.sym."""
    rows = []
    for section in read_elf(path).iter_sections():
        if section.name.startswith(".rela") and not section.name.startswith(".rela.kpatch"):
            for name, offset, r_type, addend in relocations_of(path, section.name):
                if name.startswith(".klp.sym."):
                    rows.append((section.name[len(".rela") :], name, offset, r_type, addend))
    return rows


def parent_value(parent: Path, name: str, position: int = 1) -> int:
    """Return the address of the POSITION-th symbol NAME of PARENT, in address order."""
    symbols = read_elf(parent).get_section_by_name(".symtab").iter_symbols()
    values = sorted(s["st_value"] for s in symbols if s.name == name)
    return values[position - 1]


@pytest.fixture
def changed(builds, tmp_path):
    build = builds("changed", tmp_path / "out.o")
    diff_objects(build.request())
    return build


def test_one_record_per_klp_relocation(changed):
    records = read_records(changed.output)
    expected = [(row[0], row[2]) for row in klp_relocations(changed.output)]
    assert sorted((r.section, r.offset) for r in records) == sorted(expected)


def test_record_type_and_addend(changed):
    by_place = {(r.section, r.offset): r for r in read_records(changed.output)}
    for section, _, offset, r_type, addend in klp_relocations(changed.output):
        record = by_place[(section, offset)]
        assert record.addend == addend
        assert r_type in ("R_X86_64_PLT32", "R_X86_64_PC32")
        assert record.r_type in (2, 4)


def test_record_symbol_names(changed):
    names = {(r.symbol_name, r.sympos) for r in read_records(changed.output)}
    assert names == {("count_items", 2), ("scale_unique", 0), ("nr_hidden", 0)}


def test_record_objnames(changed):
    for record in read_records(changed.output):
        assert record.objname == "vmlinux"
        assert record.symbol_objname == "vmlinux"
        assert record.external == 0


def test_record_addresses(changed):
    """For vmlinux the symbol record carries the address; count_items is the second namesake."""
    by_name = {r.symbol_name: r for r in read_records(changed.output)}
    assert by_name["count_items"].address == parent_value(changed.parent, "count_items", 2)
    assert by_name["nr_hidden"].address == parent_value(changed.parent, "nr_hidden")


def test_record_bind_and_type(changed):
    by_name = {r.symbol_name: r for r in read_records(changed.output)}
    assert (by_name["count_items"].bind, by_name["count_items"].type) == (0, 2)
    assert (by_name["nr_hidden"].bind, by_name["nr_hidden"].type) == (1, 0)


def test_records_dest_section(changed):
    assert {r.section for r in read_records(changed.output)} == {".text.demo_show"}


def test_module_parent_address_zero(builds, tmp_path):
    """A module's symbol addresses are known only at load time, so src stays 0."""
    build = builds("changed", tmp_path / "out.o")
    diff_objects(build.request(parent_name="demo_mod"))
    records = read_records(build.output)
    assert {r.address for r in records} == {0}
    assert {r.objname for r in records} == {"demo_mod"}


def test_no_klp_relocations_no_records(builds, tmp_path):
    """new_function.c's patched code refers only to exported or new symbols."""
    build = builds("new_function", tmp_path / "out.o")
    diff_objects(build.request())
    elf = read_elf(build.output)
    assert elf.get_section_by_name(".kpatch.relocations") is None
    assert elf.get_section_by_name(".kpatch.symbols") is None


def test_module_link_discards_records(changed, tmp_path):
    """The template's linker script drops the records, as ld -r links the module object."""
    linked = tmp_path / "linked.o"
    run_command(["ld", "-r", "-T", str(KPATCH_LDS), "-o", str(linked), str(changed.output)])
    elf = read_elf(linked)
    assert elf.get_section_by_name(".kpatch.relocations") is None
    assert elf.get_section_by_name(".kpatch.symbols") is None
    assert elf.get_section_by_name(".kpatch.funcs") is not None
    assert ".klp.sym.vmlinux.count_items,2" in symbol_names(linked)
