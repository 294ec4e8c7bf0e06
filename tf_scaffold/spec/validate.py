"""The rules a Spec must meet as a whole: sizes that fit together, layer types, a name the engines will not take for
one of transformers' own. Each rule raises SpecError with one line: what is wrong and what to change."""

from __future__ import annotations

from typing import Any

from tf_scaffold import facts
from tf_scaffold.errors import SpecError
from tf_scaffold.installed import native_names

# The Spec being validated (`schema` imports this module: importing it back, even for typing, would be a cycle).
Spec = Any


def positive_int(value: int | None, name: str) -> int | None:
    if value is not None and (isinstance(value, bool) or value <= 0):
        raise SpecError(f"{name.replace('_', '-')} must be a positive integer, got {value}")
    return value


def positive_float(value: float, name: str) -> float:
    if not value > 0 or value != value or value == float("inf"):
        raise SpecError(f"{name.replace('_', '-')} must be a positive number, got {value}")
    return value


def check_shapes(spec: Spec) -> None:
    """Heads that split the hidden size, a vocabulary the tokenizer fits in, parts that go together."""
    if spec.hidden_size % spec.num_heads:
        raise SpecError(
            f"hidden-size {spec.hidden_size} is not divisible by num-heads {spec.num_heads}:"
            " choose sizes where hidden-size = num-heads x head-dim"
        )
    if spec.encoder:
        check_encoder(spec)
    if spec.num_heads % spec.num_kv_heads:
        raise SpecError(
            f"num-heads {spec.num_heads} is not divisible by num-kv-heads {spec.num_kv_heads}:"
            " grouped-query attention needs a whole number of query heads per kv head"
        )
    if spec.resolved_head_dim % 2 and not spec.encoder:
        raise SpecError(
            f"head-dim {spec.resolved_head_dim} is odd: rotary embeddings rotate pairs, use an even head-dim"
        )
    check_vocab(spec)
    if spec.moe and spec.multimodal:
        raise SpecError("--moe with --multimodal is not supported yet: generate one or the other")


def check_vocab(spec: Spec) -> None:
    if spec.encoder:
        if spec.vocab_size < facts.MIN_ENCODER_VOCAB_SIZE:
            raise SpecError(
                f"vocab-size {spec.vocab_size} is too small: the WordPiece tokenizer needs at least"
                f" {facts.MIN_ENCODER_VOCAB_SIZE} (its special tokens and the characters of its corpus)"
            )
        return
    minimum = facts.MIN_VOCAB_SIZE + (1 if spec.multimodal else 0)
    if spec.vocab_size < minimum:
        what = "256 bytes + special tokens" + (" + the image token" if spec.multimodal else "")
        raise SpecError(
            f"vocab-size {spec.vocab_size} is too small: the byte-level tokenizer needs at least {minimum} ({what})"
        )


def check_encoder(spec: Spec) -> None:
    if spec.num_kv_heads != spec.num_heads:
        raise SpecError(
            f"num-kv-heads {spec.num_kv_heads} differs from num-heads {spec.num_heads}: an encoder uses full"
            " multi-head attention, drop --num-kv-heads"
        )
    if spec.head_dim is not None and spec.head_dim * spec.num_heads != spec.hidden_size:
        raise SpecError(
            f"head-dim {spec.head_dim} x num-heads {spec.num_heads} is not hidden-size {spec.hidden_size}:"
            " an encoder's heads split the hidden size, drop --head-dim"
        )


def check_layer_types(spec: Spec) -> None:
    if spec.layer_types is None:
        if spec.sliding_window is not None:
            raise SpecError("sliding-window needs layer types: add --layer-types sliding (or e.g. sliding,full)")
        return
    unknown = sorted(set(spec.layer_types) - set(facts.LAYER_TYPES))
    if unknown:
        raise SpecError(f"unknown layer type {unknown[0]!r}: use sliding or full (e.g. --layer-types sliding,full)")
    if len(spec.layer_types) != spec.num_layers:
        raise SpecError(
            f"layer-types names {len(spec.layer_types)} layers but the model has {spec.num_layers}:"
            " give one type per layer, or a pattern with --layer-types"
        )
    if facts.SLIDING_ATTENTION in spec.layer_types and spec.sliding_window is None:
        raise SpecError("sliding layers need a window: add --sliding-window N")
    if facts.SLIDING_ATTENTION not in spec.layer_types and spec.sliding_window is not None:
        raise SpecError("sliding-window is set but no layer slides: add sliding to --layer-types")
    if spec.sliding_window is not None and spec.sliding_window >= spec.max_position_embeddings:
        raise SpecError(
            f"sliding-window {spec.sliding_window} is not below max-position-embeddings"
            f" {spec.max_position_embeddings}: such a window never slides; drop it or make it smaller"
        )


def check_not_native(spec: Spec) -> None:
    """A model_type or class transformers already has would make the engines run their own code instead."""
    model_types, classes = native_names()
    if spec.names.model_type in model_types:
        raise SpecError(
            f"model_type {spec.names.model_type!r} already exists in transformers: vLLM and SGLang would run their"
            " native implementation instead of yours; choose another name"
        )
    for cls_name in spec.names.classes:
        if cls_name in classes:
            raise SpecError(
                f"class {cls_name!r} already exists in transformers: the engines would run their native"
                " implementation instead of yours; choose another name"
            )
