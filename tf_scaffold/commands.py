"""Commands as plain functions: the CLI only parses arguments and prints what these return."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tf_scaffold import facts
from tf_scaffold.errors import ScaffoldError, SpecError

if TYPE_CHECKING:
    from tf_scaffold.spec import Spec


@dataclass
class NewResult:
    spec: Spec
    path: Path
    backup: Path | None
    files: list[str]
    tokenizer_size: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """What was made, one line per part (printed under `Created PATH`)."""
        spec = self.spec
        heads = f"{spec.num_heads}" if spec.encoder else f"{spec.num_heads}/{spec.num_kv_heads}"
        weights = f"random weights, seed {spec.seed}" if spec.weights else "no weights"
        lines = [
            f"{spec.names.architecture} (model_type {spec.names.model_type!r}): {plural(spec.num_layers, 'layer')},"
            f" hidden {spec.hidden_size}, {heads} heads x {spec.resolved_head_dim}, vocab {spec.vocab_size}"
            f" (tokenizer {self.tokenizer_size}), {weights}"
        ]
        if spec.encoder:
            enc = spec.encoder
            served = "embeddings" if enc.task == "embed" else f"classification into {plural(enc.num_labels, 'label')}"
            lines.append(
                f"encoder: serves {served}; {enc.pooling} pooling{', normalised' if enc.normalize else ''};"
                f" {plural(enc.type_vocab_size, 'token type')}"
            )
        if spec.vision:
            vision = spec.vision
            lines.append(
                f"vision tower: {vision.image_size}px images in {vision.patch_size}px patches"
                f" ({plural(vision.num_image_tokens, 'image token')} each), {plural(vision.vision_num_layers, 'layer')},"
                f" hidden {vision.vision_hidden_size}, {plural(vision.vision_num_heads, 'head')}"
            )
        if spec.moe:
            lines.append(
                f"experts: {spec.moe.num_experts} per layer, top-{spec.moe.num_experts_per_tok} routing,"
                f" width {spec.moe.moe_intermediate_size}"
            )
        attention = [
            *(["qk-norm"] if spec.qk_norm else []),
            *(["q/k/v bias"] if spec.attention_bias else []),
            *(
                [
                    f"sliding window {spec.sliding_window} on"
                    f" {plural(spec.layer_types.count(facts.SLIDING_ATTENTION), 'layer')}"
                ]
                if spec.sliding_window
                else []
            ),
        ]
        if attention:
            lines.append(f"attention: {', '.join(attention)}")
        return lines


def plural(count: int, word: str) -> str:
    """`1 layer`, `2 layers`."""
    return f"{count} {word}{'' if count == 1 else 's'}"


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


def new(answers: dict[str, Any], output_dir: Path, force: bool = False, explicit: Collection[str] = ()) -> NewResult:
    """Validate the answers, render the templates and write a complete repo to output_dir/<repo name>. `explicit`:
    the answers given on the command line (see `build_spec`)."""
    from tf_scaffold import variants
    from tf_scaffold.render import render
    from tf_scaffold.spec import build_spec
    from tf_scaffold.write import check_target, write_atomically

    spec = build_spec(answers, explicit)
    target = (output_dir / spec.names.repo_name).resolve()
    check_target(target, force)  # fail before spending seconds on torch
    files = render(spec)
    result = NewResult(spec=spec, path=target, backup=None, files=sorted(files), warnings=variants.warnings(spec))

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
