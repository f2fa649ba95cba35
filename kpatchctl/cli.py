"""Command line of ``kpatch``: manage livepatch modules on a running kernel."""

import argparse
import logging
import os
import sys
from pathlib import Path

from kpatchctl.context import Context, Host
from kpatchctl.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, KpatchError
from kpatchctl.install import install_command, uninstall_command
from kpatchctl.load import load_command, signal_command
from kpatchctl.paths import SystemPaths
from kpatchctl.show import info_command, list_command, version_command
from kpatchctl.transition import Timeouts
from kpatchctl.unload import unload_command

log = logging.getLogger("kpatchctl")

EPILOG = """\
exit codes:
  0    success
  1    error: not root, module file missing or not a livepatch module, wrong kernel
       release, kernel without livepatch support, insmod/rmmod failed
  2    invalid command line
  3    a patch transition did not finish within --timeout
  130  interrupted

environment:
  KPATCH_ROOT  default for --root
"""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}")
    return value


def _add_module_or_all(parser: argparse.ArgumentParser, verb: str) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("module", nargs="?", help=f"patch module to {verb}: file path or name")
    group.add_argument("--all", action="store_true", help=f"{verb} all patch modules")
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=Timeouts.transition,
        metavar="SECONDS",
        help="maximum wait for the patch transition and then for the module refcount "
        "(default: %(default)g)",
    )
    parser.add_argument(
        "--signal-after",
        type=_seconds,
        default=Timeouts.signal_after,
        metavar="SECONDS",
        help="signal the tasks that block the transition after this wait (default: %(default)g)",
    )


def _add_release(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-k",
        "--kernel-version",
        dest="release",
        metavar="RELEASE",
        help="kernel release, as uname -r prints it (default: the running kernel)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpatch",
        description="Load, unload, list and install livepatch modules.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(os.environ.get("KPATCH_ROOT", "/")),
        help="folder that prefixes every system path, such as /sys and /var/lib/kpatch "
        "(default: $KPATCH_ROOT or /)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="also log commands run")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    load = commands.add_parser("load", help="load a patch module, or all installed ones")
    _add_module_or_all(load, "load")
    unload = commands.add_parser("unload", help="disable a patch and remove its module")
    _add_module_or_all(unload, "unload")
    commands.add_parser("list", help="list loaded and installed patch modules")
    info = commands.add_parser("info", help="show the modinfo fields of a patch module")
    info.add_argument("module", help="file path, installed name or loaded module name")
    _add_release(info)
    install = commands.add_parser("install", help="install a patch module to load at boot")
    _add_release(install)
    install.add_argument("module", help="patch module file (.ko)")
    uninstall = commands.add_parser("uninstall", help="remove an installed patch module")
    _add_release(uninstall)
    uninstall.add_argument("module", help="installed file name or module name")
    commands.add_parser("signal", help="signal the tasks that block a patch transition")
    commands.add_parser("version", help="print the kpatch version")
    return parser


def run_command(context: Context, args: argparse.Namespace) -> None:
    timeouts = Timeouts(
        transition=getattr(args, "timeout", Timeouts.transition),
        signal_after=getattr(args, "signal_after", Timeouts.signal_after),
    )
    handlers = {
        "load": lambda: load_command(context, args.module, timeouts),
        "unload": lambda: unload_command(context, args.module, timeouts),
        "list": lambda: list_command(context),
        "info": lambda: info_command(context, args.module, args.release),
        "install": lambda: install_command(context, args.module, args.release),
        "uninstall": lambda: uninstall_command(context, args.module, args.release),
        "signal": lambda: signal_command(context),
        "version": version_command,
    }
    handlers[args.command]()


class _LevelFormatter(logging.Formatter):
    """Print info and debug lines as they are, and prefix warnings with ``warning:``."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        return message


def _start_logging(verbose: bool) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelFormatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    return handler


def main(argv: list[str] | None = None, host: Host | None = None) -> int:
    """Run kpatch with ``argv`` and return the exit code.

    A ``host`` argument replaces the real module loader, clock and euid, as tests do.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_request:
        return int(exit_request.code or 0)
    handler = _start_logging(args.verbose)
    try:
        paths = SystemPaths(args.root)
        run_command(Context(paths, host or Host.real(paths)), args)
        return EXIT_OK
    except KpatchError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:
        log.debug("system call failed", exc_info=True)
        print(f"error: {error}; check that the path exists and is accessible", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted; run 'kpatch list' to check the patch states", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        log.removeHandler(handler)
