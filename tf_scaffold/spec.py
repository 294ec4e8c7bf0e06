"""The Spec: the answers of `tf-scaffold new`, validated once.

Names derived from the model name live in `tf_scaffold.names`, what each kind of repo is made of (files, plans,
parameter count) in `tf_scaffold.variants`, constant facts in `tf_scaffold.facts`. Templates never decide anything.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from tf_scaffold import facts
from tf_scaffold.errors import SpecError
from tf_scaffold.installed import native_names
from tf_scaffold.names import Names, normalise_name

__all__ = ["DEFAULT_PRESET", "PRESETS", "EncoderSpec", "MoeSpec", "Spec", "VisionSpec", "build_spec", "normalise_name"]

SIZE_FIELDS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
)

# Presets: every size answer. `weights` is the default for `--weights/--no-weights`.
PRESETS: dict[str, dict[str, Any]] = {
    # A few MB. head_dim 64 is one vLLM's CPU attention supports, so the engine tests run on any machine; 4 query and
    # 2 key/value heads keep grouped-query attention and let tensor parallelism over 2 ranks really split the heads.
    "tiny": dict(
        hidden_size=128,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=64,
        intermediate_size=256,
        vocab_size=1024,
        max_position_embeddings=2048,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        weights=True,
    ),
    # ~100M parameters: the size the vLLM CPU throughput benchmark uses.
    "small": dict(
        hidden_size=1024,
        num_layers=8,
        num_heads=16,
        num_kv_heads=16,
        head_dim=64,
        intermediate_size=2816,
        vocab_size=1024,
        max_position_embeddings=2048,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        weights=True,
    ),
    # Llama-3.2-1B's shape (default RoPE; Llama 3.2's "llama3" frequency scaling is not reproduced).
    # Written without weights unless `--weights` is given (~5 GB in fp32).
    "llama-3.2-1b": dict(
        hidden_size=2048,
        num_layers=16,
        num_heads=32,
        num_kv_heads=8,
        head_dim=64,
        intermediate_size=8192,
        vocab_size=128256,
        max_position_embeddings=131072,
        rope_theta=500000.0,
        tie_word_embeddings=True,
        weights=False,
    ),
}
DEFAULT_PRESET = "tiny"

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
ENCODER_TASKS = ("embed", "classify")
POOLING_MODES = ("cls", "mean")
# Decoder answers an encoder has no use for: refused when given, left out of its answers file.
DECODER_ONLY = ("rope_scaling", "qk_norm", "attention_bias", "sliding_window", "layer_types")
_DECODER_UNUSED = ("rope_theta", "rope_scaling", "tie_word_embeddings", "rms_norm_eps", "num_kv_heads", "head_dim")

# `--layer-types` accepts the short names too.
_LAYER_TYPE_ALIASES = {"full": facts.FULL_ATTENTION, "sliding": facts.SLIDING_ATTENTION}

# RoPE scaling: the `rope_type`s of transformers' `ROPE_INIT_FUNCTIONS` a Llama-class decoder can use, with the keys
# each one requires and allows besides `rope_type` and `rope_theta` (as transformers' own rope validation has them).
ROPE_TYPES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "default": (frozenset(), frozenset()),
    "linear": (frozenset({"factor"}), frozenset()),
    "dynamic": (frozenset({"factor"}), frozenset()),
    "yarn": (
        frozenset({"factor", "original_max_position_embeddings"}),
        frozenset({"attention_factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "truncate"}),
    ),
    "longrope": (
        frozenset({"short_factor", "long_factor", "original_max_position_embeddings"}),
        frozenset({"attention_factor", "factor"}),
    ),
    "llama3": (
        frozenset({"factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor"}),
        frozenset(),
    ),
}
# Filled in when not given: Llama 3.1's frequency bands for llama3.
ROPE_DEFAULTS: dict[str, dict[str, float]] = {"llama3": {"low_freq_factor": 1.0, "high_freq_factor": 4.0}}

_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def _positive_int(value: int | None, name: str) -> int | None:
    if value is not None and (isinstance(value, bool) or value <= 0):
        raise SpecError(f"{name.replace('_', '-')} must be a positive integer, got {value}")
    return value


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
        return _positive_int(value, info.field_name)

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
        return _positive_int(value, info.field_name)

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
        return _positive_int(value, "num_labels")

    @field_validator("layer_norm_eps")
    @classmethod
    def _eps(cls, value: float) -> float:
        if not 0 < value < float("inf"):
            raise SpecError(f"layer-norm-eps must be a positive number, got {value}")
        return value


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
        return _positive_int(value, info.field_name)

    @field_validator("rope_theta", "rms_norm_eps", "weights_std")
    @classmethod
    def _positive_float(cls, value: float, info) -> float:
        if not value > 0 or value != value or value == float("inf"):
            raise SpecError(f"{info.field_name.replace('_', '-')} must be a positive number, got {value}")
        return value

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: int) -> int:
        if not 0 <= value < 2**63:
            raise SpecError(f"seed must be between 0 and 2**63-1, got {value}")
        return value

    @model_validator(mode="after")
    def _check_shapes(self) -> Spec:
        if self.hidden_size % self.num_heads:
            raise SpecError(
                f"hidden-size {self.hidden_size} is not divisible by num-heads {self.num_heads}:"
                " choose sizes where hidden-size = num-heads x head-dim"
            )
        if self.encoder:
            self._check_encoder()
        if self.num_heads % self.num_kv_heads:
            raise SpecError(
                f"num-heads {self.num_heads} is not divisible by num-kv-heads {self.num_kv_heads}:"
                " grouped-query attention needs a whole number of query heads per kv head"
            )
        if self.resolved_head_dim % 2 and not self.encoder:
            raise SpecError(
                f"head-dim {self.resolved_head_dim} is odd: rotary embeddings rotate pairs, use an even head-dim"
            )
        minimum = facts.MIN_VOCAB_SIZE + (1 if self.multimodal else 0)
        if self.encoder:
            minimum = facts.MIN_ENCODER_VOCAB_SIZE
        if self.vocab_size < minimum and self.encoder:
            raise SpecError(
                f"vocab-size {self.vocab_size} is too small: the WordPiece tokenizer needs at least {minimum}"
                " (its special tokens and the characters of its corpus)"
            )
        if self.vocab_size < minimum:
            what = "256 bytes + special tokens" + (" + the image token" if self.multimodal else "")
            raise SpecError(
                f"vocab-size {self.vocab_size} is too small: the byte-level tokenizer needs at least {minimum} ({what})"
            )
        if self.moe and self.multimodal:
            raise SpecError("--moe with --multimodal is not supported yet: generate one or the other")
        self._check_rope()
        self._check_layer_types()
        model_types, classes = native_names()
        if self.names.model_type in model_types:
            raise SpecError(
                f"model_type {self.names.model_type!r} already exists in transformers: vLLM and SGLang would run their"
                " native implementation instead of yours; choose another name"
            )
        for cls_name in self.names.classes:
            if cls_name in classes:
                raise SpecError(
                    f"class {cls_name!r} already exists in transformers: the engines would run their native"
                    " implementation instead of yours; choose another name"
                )
        return self

    def _check_encoder(self) -> None:
        if self.num_kv_heads != self.num_heads:
            raise SpecError(
                f"num-kv-heads {self.num_kv_heads} differs from num-heads {self.num_heads}: an encoder uses full"
                " multi-head attention, drop --num-kv-heads"
            )
        if self.head_dim is not None and self.head_dim * self.num_heads != self.hidden_size:
            raise SpecError(
                f"head-dim {self.head_dim} x num-heads {self.num_heads} is not hidden-size {self.hidden_size}:"
                " an encoder's heads split the hidden size, drop --head-dim"
            )

    def _check_layer_types(self) -> None:
        if self.layer_types is None:
            if self.sliding_window is not None:
                raise SpecError("sliding-window needs layer types: add --layer-types sliding (or e.g. sliding,full)")
            return
        unknown = sorted(set(self.layer_types) - set(facts.LAYER_TYPES))
        if unknown:
            raise SpecError(
                f"unknown layer type {unknown[0]!r}: use sliding or full (e.g. --layer-types sliding,full)"
            )
        if len(self.layer_types) != self.num_layers:
            raise SpecError(
                f"layer-types names {len(self.layer_types)} layers but the model has {self.num_layers}:"
                " give one type per layer, or a pattern with --layer-types"
            )
        if facts.SLIDING_ATTENTION in self.layer_types and self.sliding_window is None:
            raise SpecError("sliding layers need a window: add --sliding-window N")
        if facts.SLIDING_ATTENTION not in self.layer_types and self.sliding_window is not None:
            raise SpecError("sliding-window is set but no layer slides: add sliding to --layer-types")
        if self.sliding_window is not None and self.sliding_window >= self.max_position_embeddings:
            raise SpecError(
                f"sliding-window {self.sliding_window} is not below max-position-embeddings"
                f" {self.max_position_embeddings}: such a window never slides; drop it or make it smaller"
            )

    def _check_rope(self) -> None:
        scaling = self.rope_scaling or {}
        rope_type = scaling.get("rope_type", "default")
        if rope_type not in ROPE_TYPES:
            raise SpecError(f"unknown rope scaling {rope_type!r}: choose one of {', '.join(ROPE_TYPES)}")
        required, optional = ROPE_TYPES[rope_type]
        given = set(scaling) - {"rope_type"}
        if "rope_theta" in given:
            raise SpecError("give the RoPE base with --rope-theta, not inside --rope-parameters")
        missing = sorted(required - given - set(ROPE_DEFAULTS.get(rope_type, {})))
        if missing:
            raise SpecError(
                f"rope scaling {rope_type!r} needs {', '.join(missing)}: give it with --rope-factor,"
                " --rope-original-max-position-embeddings or --rope-parameters '{...}'"
            )
        unknown = sorted(given - required - optional)
        if unknown:
            raise SpecError(
                f"rope scaling {rope_type!r} takes no {unknown[0]!r}: it takes {', '.join(sorted(required | optional))}"
            )
        params = self.rope_parameters
        factor = params.get("factor")
        if factor is not None and (isinstance(factor, bool) or not isinstance(factor, int | float) or factor < 1):
            raise SpecError(f"rope factor must be a number >= 1, got {factor!r}")
        original = params.get("original_max_position_embeddings")
        if original is not None and (
            isinstance(original, bool)
            or not isinstance(original, int)
            or not 0 < original < self.max_position_embeddings
        ):
            raise SpecError(
                f"rope original-max-position-embeddings must be a whole number below max-position-embeddings"
                f" {self.max_position_embeddings}, got {original!r}"
            )
        for key in ("short_factor", "long_factor"):
            value = params.get(key)
            if value is not None and (
                not isinstance(value, list)
                or len(value) != self.resolved_head_dim // 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            ):
                raise SpecError(
                    f"rope {key} must be a list of {self.resolved_head_dim // 2} numbers (head-dim / 2), got {value!r}"
                )
        for key in ("low_freq_factor", "high_freq_factor", "attention_factor", "beta_fast", "beta_slow"):
            value = params.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise SpecError(f"rope {key} must be a number, got {value!r}")
        if rope_type == "llama3" and params["high_freq_factor"] <= params["low_freq_factor"]:
            raise SpecError("rope high_freq_factor must be larger than low_freq_factor")

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
        scaling = dict(self.rope_scaling or {})
        rope_type = scaling.pop("rope_type", "default")
        return {"rope_type": rope_type, "rope_theta": self.rope_theta, **ROPE_DEFAULTS.get(rope_type, {}), **scaling}

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
            for key in _DECODER_UNUSED:
                answers.pop(key, None)
            answers.update(arch="encoder", **self.encoder.model_dump())
        return answers


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


def _expand_layer_types(value: Any, num_layers: int) -> Any:
    """`sliding,full` (or a list) -> one canonical type per layer, the pattern repeated over the layers."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) for v in value):
        raise SpecError("layer-types must be a comma-separated list of sliding/full, e.g. `sliding,full`")
    pattern = [_LAYER_TYPE_ALIASES.get(v, v) for v in value]
    if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers <= 0:
        return tuple(pattern)  # the size check reports the bad num_layers
    return tuple(pattern[i % len(pattern)] for i in range(num_layers))


def _nest(
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


def build_spec(answers: dict[str, Any]) -> Spec:
    """Merge a preset with explicit answers (None means 'not given') and validate. Raises SpecError."""
    answers = {k: v for k, v in answers.items() if v is not None}
    preset = answers.get("preset", DEFAULT_PRESET)
    if preset not in PRESETS:
        raise SpecError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    merged = {**PRESETS[preset], **answers, "preset": preset}
    arch = merged.pop("arch", "decoder")
    if arch not in ("decoder", "encoder"):
        raise SpecError(f"unknown arch {arch!r}: choose decoder or encoder")
    if arch == "encoder":
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
        merged["layer_types"] = _expand_layer_types(merged["layer_types"], merged.get("num_layers"))
    try:
        merged["vision"] = _nest(merged, "multimodal", VISION_FIELDS, VISION_DEFAULTS)
        merged["moe"] = _nest(merged, "moe", MOE_FIELDS, MOE_DEFAULTS)
        merged["encoder"] = _nest(merged, "encoder", ENCODER_FIELDS, ENCODER_DEFAULTS, "--arch encoder")
        return Spec(**merged)
    except ValidationError as err:
        raise SpecError(_format_validation_error(err)) from None
