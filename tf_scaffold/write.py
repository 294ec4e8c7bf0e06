"""Atomic, no-clobber output: build everything in a staging folder beside the target, then rename it into place.

The target either does not exist or is complete. Ctrl-C or SIGTERM removes the staging folder; after a SIGKILL the
stale staging folder is hidden (`.NAME.tf-scaffold-tmp-PID-...`) and removed by the next run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tf_scaffold.errors import InterruptedError_, ScaffoldError, TargetExistsError
from tf_scaffold.fs import signals_raise

STAGING_MARK = ".tf-scaffold-tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_staging(parent: Path, name: str) -> None:
    """Remove staging folders left behind by a killed run (their process no longer exists)."""
    for stale in parent.glob(f".{name}{STAGING_MARK}*"):
        try:
            pid = int(stale.name[len(f".{name}{STAGING_MARK}") :].split("-")[0])
        except ValueError:
            continue
        if not _pid_alive(pid):
            shutil.rmtree(stale, ignore_errors=True)


def check_target(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise TargetExistsError(
            f"{target} already exists: choose another name or -o DIR, or pass --force to replace it"
        )
    if target.exists() and not target.is_dir():
        raise TargetExistsError(f"{target} exists and is not a folder: move it away first")
    parent = target.parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ScaffoldError(f"output folder {parent} is inside a file ({existing}): pick another -o DIR")
    if existing is None or not os.access(existing, os.W_OK):
        raise ScaffoldError(f"cannot write to {parent}: pick another -o DIR")


def _discard(staging: Path, created: list[Path]) -> None:
    """Remove the staging folder and any output folders this run created (innermost first)."""
    shutil.rmtree(staging, ignore_errors=True)
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            break


def _normalise_permissions(root: Path) -> None:
    """mkdtemp makes 0700 folders and some writers 0600 files: give the tree the user's usual umask modes."""
    umask = os.umask(0)
    os.umask(umask)
    root.chmod(0o777 & ~umask)
    for path in root.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def write_atomically(target: Path, files: dict[str, str], build: Callable[[Path], None], force: bool) -> Path | None:
    """Write `files`, run `build(staging)` to add generated artifacts, then move the result to `target`.

    Returns the backup path when an existing target was replaced (`force`), else None.
    """
    target = target.resolve()
    check_target(target, force)
    parent = target.parent
    created = [p for p in (parent, *parent.parents) if not p.exists()]
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(parent, target.name)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{STAGING_MARK}{os.getpid()}-", dir=parent))
    backup: Path | None = None
    try:
        with signals_raise():
            for rel, text in files.items():
                path = staging / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            build(staging)
            for cache in staging.rglob("__pycache__"):
                shutil.rmtree(cache, ignore_errors=True)
            _normalise_permissions(staging)
            if target.exists():
                backup = target.with_name(f"{target.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
                n = 1
                while backup.exists():
                    backup = target.with_name(f"{target.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
                    n += 1
                os.rename(target, backup)
            try:
                os.rename(staging, target)
            except OSError:
                if backup is not None:  # put the user's tree back
                    os.rename(backup, target)
                    backup = None
                raise
    except KeyboardInterrupt:
        _discard(staging, created)
        raise InterruptedError_(f"interrupted: nothing was written to {target}") from None
    except BaseException:
        _discard(staging, created)
        raise
    return backup
