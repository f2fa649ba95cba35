"""Errors raised by elfdiff, each with the exit code of the command line."""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_UNRECONCILABLE = 2
EXIT_NO_CHANGE = 3


class ElfDiffError(Exception):
    """An input elfdiff cannot handle: bad ELF, missing symbol, broken parent."""

    exit_code = EXIT_ERROR


class UnsupportedChange(ElfDiffError):
    """A difference between the objects that a livepatch cannot carry."""

    exit_code = EXIT_UNRECONCILABLE


class NoChange(ElfDiffError):
    """The objects differ in nothing a livepatch needs to carry."""

    exit_code = EXIT_NO_CHANGE
