"""Project error classes and the exit codes that ``kpatch`` returns for them."""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_TRANSITION_TIMEOUT = 3
EXIT_INTERRUPTED = 130


class KpatchError(Exception):
    """An expected failure that the command line reports as one ``error:`` line."""

    exit_code = EXIT_ERROR


class ModuleBusyError(KpatchError):
    """insmod failed with EBUSY, which the kernel returns while another transition runs."""


class TransitionTimeoutError(KpatchError):
    """A patch transition did not finish within the timeout."""

    exit_code = EXIT_TRANSITION_TIMEOUT
