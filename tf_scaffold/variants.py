"""What each kind of repo is made of: its files, head class, harness class and parallel plans.

A new kind is a new `Kind` here plus its templates; the renderer writes exactly the files a kind declares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tf_scaffold import facts

if TYPE_CHECKING:
    from tf_scaffold.spec import Spec

# Template paths, relative to the template's `{{cookiecutter.repo_name}}` folder.
_COMMON_FILES = (
    ".gitattributes",
    "README.md",
    "ruff.toml",
    "configuration_{{cookiecutter.module_name}}.py",
    "modeling_{{cookiecutter.module_name}}.py",
    "tests/requirements.txt",
    "tests/test_{{cookiecutter.module_name}}.py",
)
# What sentence-transformers, and vLLM after it, read to pool an embedding model's output.
_POOLING_FILES = ("modules.json", "1_Pooling/config.json", "sentence_bert_config.json")
_PROCESSOR_FILES = (
    "image_processing_{{cookiecutter.module_name}}.py",
    "processing_{{cookiecutter.module_name}}.py",
)


@dataclass(frozen=True)
class Kind:
    """One kind of repo."""

    name: str
    pipeline_tag: str  # the Hub's task tag of the model card
    head_auto_class: str  # the `auto_map` key of the head model (the engines never instantiate it)
    suite_class: str  # the harness class the repo's tests declare themselves with (tf_scaffold.testing)
    files: tuple[str, ...]


CAUSAL_LM = Kind("causal-lm", "text-generation", "AutoModelForCausalLM", "CausalLMRepoTests", _COMMON_FILES)
IMAGE_TEXT_TO_TEXT = Kind(
    "image-text-to-text",
    "image-text-to-text",
    "AutoModelForImageTextToText",
    "ImageTextToTextRepoTests",
    _COMMON_FILES + _PROCESSOR_FILES,
)


# Encoders: the embedding model's checkpoint is the base model, whose auto class is `AutoModel`; the classifier's is
# the sequence classifier. Both carry both classes.
FEATURE_EXTRACTION = Kind(
    "embedding", "feature-extraction", "AutoModel", "EncoderRepoTests", _COMMON_FILES + _POOLING_FILES
)
TEXT_CLASSIFICATION = Kind(
    "classifier", "text-classification", facts.SEQUENCE_CLASSIFICATION_AUTO_CLASS, "EncoderRepoTests", _COMMON_FILES
)


def kind_of(spec: Spec) -> Kind:
    if spec.encoder:
        return FEATURE_EXTRACTION if spec.encoder.task == "embed" else TEXT_CLASSIFICATION
    return IMAGE_TEXT_TO_TEXT if spec.multimodal else CAUSAL_LM


def tp_plan(spec: Spec) -> dict[str, str]:
    """The tensor-parallel plan, keys relative to the base model (or to `language_model`)."""
    if spec.encoder:
        return dict(facts.ENCODER_TP_PLAN)
    return {
        **facts.ATTENTION_TP_PLAN,
        **(facts.QK_NORM_TP_PLAN if spec.qk_norm else {}),
        **(facts.EXPERTS_TP_PLAN if spec.moe else facts.DENSE_MLP_TP_PLAN),
    }


def vision_tp_plan(spec: Spec) -> dict[str, str]:
    return dict(facts.VISION_TP_PLAN) if spec.multimodal else {}


def decoder_summary(spec: Spec) -> str:
    """What the model is, in a few words: the docstrings and the model card say it."""
    if spec.encoder:
        task = "an embedding model" if spec.encoder.task == "embed" else "a sequence classifier"
        return f"BERT-class bidirectional encoder, served as {task}"
    base = "mixture-of-experts decoder in Qwen3-MoE's design" if spec.moe else "Llama-class decoder"
    options = [
        *(["per-head q/k RMSNorm"] if spec.qk_norm else []),
        *(["q/k/v biases"] if spec.attention_bias else []),
        *(["sliding-window attention"] if spec.sliding_window else []),
    ]
    if not options:
        return base
    return (
        f"{base} with {', '.join(options[:-1])} and {options[-1]}" if len(options) > 1 else f"{base} with {options[0]}"
    )


def decoder_parts(spec: Spec) -> str:
    """The decoder's building blocks, for the config docstring."""
    mlp = f"{spec.moe.num_experts} routed SiLU experts per layer" if spec.moe else "gated SiLU MLP"
    return f"RMSNorm, RoPE, grouped-query attention, {mlp}"


def num_parameters(spec: Spec) -> int:
    """Parameters of the checkpoint's model, counted from the shapes the templates build (tied weights once)."""
    if spec.encoder:
        return _encoder_parameters(spec)
    h, d = spec.hidden_size, spec.resolved_head_dim
    attn = h * d * (spec.num_heads * 2 + spec.num_kv_heads * 2)
    if spec.attention_bias:
        attn += d * (spec.num_heads + 2 * spec.num_kv_heads)
    if spec.qk_norm:
        attn += 2 * d
    if spec.moe:
        mlp = spec.moe.num_experts * (3 * h * spec.moe.moe_intermediate_size + h)
    else:
        mlp = 3 * h * spec.intermediate_size
    per_layer = attn + mlp + 2 * h
    embed = spec.vocab_size * h
    text = embed * (1 if spec.tie_word_embeddings else 2) + spec.num_layers * per_layer + h
    if not spec.vision:
        return text
    v = spec.vision
    vh, vi, patches = v.vision_hidden_size, v.vision_intermediate_size, v.num_image_tokens
    vision_layer = 4 * (vh * vh + vh) + 2 * vh * vi + vi + vh + 4 * vh
    vision = 3 * v.patch_size**2 * vh + vh + patches * vh + v.vision_num_layers * vision_layer + 2 * vh
    projector = vh * h + h + h * h + h
    return text + vision + projector


def _encoder_parameters(spec: Spec) -> int:
    """BertModel's count (with its pooler) for an embedding model; BertForSequenceClassification's for a classifier
    (the pooler's dense layer is the head's first)."""
    h, i, enc = spec.hidden_size, spec.intermediate_size, spec.encoder
    embeddings = (spec.vocab_size + spec.max_position_embeddings + enc.type_vocab_size) * h + 2 * h
    layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 4 * h
    pooler = h * h + h
    head = enc.num_labels * h + enc.num_labels if enc.task == "classify" else 0
    return embeddings + spec.num_layers * layer + pooler + head


def warnings(spec: Spec) -> list[str]:
    """Things that work but limit where the model runs."""
    notes = []
    if spec.encoder and spec.encoder.pooling != "cls":
        notes.append(
            f"{spec.encoder.pooling} pooling: vLLM follows 1_Pooling/config.json, but SGLang pools only CLS or LAST"
            " (it reads config.pooling_type) and would serve the last token's state: use --pooling cls for SGLang"
        )
    if spec.encoder and spec.encoder.task == "classify":
        notes.append(
            "SGLang's Transformers backend never applies a classifier (its TransformersForSequenceClassification is"
            " an embedding model): it serves the pooled hidden state, not the scores; vLLM serves the scores"
        )
    if spec.resolved_head_dim not in facts.VLLM_CPU_HEAD_DIMS:
        notes.append(
            f"head_dim {spec.resolved_head_dim} is not supported by vLLM's CPU attention "
            f"({', '.join(map(str, facts.VLLM_CPU_HEAD_DIMS))}): the model serves on GPU only"
        )
    return notes
