"""The livepatch build as a doit task graph; `doit list` shows the stages.

    doit build patch=fix.patch [name=] [target=] [replace=0] [signkey=]
               [src=] [config=] [vmlinux=] [out=] [jobs=]

Only wiring lives here: each action calls a stage function from steps/.
"""

from __future__ import annotations

import sys

from doit import create_after, doit_cmd, get_var
from doit.tools import config_changed

from steps import stages
from steps.errors import BuildError
from steps.reporting import Reporter, setup_logging, stop_on_interrupt
from steps.settings import PARAMETERS, check_variables, load_settings

PATCH_TASKS = {"build", "patched", "diff", "link", "module", "finalize", "vm"}
ALL_TASKS = PATCH_TASKS | {"source", "config", "kernel", "kernel_cmp", "struct_sizes"}
# doit's own commands other than run take task names without running them.
DOIT_COMMANDS = {
    "run", "list", "info", "help", "forget", "clean", "ignore", "dumpdb", "strace",
    "tabcompletion", "auto", "reset-dep",
}  # fmt: skip

DOIT_CONFIG = {
    "default_tasks": ["build"],
    "reporter": Reporter,
    "verbosity": 2,
}

setup_logging(verbose=get_var("verbose", "") not in ("", "0"))
try:
    check_variables(doit_cmd._CMDLINE_VARS or {})
    S = load_settings({key: get_var(key, "") for key in PARAMETERS})
except BuildError as error:
    sys.stderr.write(f"error: {error}\n")
    sys.exit(1)
stop_on_interrupt()

# Tasks that need patch=: fail before the kernel tasks run, not after them.
# Words that are not task names (option values, variables) are ignored.
_words = [argument for argument in sys.argv[1:] if not argument.startswith("-")]
_running = not _words or _words[0] not in DOIT_COMMANDS or _words[0] == "run"
_tasks = {word.split(":")[0] for word in _words} & ALL_TASKS
if _running and not S.patches and (_tasks & PATCH_TASKS or not _tasks):
    sys.stderr.write("error: no patch given; pass patch=FILE (several as patch=a.patch,b.patch)\n")
    sys.exit(1)

# Independent tasks (the diff of each changed object) run in parallel processes.
# Stages that use the shared tree (config, kernel builds, patched build, module
# build) take turns through the cache lock.
DOIT_CONFIG["num_process"] = S.jobs
DOIT_CONFIG["par_type"] = "process"


def task_source():
    """Unpack the kernel source into the cache once, or check src=."""
    return {
        "actions": [(stages.source, [S])],
        "targets": S.unpacked_makefile,
        "uptodate": [config_changed(S.source_id)],
        "verbosity": 2,
    }


def task_config():
    """Generate the kernel config: tinyconfig plus the fragment, or config=."""
    return {
        "actions": [(stages.config, [S])],
        "file_dep": [S.config_input],
        "task_dep": ["source"],
        "targets": [S.run_dir / ".config", S.cmp_dir / ".config"],
        "verbosity": 2,
    }


def task_kernel():
    """Build the kernel that boots: bzImage, vmlinux and Module.symvers."""
    return {
        "actions": [(stages.kernel, [S])],
        "file_dep": [S.run_dir / ".config"],
        "targets": [
            S.run_dir / "vmlinux",
            S.run_dir / "arch/x86/boot/bzImage",
            S.run_dir / "Module.symvers",
        ],
        "verbosity": 2,
    }


def task_kernel_cmp():
    """Build the comparison kernel with -ffunction-sections -fdata-sections."""
    return {
        "actions": [(stages.comparison_kernel, [S])],
        "file_dep": [S.cmp_dir / ".config"],
        "targets": [S.cmp_dir / "vmlinux", S.cmp_dir / "Module.symvers"],
        "verbosity": 2,
    }


def task_struct_sizes():
    """Read special-section entry sizes from vmlinux DWARF, once per kernel."""
    return {
        "actions": [(stages.struct_sizes, [S])],
        "file_dep": [S.parent_vmlinux],
        "targets": [S.struct_sizes],
        "verbosity": 2,
    }


def task_patched():
    """Apply the patch, recompile the objects it affects, restore the tree."""
    return {
        "actions": [(stages.patched, [S])],
        "file_dep": [*S.patches, S.cmp_dir / "vmlinux"],
        "targets": [S.work / "objects.json"],
        "uptodate": [
            config_changed({"patches": [str(p) for p in S.patches], "targets": S.targets})
        ],
        "verbosity": 2,
    }


@create_after(executed="patched", target_regex=r".*\.o\.json$")
def task_diff():
    """Compare each changed object with its original (one task per object)."""
    for request in stages.object_diffs(S):
        yield {
            "name": request.obj,
            "actions": [(stages.diff, [request])],
            "file_dep": [
                request.work / "orig" / request.obj,
                request.work / "patched" / request.obj,
                request.parent_symtab,
                request.module_symvers,
                S.struct_sizes,
            ],
            "targets": [request.summary],
            "verbosity": 2,
        }


@create_after(executed="diff", target_regex=r".*/patch\.o$")
def task_link():
    """Link the diff objects into one object with ld -r."""
    return {
        "actions": [(stages.link, [S])],
        "file_dep": [request.summary for request in stages.object_diffs(S)],
        "task_dep": ["diff"],
        "targets": [S.work / "patch.o"],
        "verbosity": 2,
    }


def task_module():
    """Build the patch module from the kmod template and the linked object."""
    return {
        "actions": [(stages.module, [S])],
        "file_dep": [S.work / "patch.o", *stages.template_files()],
        "task_dep": ["link"],
        "targets": [S.work / "module" / f"{S.module}.ko"],
        "uptodate": [config_changed({"name": S.module, "replace": S.replace})],
        "verbosity": 2,
    }


def task_finalize():
    """Turn livepatch symbols into SHN_LIVEPATCH symbols and .klp.rela sections; sign."""
    return {
        "actions": [(stages.finalize, [S])],
        "file_dep": [S.work / "module" / f"{S.module}.ko", *([S.signkey] if S.signkey else [])],
        "targets": [S.module_path],
        "verbosity": 2,
    }


def task_build():
    """Build livepatch-<name>.ko from patch= (the main job)."""
    return {"actions": None, "task_dep": ["finalize"]}


def task_vm():
    """Boot the built kernel in qemu, load the module, check it, print PASS or FAIL."""
    return {
        "actions": [(stages.vm, [S])],
        "file_dep": [S.module_path],
        "uptodate": [False],
        "verbosity": 2,
    }
