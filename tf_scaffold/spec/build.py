"""From answers to a Spec: a preset under the explicit answers, the rules that fill in what was not given (an
encoder's heads and positions, the experts' width, head_dim after a size changed), the optional parts nested, and
pydantic's errors turned into one line."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import ValidationError

from tf_scaffold import facts
from tf_scaffold.errors import SpecError
from tf_scaffold.spec.choices import ARCHES
from tf_scaffold.spec.parts import (
    DECODER_ONLY,
    ENCODER_DEFAULTS,
    ENCODER_FIELDS,
    ENCODER_MAX_POSITIONS,
    MOE_DEFAULTS,
    MOE_FIELDS,
    VISION_DEFAULTS,
    VISION_FIELDS,
    nest,
)
from tf_scaffold.spec.presets import DECODER_PRESETS, DEFAULT_PRESET, PRESETS
from tf_scaffold.spec.schema import Spec

# `--layer-types` accepts the short names too.
_LAYER_TYPE_ALIASES = {"full": facts.FULL_ATTENTION, "sliding": facts.SLIDING_ATTENTION}


def _format_validation_error(err: ValidationError) -> str:
    first = err.errors()[0]
    ctx_err = (first.get("ctx") or {}).get("error")
    if isinstance(ctx_err, SpecError):
        return str(ctx_err)
    loc = ".".join(str(p) for p in first["loc"] if p not in ("vision", "moe", "encoder")) or "spec"
    if first["type"] == "extra_forbidden":
        allowed = ", ".join(
            sorted(
                {*Spec.model_fields, *VISION_FIELDS, *MOE_FIELDS, *ENCODER_FIELDS, "multimodal", "arch"}
                - {"vision", "encoder"}
            )
        )
        return f"unknown answer {loc!r}: allowed answers are {allowed}"
    if first["type"] == "missing":
        return f"missing answer {loc!r}: give it as an option or in the --spec file"
    return f"invalid {loc.replace('_', '-')}: {first['msg']} (got {first.get('input')!r})"


def expand_layer_types(value: Any, num_layers: Any) -> Any:
    """`sliding,full` (or a list) -> one canonical type per layer, the pattern repeated over the layers."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) for v in value):
        raise SpecError("layer-types must be a comma-separated list of sliding/full, e.g. `sliding,full`")
    pattern = [_LAYER_TYPE_ALIASES.get(v, v) for v in value]
    if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers <= 0:
        return tuple(pattern)  # the size check reports the bad num_layers
    if len(pattern) > num_layers:
        raise SpecError(
            f"layer-types names {len(pattern)} layers but the model has {num_layers}: give at most one type per layer"
            " (a shorter pattern repeats over the layers), or more layers with --num-layers"
        )
    return tuple(pattern[i % len(pattern)] for i in range(num_layers))


def _encoder_answers(merged: dict[str, Any], answers: dict[str, Any]) -> None:
    """An encoder takes the preset's sizes, but not its decoder-only answers: refuse them when given, drop them."""
    for key in ("multimodal", "moe"):
        if merged.get(key):
            raise SpecError(f"--arch encoder takes no --{key}: an encoder is text-only and dense")
    for key in DECODER_ONLY:
        if answers.get(key) not in (None, False):
            raise SpecError(f"--arch encoder takes no --{key.replace('_', '-')}: that is a decoder option")
    merged["encoder"] = True
    if "num_kv_heads" not in answers:
        merged["num_kv_heads"] = merged["num_heads"]
    if "head_dim" not in answers:
        merged["head_dim"] = None
    if "max_position_embeddings" not in answers:
        merged["max_position_embeddings"] = ENCODER_MAX_POSITIONS


def _unused_labels(spec: Spec, answers: dict[str, Any], explicit: Collection[str]) -> None:
    """Labels for a model that classifies nothing. An answers file records every default, an embedding model's
    num_labels 2 too: that one is refused only when given on the command line."""
    if not spec.encoder or spec.encoder.task == "classify" or "num_labels" not in answers:
        return
    if "num_labels" in explicit or spec.encoder.num_labels != ENCODER_DEFAULTS["num_labels"]:
        raise SpecError(
            f"num-labels {spec.encoder.num_labels} is for a classifier: add --task classify, or drop --num-labels"
            " (an embedding model has no labels)"
        )


def build_spec(answers: dict[str, Any], explicit: Collection[str] = ()) -> Spec:
    """Merge a preset with explicit answers (None means 'not given') and validate. `explicit`: the names of the
    answers given on the command line (refused where the model has no use for them, even at their default value).
    Raises SpecError."""
    answers = {k: v for k, v in answers.items() if v is not None}
    preset = answers.get("preset", DEFAULT_PRESET)
    if preset not in PRESETS:
        raise SpecError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    merged = {**PRESETS[preset], **answers, "preset": preset}
    arch = merged.pop("arch", "decoder")
    if arch not in ARCHES:
        raise SpecError(f"unknown arch {arch!r}: choose decoder or encoder")
    if arch == "encoder":
        if preset in DECODER_PRESETS:
            raise SpecError(
                f"preset {preset} is a decoder's shape (a {PRESETS[preset]['vocab_size']}-token vocabulary, more than"
                " the encoder's tokenizer can fill): --arch encoder takes --preset tiny or small, and --hidden-size,"
                " --num-layers, ... for other sizes"
            )
        _encoder_answers(merged, answers)
    # A size given on the command line changes hidden/heads: derive head_dim again unless it was given too.
    if "head_dim" not in answers and any(k in answers for k in ("hidden_size", "num_heads")):
        merged["head_dim"] = None
    if "num_kv_heads" not in answers and "num_heads" in answers and merged["num_heads"] % merged["num_kv_heads"]:
        merged["num_kv_heads"] = merged["num_heads"]
    if merged.get("moe"):
        merged.setdefault("qk_norm", True)  # Qwen3-MoE normalises queries and keys
        intermediate = merged.get("intermediate_size")
        if isinstance(intermediate, int) and not isinstance(intermediate, bool) and intermediate > 1:
            merged.setdefault("moe_intermediate_size", intermediate // 2)
    if "layer_types" in merged:
        merged["layer_types"] = expand_layer_types(merged["layer_types"], merged.get("num_layers"))
    try:
        merged["vision"] = nest(merged, "multimodal", VISION_FIELDS, VISION_DEFAULTS)
        merged["moe"] = nest(merged, "moe", MOE_FIELDS, MOE_DEFAULTS)
        merged["encoder"] = nest(merged, "encoder", ENCODER_FIELDS, ENCODER_DEFAULTS, "--arch encoder")
        spec = Spec(**merged)
    except ValidationError as err:
        raise SpecError(_format_validation_error(err)) from None
    _unused_labels(spec, answers, explicit)
    return spec
