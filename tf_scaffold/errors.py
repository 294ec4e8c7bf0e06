"""Errors the user can act on, and the exit codes of every command. Each error carries one line: what is wrong and
how to fix it."""

from enum import IntEnum


class ExitCode(IntEnum):
    """What a `tf-scaffold` command's exit status means. The same numbers for every command."""

    OK = 0
    # `check`: errors found; `test`: a test failed (or skipped under --fail-on-skip); `update`: conflicts or weights
    # that no longer fit; `bench`: the sides disagreed or the results could not be written
    FAILED = 1
    # the command line or the files it names: a bad option, a folder that is not a model repo, an existing target
    USAGE = 2
    # `check`: a check crashed (a bug of tf-scaffold's; the report still comes)
    INTERNAL = 3
    # the machine, not the input: a pip install that failed, an interpreter that does not exist or lacks a package
    ENVIRONMENT = 4
    INTERRUPTED = 130


class ScaffoldError(Exception):
    """A problem with the user's input or environment; the CLI prints it as one line and exits non-zero."""

    exit_code: int = ExitCode.USAGE


class SpecError(ScaffoldError):
    """An answer (name, size, option) that cannot produce a backend-ready model."""


class TargetExistsError(ScaffoldError):
    """The output directory exists and `--force` was not given."""


class EnvironmentFailure(ScaffoldError):
    """The machine cannot do what was asked: an install failed, an interpreter is missing or lacks a package."""

    exit_code = ExitCode.ENVIRONMENT


class InterruptedError_(ScaffoldError):
    """`new` was interrupted; nothing was written."""

    exit_code = ExitCode.INTERRUPTED
