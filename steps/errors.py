"""The error class every stage raises for a failure the user can act on."""


class BuildError(Exception):
    """An expected failure: bad input, missing tool, a kernel without an option."""
