"""The livepatch build as a doit task graph; `doit list` shows the stages.

    doit build patch=fix.patch [name=] [src=] [config=] [vmlinux=] [out=] [jobs=]

Only wiring lives here: each action calls a stage function from steps/.
"""

from __future__ import annotations

import sys

from doit import create_after, get_var
from doit.tools import config_changed

from steps import stages
from steps.errors import BuildError
from steps.reporting import Reporter, setup_logging
from steps.settings import PARAMETERS, load_settings

DOIT_CONFIG = {
    "default_tasks": ["build"],
    "reporter": Reporter,
    "verbosity": 2,
}

setup_logging(verbose=bool(get_var("verbose", "")))
try:
    S = load_settings({key: get_var(key, "") for key in PARAMETERS})
except BuildError as error:
    sys.stderr.write(f"error: {error}\n")
    sys.exit(1)


def task_source():
    """Unpack the kernel source into the cache once, or check src=."""
    return {
        "actions": [(stages.source, [S])],
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
    if S.vmlinux is not None:
        return {"actions": None, "doc": "skipped: vmlinux= names the running kernel"}
    return {
        "actions": [(stages.kernel, [S])],
        "file_dep": [S.run_dir / ".config"],
        "targets": [S.run_dir / "vmlinux", S.run_dir / "arch/x86/boot/bzImage", S.run_dir / "Module.symvers"],
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
