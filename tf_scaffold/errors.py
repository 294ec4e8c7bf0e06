"""Errors the user can act on. Each carries one line: what is wrong and how to fix it."""


class ScaffoldError(Exception):
    """A problem with the user's input or environment; the CLI prints it as one line and exits non-zero."""

    exit_code = 2


class SpecError(ScaffoldError):
    """An answer (name, size, option) that cannot produce a backend-ready model."""


class TargetExistsError(ScaffoldError):
    """The output directory exists and `--force` was not given."""


class InterruptedError_(ScaffoldError):
    """`new` was interrupted; nothing was written."""

    exit_code = 130
