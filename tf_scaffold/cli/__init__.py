"""The `tf-scaffold` command line. Parses, calls a command function, prints; errors become one line + exit code.

`app` the Typer app and what every command shares; `new`; `check` (check and update); `run` (test and bench); `env`.
Importing this package registers the commands, in the order `tf-scaffold --help` lists them.
"""

# isort: off
from tf_scaffold.cli import new  # noqa: F401
from tf_scaffold.cli import check  # noqa: F401
from tf_scaffold.cli import run  # noqa: F401
from tf_scaffold.cli import env  # noqa: F401
from tf_scaffold.cli.app import app, main

# isort: on

__all__ = ["app", "main"]
