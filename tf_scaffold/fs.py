"""The file system as the commands meet it: the folders they are given (`require_folder`, `require_repo`: one line
naming what is missing, exit 2), and SIGTERM/SIGHUP turned into Ctrl-C (`signals_raise`) so that a command removes what
it half-made however it is stopped."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tf_scaffold.errors import ScaffoldError

CONFIG = "config.json"
# What each file a command needs is for, said when it is missing.
_NEEDED_FOR = {
    CONFIG: "it is not a model repo; give the folder that holds config.json",
    "tests": "`tf-scaffold test` runs a repo's own harness, the tests/ folder `tf-scaffold new` writes",
}


def require_folder(path: Path) -> Path:
    """`path` when it is a folder; else a ScaffoldError naming what it is instead (exit 2)."""
    if not path.exists():
        raise ScaffoldError(f"{path} does not exist: give the folder of a model repo (the one holding config.json)")
    if not path.is_dir():
        raise ScaffoldError(f"{path} is not a folder: give the folder of a model repo (the one holding config.json)")
    return path


def require_repo(path: Path, *needs: str) -> Path:
    """`path` when it is a folder holding config.json (and `needs`); else a ScaffoldError naming the first thing
    missing (exit 2). What is there but unreadable is left to the command: `check` reports it as a finding."""
    require_folder(path)
    for name in (CONFIG, *needs):
        if not os.path.lexists(path / name):
            raise ScaffoldError(f"{path} has no {name}: {_NEEDED_FOR[name]}")
    return path


@contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt, so that what a command half-made is removed as on Ctrl-C."""

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread
            pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
