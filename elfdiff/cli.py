"""Command line compatible with kpatch's create-diff-object.

Exit codes: 0 changes written, 1 error, 2 unsupported change, 3 no change.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .diff import DiffRequest, diff_objects
from .errors import EXIT_ERROR, EXIT_OK, ElfDiffError

log = logging.getLogger("elfdiff")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="create-diff-object",
        description="Write the functions that differ between two objects as a livepatch object.",
        epilog="exit codes: 0 changes written, 1 error, 2 unsupported change, 3 no change",
    )
    parser.add_argument("original", type=Path, help="object of the original build")
    parser.add_argument("patched", type=Path, help="object of the patched build")
    parser.add_argument("parent_name", help="vmlinux, or the module name with - turned into _")
    parser.add_argument(
        "parent_symtab", type=Path, help="the parent ELF, or `readelf -s --wide` output of it"
    )
    parser.add_argument("module_symvers", type=Path, help="Module.symvers of the kernel build")
    parser.add_argument("patch_name", help="name of the patch module")
    parser.add_argument("output", type=Path, help="object to write")
    parser.add_argument("-d", "--debug", action="store_true", help="log every decision")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(
        level=logging.DEBUG if arguments.debug else logging.WARNING,
        format="%(name)s: %(message)s",
    )
    request = DiffRequest(
        original=arguments.original,
        patched=arguments.patched,
        parent_name=arguments.parent_name,
        parent_symtab=arguments.parent_symtab,
        module_symvers=arguments.module_symvers,
        patch_name=arguments.patch_name,
        output=arguments.output,
    )
    if not arguments.output.resolve().parent.is_dir():
        print(f"error: folder {arguments.output.parent} of the output not found", file=sys.stderr)
        return EXIT_ERROR
    try:
        result = diff_objects(request)
    except ElfDiffError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:
        print(f"error: {error.filename}: {error.strerror}", file=sys.stderr)
        return EXIT_ERROR
    for name in result.changed_functions:
        print(f"changed function: {name}")
    for name in result.new_functions:
        print(f"new function: {name}")
    return EXIT_OK
