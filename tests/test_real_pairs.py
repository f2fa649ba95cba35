"""elfdiff on original and patched objects of the real Linux 6.1 build.

Each patch in tests/patches goes through the pipeline's `patched` stage,
which leaves the original and the recompiled object in build/<module>/orig
and patched. elfdiff then diffs them against the bootable build's vmlinux
(or module) and Module.symvers. Expected symbol positions are worked out
here from `readelf -s --wide` of the parent, independently of elfdiff.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from elfdiff_helpers import function_records, read_elf, relocations_of
from test_elfdiff_records import read_records

from elfdiff.diff import DiffRequest, diff_objects
from tests.test_pipeline_kernel import PROJECT, doit

pytestmark = pytest.mark.kernel

PATCHES = Path(__file__).parent / "patches"


@dataclass(frozen=True)
class Pair:
    """What diffing the objects of one patch must give."""

    obj: str
    changed: tuple[str, ...]
    # Parent symbols that must become .klp.sym symbols, and the relocation
    # sections (other than the changed function's own) where some of them appear.
    klp: frozenset[str]
    placed: dict[str, str] = field(default_factory=dict)
    parent: str = "vmlinux"


PAIRS = {
    "proc-loadavg": Pair(
        obj="fs/proc/loadavg.o",
        changed=("loadavg_proc_show",),
        klp=frozenset({"get_avenrun", "nr_running", "nr_threads"}),
    ),
    # t_start has four namesakes in vmlinux, so its sympos is not 0.
    "proc-tty-start": Pair(
        obj="fs/proc/proc_tty.o",
        changed=("t_start",),
        klp=frozenset({"tty_mutex", "tty_drivers"}),
    ),
    # A tracepoint's jump label and static call, static locals, a .cold part.
    "kmod-empty-name": Pair(
        obj="kernel/kmod.o",
        changed=("__request_module",),
        klp=frozenset(
            {
                "kmod_concurrent_max",
                "kmod_wq",
                "modprobe_path",
                "free_modprobe_argv",
                "envp.0",
                "__tracepoint_module_request",
                "__SCT__tp_func_module_request",
                "__SCK__tp_func_module_request",
            }
        ),
        placed={
            "__tracepoint_module_request": ".rela__jump_table",
            "__SCK__tp_func_module_request": ".rela.static_call_sites",
        },
    ),
    # report_bad_irq, inlined into note_interrupt, gains lines: the functions
    # below it move, and its static local count.0 has a namesake elsewhere.
    "irq-bad-irq-count": Pair(
        obj="kernel/irq/spurious.o",
        changed=("note_interrupt",),
        klp=frozenset(
            {
                "count.0",
                "__report_bad_irq",
                "try_one_irq",
                "irq_poll_cpu",
                "irq_poll_active",
                "irqfixup",
                "poll_spurious_irq_timer",
                "irq_disable",
                "irq_to_desc",
            }
        ),
    ),
    # A loadable module: its own symbols are resolved in binfmt_misc.
    "binfmt-misc-disable-log": Pair(
        obj="fs/binfmt_misc.o",
        changed=("bm_status_write",),
        klp=frozenset({"enabled", "entries", "parse_command", "remove_binfmt_handler"}),
        parent="binfmt_misc",
    ),
}


@dataclass
class Kallsyms:
    """Functions and objects of a parent by name, with the source file of each local one."""

    entries: dict[str, list[tuple[int, str | None]]]

    def sympos(self, name: str, source: str) -> int:
        """Return the livepatch sympos of NAME as defined in SOURCE (a file name)."""
        entries = sorted(self.entries[name])
        if len(entries) == 1:
            return 0
        files = [entry[1] for entry in entries]
        if source in files:
            return files.index(source) + 1
        # A global symbol: the only one without a source file.
        return files.index(None) + 1


def read_kallsyms(parent: Path) -> Kallsyms:
    """Parse `readelf -s --wide` of PARENT the way kallsyms counts namesakes."""
    listing = subprocess.run(
        ["readelf", "-s", "--wide", str(parent)], capture_output=True, text=True, check=True
    ).stdout
    entries: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
    source = None
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) < 8 or not fields[0].endswith(":"):
            continue
        value, sym_type, bind, ndx, name = fields[1], fields[3], fields[4], fields[6], fields[7]
        if sym_type == "FILE":
            source = name
            continue
        if ndx in ("UND", "ABS") or sym_type not in ("FUNC", "OBJECT", "NOTYPE"):
            continue
        entries[name].append((int(value, 16), source if bind == "LOCAL" else None))
    return Kallsyms(entries)


@pytest.fixture(scope="module")
def settings():
    from steps.settings import load_settings

    return load_settings({})


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Run the patched stage of every patch with one doit database of our own."""
    db = tmp_path_factory.mktemp("real-pairs") / "doit.db"
    works = {}
    for stem in PAIRS:
        name = f"elfdiff-real-{stem}"
        result = doit("patched", f"patch={PATCHES / (stem + '.patch')}", f"name={name}", db=db)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        works[stem] = PROJECT / "build" / f"livepatch-{name}"
    return works


@pytest.fixture(scope="module")
def kallsyms(settings):
    parents = {"vmlinux": settings.parent_vmlinux}
    parents["binfmt_misc"] = settings.run_dir / "fs" / "binfmt_misc.ko"
    return {name: read_kallsyms(path) for name, path in parents.items()}


