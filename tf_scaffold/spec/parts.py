"""The optional parts of a model, each a sub-model of the Spec with its own answers and defaults: the vision tower
(`--multimodal`), the experts (`--moe`) and the encoder (`--arch encoder`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from tf_scaffold.errors import SpecError
from tf_scaffold.spec.choices import ENCODER_TASKS, POOLING_MODES
from tf_scaffold.spec.validate import positive_int

# The vision tower of `--multimodal` repos: a ViT that sees `image_size` pixels square in `patch_size` patches.
# 64 px in 16 px patches gives 16 image tokens per image, which keeps the tiny model's tests fast.
VISION_FIELDS = ("image_size", "patch_size", "vision_hidden_size", "vision_num_layers", "vision_num_heads")
VISION_DEFAULTS: dict[str, int] = dict(
    image_size=64, patch_size=16, vision_hidden_size=64, vision_num_layers=2, vision_num_heads=2
)

# The experts of `--moe` repos (Qwen3-MoE's design: every layer sparse, softmax top-k router, packed experts).
# `moe_intermediate_size` defaults to half the preset's dense `intermediate_size`.
MOE_FIELDS = ("num_experts", "num_experts_per_tok", "moe_intermediate_size", "norm_topk_prob", "router_aux_loss_coef")
MOE_DEFAULTS: dict[str, Any] = dict(
    num_experts=8, num_experts_per_tok=2, norm_topk_prob=True, router_aux_loss_coef=0.001
)

# The encoder of `--arch encoder` repos (BERT's design). The preset gives the sizes; an encoder has as many key/value
# heads as query heads, head_dim = hidden_size / num_heads, and BERT's 512 positions unless told otherwise.
ENCODER_FIELDS = ("task", "pooling", "normalize", "type_vocab_size", "num_labels", "layer_norm_eps")
ENCODER_DEFAULTS: dict[str, Any] = dict(
    task="embed", pooling="cls", normalize=True, type_vocab_size=2, num_labels=2, layer_norm_eps=1e-12
)
ENCODER_MAX_POSITIONS = 512
# Decoder answers an encoder has no use for: refused when given, left out of its answers file.
DECODER_ONLY = ("rope_scaling", "qk_norm", "attention_bias", "sliding_window", "layer_types")
DECODER_UNUSED = ("rope_theta", "rope_scaling", "tie_word_embeddings", "rms_norm_eps", "num_kv_heads", "head_dim")


class VisionSpec(BaseModel):
    """The vision tower of a `--multimodal` repo."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: int
    patch_size: int
    vision_hidden_size: int
    vision_num_layers: int
    vision_num_heads: int

    @field_validator(*VISION_FIELDS)
    @classmethod
    def _positive(cls, value: int, info) -> int:
        return positive_int(value, info.field_name)

    @model_validator(mode="after")
    def _check(self) -> VisionSpec:
        if self.image_size % self.patch_size:
            raise SpecError(
                f"image-size {self.image_size} is not divisible by patch-size {self.patch_size}:"
                " the vision tower cuts the image into whole patches"
            )
        if self.vision_hidden_size % self.vision_num_heads:
            raise SpecError(
                f"vision-hidden-size {self.vision_hidden_size} is not divisible by vision-num-heads"
                f" {self.vision_num_heads}: choose sizes where hidden = heads x head-dim"
            )
        return self

    @property
    def num_image_tokens(self) -> int:
        """Placeholder tokens per image: one per patch."""
        return (self.image_size // self.patch_size) ** 2

    @property
    def vision_intermediate_size(self) -> int:
        """Width of the vision MLP: 4x the tower's width, as in ViT."""
        return 4 * self.vision_hidden_size


class MoeSpec(BaseModel):
    """The experts of a `--moe` repo."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_experts: int
    num_experts_per_tok: int
    moe_intermediate_size: int
    norm_topk_prob: bool = True
    router_aux_loss_coef: float = 0.001

    @field_validator("num_experts", "num_experts_per_tok", "moe_intermediate_size")
    @classmethod
    def _positive(cls, value: int, info) -> int:
        return positive_int(value, info.field_name)

    @field_validator("router_aux_loss_coef")
    @classmethod
    def _coef(cls, value: float) -> float:
        if not 0 <= value < float("inf"):
            raise SpecError(f"router-aux-loss-coef must be a number >= 0, got {value}")
        return value

    @model_validator(mode="after")
    def _check(self) -> MoeSpec:
        if self.num_experts < 2:
            raise SpecError(f"num-experts {self.num_experts} is too few: a mixture of experts needs at least 2")
        if self.num_experts_per_tok > self.num_experts:
            raise SpecError(
                f"num-experts-per-tok {self.num_experts_per_tok} is more than num-experts {self.num_experts}:"
                " each token picks its top-k from the experts there are"
            )
        return self


class EncoderSpec(BaseModel):
    """The encoder of an `--arch encoder` repo: what it is served for, and how its embeddings are pooled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # `embed`: the checkpoint and `architectures` are the base model (an embedding model); `classify`: the sequence
    # classifier's. Both classes are in every encoder repo.
    task: str = "embed"
    pooling: str = "cls"
    normalize: bool = True
    type_vocab_size: int = 2
    num_labels: int = 2
    layer_norm_eps: float = 1e-12

    @field_validator("task")
    @classmethod
    def _task(cls, value: str) -> str:
        if value not in ENCODER_TASKS:
            raise SpecError(f"unknown task {value!r}: choose embed (an embedding model) or classify (a classifier)")
        return value

    @field_validator("pooling")
    @classmethod
    def _pooling(cls, value: str) -> str:
        if value not in POOLING_MODES:
            raise SpecError(f"unknown pooling {value!r}: choose cls (the first token) or mean (the average of tokens)")
        return value

    @field_validator("type_vocab_size")
    @classmethod
    def _types(cls, value: int) -> int:
        if isinstance(value, bool) or value < 0:
            raise SpecError(f"type-vocab-size must be 0 (no token types) or more, got {value}")
        return value

    @field_validator("num_labels")
    @classmethod
    def _labels(cls, value: int) -> int:
        return positive_int(value, "num_labels")

    @field_validator("layer_norm_eps")
    @classmethod
    def _eps(cls, value: float) -> float:
        if not 0 < value < float("inf"):
            raise SpecError(f"layer-norm-eps must be a positive number, got {value}")
        return value


def nest(
    merged: dict[str, Any], flag: str, fields: tuple[str, ...], defaults: dict[str, Any], switch: str = ""
) -> dict[str, Any] | None:
    """Move the flat answers of an optional part (vision, experts, encoder) into its own table; None when it is off."""
    given = {f: merged.pop(f) for f in fields if f in merged}
    if not merged.pop(flag, False):
        if given:
            option = next(iter(given)).replace("_", "-")
            raise SpecError(
                f"{option} describes the {flag} part of the model: add {switch or '--' + flag}, or drop the option"
            )
        return None
    return {**defaults, **given}
