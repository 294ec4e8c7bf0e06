"""The Spec: every answer of `tf-scaffold new`, its fields, their one-field checks, and the values derived from
them. The rules across fields are in `validate`, RoPE's in `rope`, the optional parts in `parts`."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from tf_scaffold.errors import SpecError
from tf_scaffold.names import Names, normalise_name
from tf_scaffold.spec import rope, validate
from tf_scaffold.spec.parts import DECODER_UNUSED, EncoderSpec, MoeSpec, VisionSpec
from tf_scaffold.spec.presets import DEFAULT_PRESET, SIZE_FIELDS

_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


class Spec(BaseModel):
    """The answers of `tf-scaffold new`, validated. `vision` and `moe` are set only for repos that have them."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int | None = None
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    rope_theta: float
    # RoPE scaling as transformers' `rope_parameters` hold it, without `rope_theta`: {"rope_type": "linear", "factor": 4}
    rope_scaling: dict[str, Any] | None = None
    tie_word_embeddings: bool
    rms_norm_eps: float = 1e-6
    # Per-head RMSNorm of queries and keys before RoPE (Qwen3, OLMo 2).
    qk_norm: bool = False
    # Biases on the query, key and value projections, none on the output projection (Qwen2).
    attention_bias: bool = False
    # Sliding-window attention: the window, and the kind of every layer (`full_attention` / `sliding_attention`).
    sliding_window: int | None = None
    layer_types: tuple[str, ...] | None = None
    seed: int = 0
    # Std of the random placeholder weights. Larger than the 0.02 used for training so that attention and the MLP
    # visibly shape the output: at 0.02 a tiny tied model just repeats its last input token, and an engine that
    # got attention wrong would still produce the same greedy tokens.
    weights_std: float = 0.1
    weights: bool = True
    license: str = "apache-2.0"
    # Where the repo will live on the Hub ("org/name"): the docstrings and the model card load it from there.
    hub_id: str | None = None
    preset: str = DEFAULT_PRESET
    vision: VisionSpec | None = None
    moe: MoeSpec | None = None
    encoder: EncoderSpec | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        normalise_name(value)
        return value.strip()

    @field_validator("hub_id")
    @classmethod
    def _check_hub_id(cls, value: str | None) -> str | None:
        if value is not None and not _HUB_ID_RE.match(value.strip()):
            raise SpecError(f"hub-id {value!r} is not a Hub repo id: use `org/name` (letters, digits, '-', '_', '.')")
        return value.strip() if value is not None else None

    @field_validator(*SIZE_FIELDS, "sliding_window")
    @classmethod
    def _positive(cls, value: int | None, info) -> int | None:
        return validate.positive_int(value, info.field_name)

    @field_validator("rope_theta", "rms_norm_eps", "weights_std")
    @classmethod
    def _positive_float(cls, value: float, info) -> float:
        return validate.positive_float(value, info.field_name)

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: int) -> int:
        if not 0 <= value < 2**63:
            raise SpecError(f"seed must be between 0 and 2**63-1, got {value}")
        return value

    @model_validator(mode="after")
    def _check(self) -> Spec:
        validate.check_shapes(self)
        rope.check_rope(self.rope_scaling, self.rope_theta, self.max_position_embeddings, self.resolved_head_dim)
        validate.check_layer_types(self)
        validate.check_not_native(self)
        return self

    # ---- derived values -------------------------------------------------------------------------------------

    @property
    def multimodal(self) -> bool:
        return self.vision is not None

    @cached_property
    def names(self) -> Names:
        return Names(self.name, multimodal=self.multimodal, encoder_task=self.encoder.task if self.encoder else None)

    @property
    def resolved_hub_id(self) -> str:
        """`--hub-id`, or a placeholder that says where the organisation goes."""
        return self.hub_id or f"your-org/{self.names.repo_name}"

    @property
    def rope_parameters(self) -> dict[str, Any]:
        """The config's `rope_parameters`: type, base and scaling factors, as transformers' RoPE functions read them."""
        return rope.rope_parameters(self.rope_scaling, self.rope_theta)

    @property
    def resolved_head_dim(self) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden_size // self.num_heads

    def answers(self) -> dict[str, Any]:
        """The user's answers as a flat table (no derived values): what `--spec` reads back."""
        answers = self.model_dump(exclude={"vision", "moe", "encoder"}, exclude_none=True)
        for key in ("qk_norm", "attention_bias"):  # options a plain decoder does not use
            if not answers[key]:
                answers.pop(key)
        if "layer_types" in answers:
            answers["layer_types"] = list(answers["layer_types"])
        if self.vision:
            answers.update(multimodal=True, **self.vision.model_dump())
        if self.moe:
            answers.update(moe=True, **self.moe.model_dump())
        if self.encoder:
            for key in DECODER_UNUSED:
                answers.pop(key, None)
            answers.update(arch="encoder", **self.encoder.model_dump())
        return answers
