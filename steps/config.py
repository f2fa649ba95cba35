"""Kernel config: the user's file, or tinyconfig plus the shipped fragment."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from .commands import run
from .errors import BuildError

log = logging.getLogger("klpbuild.config")

DEFAULT_FRAGMENT = Path(__file__).resolve().parent.parent / "configs" / "livepatch-tiny.config"

# Options a livepatch build cannot do without, each with the reason shown to the user.
REQUIRED = {
    "CONFIG_MODULES": "patch modules are kernel modules",
    "CONFIG_MODULE_UNLOAD": "a patch must be removable",
    "CONFIG_SYSFS": "the livepatch core reports through /sys/kernel/livepatch",
    "CONFIG_KALLSYMS_ALL": "livepatch finds old functions and data through kallsyms",
    "CONFIG_LIVEPATCH": "it is the livepatch core",
    "CONFIG_DEBUG_INFO": "special-section entry sizes come from DWARF",
    "CONFIG_BUG": "without it there is no struct bug_entry to size __bug_table entries",
    "CONFIG_UNWINDER_ORC": "without reliable stack traces the patch transition never finishes",
}
ANY_OF = {
    (
        "CONFIG_DYNAMIC_FTRACE_WITH_REGS",
        "CONFIG_DYNAMIC_FTRACE_WITH_ARGS",
    ): "livepatch redirects calls through ftrace",
}
REFUSED = {
    "CONFIG_DEBUG_INFO_SPLIT": "debug info must stay in the objects",
    "CONFIG_GCC_PLUGIN_LATENT_ENTROPY": "it makes every build of a function differ",
    "CONFIG_GCC_PLUGIN_RANDSTRUCT": "it makes structure layouts differ between builds",
    "CONFIG_X86_KERNEL_IBT": "IBT sealing is not supported",
    "CONFIG_LTO_CLANG": "LTO objects cannot be compared per file",
}


@dataclass(frozen=True)
class ConfigRequest:
    tree: Path
    scratch: Path
    fragment: Path = DEFAULT_FRAGMENT
    config: Path | None = None


def parse_config(text: str) -> dict[str, str]:
    options = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            options[key] = value
    return options


def check_config(text: str, origin: str) -> None:
    """Raise BuildError for the first required option missing or refused option set."""
    options = parse_config(text)
    for option, reason in REQUIRED.items():
        if options.get(option) != "y":
            raise BuildError(f"{origin} lacks {option}=y ({reason}); enable it and rerun")
    for choices, reason in ANY_OF.items():
        if not any(options.get(option) == "y" for option in choices):
            raise BuildError(
                f"{origin} lacks {' or '.join(choices)}=y ({reason}); enable it and rerun"
            )
    for option, reason in REFUSED.items():
        if options.get(option) == "y":
            raise BuildError(
                f"{origin} sets {option}=y, which is not supported ({reason}); disable it"
            )


def make_config(request: ConfigRequest) -> str:
    """Generate the .config in REQUEST.scratch and return its text."""
    scratch = request.scratch
    scratch.mkdir(parents=True, exist_ok=True)
    log_file = scratch / "config.log"
    log_file.unlink(missing_ok=True)
    make = ["make", "-C", str(request.tree), f"O={scratch}"]
    if request.config is not None:
        if not request.config.is_file():
            raise BuildError(f"config file {request.config} not found")
        shutil.copyfile(request.config, scratch / ".config")
        run(make + ["olddefconfig"], log_file=log_file, what="make olddefconfig")
        origin = f"config {request.config}"
    else:
        if not request.fragment.is_file():
            raise BuildError(f"config fragment {request.fragment} not found")
        run(make + ["tinyconfig"], log_file=log_file, what="make tinyconfig")
        merge = request.tree / "scripts" / "kconfig" / "merge_config.sh"
        run(
            [
                str(merge),
                "-m",
                "-O",
                str(scratch),
                str(scratch / ".config"),
                str(request.fragment),
            ],
            cwd=request.tree,
            log_file=log_file,
            what="merge_config.sh",
        )
        run(make + ["olddefconfig"], log_file=log_file, what="make olddefconfig")
        origin = f"the config made from {request.fragment.name}"
    text = (scratch / ".config").read_text()
    check_config(text, origin)
    _check_fragment_applied(request, text)
    return text


def _check_fragment_applied(request: ConfigRequest, text: str) -> None:
    if request.config is not None:
        return
    wanted = parse_config(request.fragment.read_text())
    got = parse_config(text)
    for option, value in wanted.items():
        if got.get(option) != value:
            log.warning(
                "%s=%s from %s did not survive olddefconfig (got %s)",
                option,
                value,
                request.fragment.name,
                got.get(option, "unset"),
            )
