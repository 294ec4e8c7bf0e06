"""`.tf-scaffold.json`, the record `new` leaves in every repo: the answers, the tool version, the kind of repo and the
text of every file `new` wrote from templates and code (the base `tf-scaffold update` 3-way merges against).

One home for the format: `new` writes it (`payload`), `update`, `bench` and `check` read it (`read`, `load`). Records
written by earlier releases are mapped to today's form as they are read (`upgrade`): nothing on disk changes until
the next `update` writes the record again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tf_scaffold.errors import ScaffoldError

NAME = ".tf-scaffold.json"
# Built from the rendered code (not rendered from a template); `update` rebuilds them when that code changes.
BUILT_TEXT = ("config.json", "generation_config.json", "processor_config.json")
WEIGHTS = "model.safetensors"

# The package the generated tests import the harness from, and the name it had before 0.3.
PACKAGE, OLD_PACKAGE = "tf_scaffold", "scaffold"
_OLD_IMPORT = re.compile(rf"^(\s*)(from|import)\s+{OLD_PACKAGE}(?=[.\s]|$)", re.MULTILINE)


class RecordError(ScaffoldError):
    """A repo without a readable record (`update` and `bench` need one)."""


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """A record of any release in today's form. Before 0.3 it said `"variant": "decoder"` for every repo, an encoder's
    too: dropped, the kind of repo is what its answers make (`payload` records it from 0.3 on)."""
    record = dict(record)
    record.pop("variant", None)
    return record


def migrate_source(text: str) -> str:
    """A generated test file of an earlier release importing the harness from the package's new name: the one line
    that changed when `scaffold` became `tf_scaffold` (`update` applies it to the author's copy and to the base, so
    the 3-way merge sees the rename on both sides and never conflicts over it)."""
    return _OLD_IMPORT.sub(lambda m: f"{m.group(1)}{m.group(2)} {PACKAGE}", text)


def read(repo: Path) -> dict[str, Any]:
    """The repo's record, upgraded to today's form. Raises RecordError with what to do."""
    path = repo / NAME
    if not repo.is_dir():
        raise RecordError(f"{repo} is not a folder: give the path of a repo made by `tf-scaffold new`")
    if not path.is_file():
        raise RecordError(
            f"{repo} has no {NAME}: `update` works on repos made by `tf-scaffold new` "
            "(`tf-scaffold check` works on any repo)"
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RecordError(f"{path} is not readable JSON ({err}): restore it from version control") from None
    if not isinstance(record, dict) or not isinstance(record.get("answers"), dict):
        raise RecordError(f"{path} holds no answers: restore it from version control")
    return upgrade(record)


def load(repo: Path) -> dict[str, Any] | None:
    """The record when the repo has a readable one, else None (for readers that work without it)."""
    try:
        return read(repo)
    except RecordError:
        return None


def has_base(record: dict[str, Any]) -> bool:
    """Whether the record holds the files `new` wrote (records before 0.2 did not: `update --adopt` adds them)."""
    base = record.get("base")
    return isinstance(base, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in base.items())


def payload(answers: dict[str, Any], kind: str, base: dict[str, str]) -> str:
    """The text of `.tf-scaffold.json`: tool version, kind of repo, answers, and the base `update` merges against."""
    from tf_scaffold import __version__

    record = {
        "tf_scaffold_version": __version__,
        "kind": kind,
        "answers": answers,
        # What this version of tf-scaffold wrote, for `tf-scaffold update` to 3-way merge against. Not uploaded.
        "base": dict(sorted(base.items())),
    }
    return json.dumps(record, indent=2) + "\n"
