"""Run elfdiff on each changed object and link the results."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from elfdiff.diff import DiffRequest, diff_objects
from elfdiff.errors import ElfDiffError, NoChange
from elfdiff.special import SPECIAL_SECTIONS

from .commands import run
from .errors import BuildError

log = logging.getLogger("klpbuild.diff")

STRUCT_VARIABLES = {
    special.struct: special.variable for special in SPECIAL_SECTIONS if special.struct
}
STRUCT_VARIABLES["orc_entry"] = "ORC_STRUCT_SIZE"


@dataclass(frozen=True)
class ObjectDiff:
    obj: str
    work: Path
    parent_name: str
    parent_symtab: Path
    module_symvers: Path
    patch_module: str
    struct_sizes: Path

    @property
    def output(self) -> Path:
        return self.work / "diff" / self.obj

    @property
    def summary(self) -> Path:
        return self.output.with_name(self.output.name + ".json")


def export_struct_sizes(path: Path) -> None:
    """Put the cached struct sizes into the environment variables elfdiff reads."""
    sizes = json.loads(path.read_text())
    for struct, variable in STRUCT_VARIABLES.items():
        if struct in sizes and variable not in os.environ:
            os.environ[variable] = str(sizes[struct])


def diff_object(request: ObjectDiff) -> dict:
    """Diff one object; write its output (when it changed) and a JSON summary."""
    export_struct_sizes(request.struct_sizes)
    request.output.parent.mkdir(parents=True, exist_ok=True)
    request.output.unlink(missing_ok=True)
    diff_request = DiffRequest(
        original=request.work / "orig" / request.obj,
        patched=request.work / "patched" / request.obj,
        parent_name=request.parent_name,
        parent_symtab=request.parent_symtab,
        module_symvers=request.module_symvers,
        patch_name=request.patch_module,
        output=request.output,
    )
    try:
        try:
            result = diff_objects(diff_request)
        except NoChange:
            raise
        except ElfDiffError as error:
            # Keep the reason beside the diff outputs, and name the object in the error.
            request.summary.write_text(
                json.dumps({"object": request.obj, "error": str(error)}, indent=1) + "\n"
            )
            raise BuildError(f"{request.obj}: {error}") from None
        summary = {
            "object": request.obj,
            "parent": request.parent_name,
            "changed_functions": list(result.changed_functions),
            "new_functions": list(result.new_functions),
            "klp_symbols": list(result.klp_symbols),
        }
        log.info(
            "%s: changed %s",
            request.obj,
            ", ".join(result.changed_functions) or "nothing patchable",
        )
    except NoChange:
        summary = {
            "object": request.obj,
            "parent": request.parent_name,
            "changed_functions": [],
            "new_functions": [],
            "klp_symbols": [],
        }
        log.info("%s: no functional change", request.obj)
    request.summary.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def link_diffs(summaries: list[Path], work: Path, output: Path) -> list[str]:
    """Link every diff output into OUTPUT with ld -r; return the changed functions."""
    inputs, functions = [], []
    for summary_path in summaries:
        summary = json.loads(summary_path.read_text())
        if summary["changed_functions"] or summary["new_functions"]:
            inputs.append(str(work / "diff" / summary["object"]))
            functions += summary["changed_functions"]
    if not inputs:
        raise BuildError(
            "the patch changes no function that a livepatch can replace (no functional change)"
        )
    run(
        ["ld", "-m", "elf_x86_64", "-r", "-o", str(output), *inputs],
        what="ld -r of the diff objects",
    )
    return functions