@pytest.fixture
def diffed(pipeline, settings, tmp_path, monkeypatch):
    """Return a function that diffs the objects of one patch and returns (pair, result, output)."""
    from steps.diffing import STRUCT_VARIABLES

    for struct, size in json.loads(settings.struct_sizes.read_text()).items():
        monkeypatch.setenv(STRUCT_VARIABLES[struct], str(size))

    def diff(stem: str):
        pair = PAIRS[stem]
        work = pipeline[stem]
        parent = settings.parent_vmlinux
        if pair.parent != "vmlinux":
            parent = settings.run_dir / "fs" / f"{pair.parent}.ko"
        output = tmp_path / f"{stem}.o"
        request = DiffRequest(
            original=work / "orig" / pair.obj,
            patched=work / "patched" / pair.obj,
            parent_name=pair.parent,
            parent_symtab=parent,
            module_symvers=settings.run_dir / "Module.symvers",
            patch_name=f"livepatch-{stem}",
            output=output,
        )
        return pair, diff_objects(request), output

    return diff


def klp_names(result, objname: str) -> dict[str, int]:
    """Map the symbol names in RESULT's .klp.sym symbols to their sympos."""
    names = {}
    prefix = f".klp.sym.{objname}."
    for symbol in result.klp_symbols:
        assert symbol.startswith(prefix), symbol
        name, _, position = symbol[len(prefix) :].rpartition(",")
        names[name] = int(position)
    return names


@pytest.mark.parametrize("stem", list(PAIRS))
def test_objects_listed(pipeline, stem):
    listing = json.loads((pipeline[stem] / "objects.json").read_text())
    assert listing["objects"] == [PAIRS[stem].obj]


@pytest.mark.parametrize("stem", list(PAIRS))
def test_changed_functions(diffed, stem):
    pair, result, _ = diffed(stem)
    assert result.changed_functions == pair.changed
    assert result.new_functions == ()


@pytest.mark.parametrize("stem", list(PAIRS))
def test_klp_symbols(diffed, stem):
    pair, result, _ = diffed(stem)
    assert set(klp_names(result, pair.parent)) == pair.klp


@pytest.mark.parametrize("stem", list(PAIRS))
def test_klp_sympos(diffed, kallsyms, stem):
    pair, result, _ = diffed(stem)
    source = Path(pair.obj).with_suffix(".c").name
    table = kallsyms[pair.parent]
    for name, position in klp_names(result, pair.parent).items():
        assert position == table.sympos(name, source), name


@pytest.mark.parametrize("stem", list(PAIRS))
def test_function_records(diffed, kallsyms, stem):
    pair, _, output = diffed(stem)
    source = Path(pair.obj).with_suffix(".c").name
    records = function_records(output)
    assert [record["name"] for record in records] == list(pair.changed)
    for record in records:
        assert record["objname"] == pair.parent
        assert record["sympos"] == kallsyms[pair.parent].sympos(record["name"], source)


def test_t_start_sympos(diffed):
    """t_start of proc_tty.c comes fifth among the five t_start functions of this build."""
    _, _, output = diffed("proc-tty-start")
    assert function_records(output)[0]["sympos"] == 5


@pytest.mark.parametrize("stem", [stem for stem in PAIRS if PAIRS[stem].placed])
def test_klp_relocation_sections(diffed, stem):
    pair, _, output = diffed(stem)
    for name, section in pair.placed.items():
        symbols = [row[0] for row in relocations_of(output, section)]
        assert any(symbol.startswith(f".klp.sym.vmlinux.{name},") for symbol in symbols), section


@pytest.mark.parametrize("stem", list(PAIRS))
def test_relocation_records(diffed, stem):
    """Every livepatch relocation has its kpatch_relocation record."""
    pair, result, output = diffed(stem)
    records = read_records(output)
    assert {record.symbol_name for record in records} == pair.klp
    assert {record.objname for record in records} == {pair.parent}


def test_cold_part_carried(diffed):
    """note_interrupt.cold jumps back into note_interrupt, so the new one goes along."""
    _, _, output = diffed("irq-bad-irq-count")
    symbols = read_elf(output).get_section_by_name(".symtab")
    assert any(symbol.name == "note_interrupt.cold" for symbol in symbols.iter_symbols())


@pytest.mark.vm
def test_loadavg_module_in_vm(tmp_path):
    """The module built from an output with kpatch records loads and patches /proc/loadavg."""
    db = tmp_path / "doit.db"
    arguments = (
        f"patch={PATCHES / 'proc-loadavg.patch'}",
        "name=elfdiff-real-proc-loadavg",
        f"out={tmp_path}",
    )
    built = doit("build", *arguments, db=db)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    module = read_elf(tmp_path / "livepatch-elfdiff-real-proc-loadavg.ko")
    assert module.get_section_by_name(".kpatch.relocations") is None
    assert module.get_section_by_name(".kpatch.symbols") is None
    assert module.get_section_by_name(".klp.rela.vmlinux..text.loadavg_proc_show") is not None
    checked = doit("vm", *arguments, db=db)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-3000:]
    assert "PASS" in checked.stdout
