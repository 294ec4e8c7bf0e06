"""The Typer app every command registers on, and what all commands share: errors as one red line and an exit code
(`command`), usage errors from the parser in the same form, the help's look (`epilog`: examples and exit codes), and
`main`, the console script."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import typer
import typer.core
import typer.rich_utils

from tf_scaffold import __version__
from tf_scaffold.errors import ExitCode, ScaffoldError

app = typer.Typer(
    name="tf-scaffold",
    help=(
        "Generate Hugging Face custom-code model repos that vLLM and SGLang serve through their Transformers backend,"
        " with a test harness that proves it."
    ),
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

# ---- how errors and help look ----------------------------------------------------------------------------------------


def _usage_error_line(err: Exception) -> None:
    """Usage errors found while parsing (an unknown option or command, a bad value, a name that reads as an option)
    as one line, like every other error of the tool, instead of typer's boxed usage screen."""
    if err.__class__.__name__ == "NoArgsIsHelpError":  # `tf-scaffold` alone: the help has been printed
        return
    ctx = getattr(err, "ctx", None)
    hint = ""
    if ctx is not None:
        # a group's errors are about its commands (`tf-scaffold nwe`), except an option it does not have
        lists = (
            "commands"
            if hasattr(ctx.command, "commands") and "option" not in type(err).__name__.lower()
            else "options"
        )
        hint = f" (`{ctx.command_path} --help` lists the {lists})"
    message = err.format_message().replace("Value error, ", "")  # typer's prefix to a bad choice
    typer.secho(f"error: {message}{hint}", fg=typer.colors.RED, err=True)


# typer hands every click error to this function when rich is installed (typer.core._main)
typer.rich_utils.rich_format_error = _usage_error_line

_display_type_rich = getattr(typer.core.TyperOption, "display_type_rich", None)  # typer >= 0.25


def _no_type_for_flags(self: typer.core.TyperOption, ctx: Any) -> str | None:
    """A flag takes no value: the help shows no `<bool>` beside it (typer's rich help shows one for every flag)."""
    return None if self.is_flag else _display_type_rich(self, ctx)


if _display_type_rich is not None:
    typer.core.TyperOption.display_type_rich = _no_type_for_flags


def fail(message: str, code: int = ExitCode.USAGE) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(int(code))


def command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`app.command` (or a sub-app's) whose function's ScaffoldErrors become one red line and their exit code."""
    register = kwargs.pop("app", app).command(*args, **kwargs)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def run(*a: Any, **kw: Any) -> Any:
            try:
                return func(*a, **kw)
            except ScaffoldError as err:
                fail(str(err), err.exit_code)

        return register(run)

    return decorate


def epilog(examples: list[str], codes: dict[ExitCode, str]) -> str:
    """A command's examples and what its exit codes mean."""
    exits = ", ".join(f"{int(code)} {what}" for code, what in codes.items())
    return "\n\n".join(["**Examples**", *examples, f"**Exit codes**: {exits}."])


INTERRUPTED = "interrupted"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tf-scaffold {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """tf-scaffold: backend-ready model repos for vLLM and SGLang."""


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.secho("error: interrupted", fg=typer.colors.RED, err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
