"""What each kind of repo is made of: its files, head class, harness class and parallel plans.

A new kind is a new `Kind` here plus its templates; the renderer writes exactly the files a kind declares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from scaffold import facts

if TYPE_CHECKING:
    from scaffold.spec import Spec

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
_PROCESSOR_FILES = (
    "image_processing_{{cookiecutter.module_name}}.py",
    "processing_{{cookiecutter.module_name}}.py",
)


@dataclass(frozen=True)
class Kind:
    """One kind of repo."""

    name: str
    head_auto_class: str  # the `auto_map` key of the head model (the engines never instantiate it)
    suite_class: str  # the harness class the repo's tests declare themselves with (scaffold.testing)
    files: tuple[str, ...]


CAUSAL_LM = Kind("causal-lm", "AutoModelForCausalLM", "CausalLMRepoTests", _COMMON_FILES)
IMAGE_TEXT_TO_TEXT = Kind(
    "image-text-to-text", "AutoModelForImageTextToText", "ImageTextToTextRepoTests", _COMMON_FILES + _PROCESSOR_FILES
)


def kind_of(spec: Spec) -> Kind:
    return IMAGE_TEXT_TO_TEXT if spec.multimodal else CAUSAL_LM


def tp_plan(spec: Spec) -> dict[str, str]:
    """The decoder's tensor-parallel plan, keys relative to the base model (or to `language_model`)."""
    return {
        **facts.ATTENTION_TP_PLAN,
        **(facts.QK_NORM_TP_PLAN if spec.qk_norm else {}),
        **(facts.EXPERTS_TP_PLAN if spec.moe else facts.DENSE_MLP_TP_PLAN),
    }


def vision_tp_plan(spec: Spec) -> dict[str, str]:
    return dict(facts.VISION_TP_PLAN) if spec.multimodal else {}


def decoder_summary(spec: Spec) -> str:
    """What the decoder is, in a few words: the docstrings and the model card say it."""
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
    """Parameters of the head model, counted from the shapes the templates build (tied weights once)."""
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


def warnings(spec: Spec) -> list[str]:
    """Things that work but limit where the model runs."""
    notes = []
    if spec.resolved_head_dim not in facts.VLLM_CPU_HEAD_DIMS:
        notes.append(
            f"head_dim {spec.resolved_head_dim} is not supported by vLLM's CPU attention "
            f"({', '.join(map(str, facts.VLLM_CPU_HEAD_DIMS))}): the model serves on GPU only"
        )
    return notes
