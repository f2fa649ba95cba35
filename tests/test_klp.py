"""Livepatch finalisation of a real compiled object."""

from __future__ import annotations

import subprocess

from elftools.elf.elffile import ELFFile

from elfdiff.elf import SHF_ALLOC, SHF_RELA_LIVEPATCH, SHN_LIVEPATCH
from elfdiff.klp import finalize_module

SOURCE = r"""
extern int hidden_counter asm("\".klp.sym.vmlinux.hidden_counter,2\"");
extern int printk(const char *fmt, ...);

int patched_function(void)
{
    printk("value %d\n", hidden_counter);
    return hidden_counter + 1;
}
"""


def compile_object(tmp_path):
    source = tmp_path / "patched.c"
    source.write_text(SOURCE)
    obj = tmp_path / "patched.o"
    subprocess.run(
        [
            "gcc",
            "-c",
            "-O2",
            "-ffunction-sections",
            "-mcmodel=kernel",
            "-fno-PIE",
            "-o",
            str(obj),
            str(source),
        ],
        check=True,
    )
    return obj


def test_klp_relocations_split(tmp_path):
    output = tmp_path / "final.o"
    result = finalize_module(compile_object(tmp_path), output)
    assert result.klp_sections == (".klp.rela.vmlinux..text.patched_function",)
    with open(output, "rb") as stream:
        elf = ELFFile(stream)
        klp = elf.get_section_by_name(".klp.rela.vmlinux..text.patched_function")
        plain = elf.get_section_by_name(".rela.text.patched_function")
        symtab = elf.get_section_by_name(".symtab")
        klp_names = {symtab.get_symbol(r["r_info_sym"]).name for r in klp.iter_relocations()}
        plain_names = {symtab.get_symbol(r["r_info_sym"]).name for r in plain.iter_relocations()}
        marked = [s for s in symtab.iter_symbols() if s.name.startswith(".klp.sym.")]
        assert klp["sh_flags"] & SHF_RELA_LIVEPATCH
        assert klp["sh_flags"] & SHF_ALLOC
        assert klp_names == {".klp.sym.vmlinux.hidden_counter,2"}
        assert "printk" in plain_names
        assert ".klp.sym.vmlinux.hidden_counter,2" not in plain_names
        assert [s["st_shndx"] for s in marked] == [SHN_LIVEPATCH]


def test_output_links(tmp_path):
    """binutils must accept the rewritten object."""
    output = tmp_path / "final.o"
    finalize_module(compile_object(tmp_path), output)
    linked = subprocess.run(
        ["ld", "-r", "-o", str(tmp_path / "linked.o"), str(output)], capture_output=True, text=True
    )
    assert linked.returncode == 0, linked.stderr
