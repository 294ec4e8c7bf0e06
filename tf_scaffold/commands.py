"""Commands as plain functions: the CLI only parses arguments and prints what these return."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tf_scaffold.errors import ScaffoldError, SpecError
from tf_scaffold.spec import Spec, build_spec


@dataclass
class NewResult:
    spec: Spec
    path: Path
    backup: Path | None
    files: list[str]
    tokenizer_size: int = 0
    warnings: list[str] = field(default_factory=list)


def read_spec_file(path: Path) -> dict[str, Any]:
    """Answers from a JSON or TOML file; `.tf-scaffold.json` files written by `new` are accepted as they are."""
    if not path.is_file():
        raise SpecError(f"spec file {path} does not exist: give the path of a .json or .toml answers file")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise SpecError(f"spec file {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {err}") from None
    if not isinstance(data, dict):
        raise SpecError(f"spec file {path} must hold a table/object of answers")
    if "answers" in data and isinstance(data["answers"], dict):
        data = data["answers"]
    return data


def new(answers: dict[str, Any], output_dir: Path, force: bool = False) -> NewResult:
    """Validate the answers, render the templates and write a complete repo to output_dir/<repo name>."""
    from tf_scaffold.render import render
    from tf_scaffold.write import check_target, write_atomically

    spec = build_spec(answers)
    target = (output_dir / spec.names.repo_name).resolve()
    check_target(target, force)  # fail before spending seconds on torch
    files = render(spec)
    result = NewResult(spec=spec, path=target, backup=None, files=sorted(files), warnings=spec.warnings())

    def build(staging: Path) -> None:
        from tf_scaffold.artifacts import build_model_files, build_processor, build_tokenizer, write_answers

        result.tokenizer_size = build_tokenizer(spec, staging)
        if spec.multimodal:
            build_processor(spec, staging)
        build_model_files(spec, staging)
        write_answers(spec, staging, files)
        result.files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())

    try:
        result.backup = write_atomically(target, files, build, force)
    except OSError as err:
        raise ScaffoldError(f"could not write {target}: {err.strerror or err}") from None
    return result
