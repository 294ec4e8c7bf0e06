"""What each engine cannot do on this machine, and the defects of released engine versions the harness states and
compares against: each a function that says why, or None when the engine can."""

from __future__ import annotations

import importlib.util

from tf_scaffold.engines import machine
from tf_scaffold.engines.machine import Platform
from tf_scaffold.facts import VLLM_CPU_HEAD_DIMS


def vllm_skip_reason(head_dim: int, platform: Platform) -> str | None:
    """None when vLLM can run this repo here, else the precise reason it cannot."""
    if importlib.util.find_spec("vllm") is None:
        return (
            "vLLM is not installed in this environment: on CPU build one with `tf-scaffold env vllm-cpu .venv-vllm` "
            "and run these tests with .venv-vllm/bin/python; on a GPU machine `pip install vllm`"
        )
    if platform.device == "cpu" and head_dim not in VLLM_CPU_HEAD_DIMS:
        return f"vLLM's CPU attention does not support head_dim {head_dim} (supported: {VLLM_CPU_HEAD_DIMS}); run on a GPU"
    return None


# The MLP widths SGLang's CPU path pads for tensor parallelism (`adjust_config_with_unaligned_cpu_tp`).
SGLANG_CPU_PADDED_WIDTHS = ("moe_intermediate_size", "intermediate_size")


def sglang_cpu_tp_reason(tp: int, text_config: dict) -> str | None:
    """Why SGLang's CPU path cannot run this decoder at tensor parallel `tp`, or None.

    On CPU SGLang pads what does not split over the ranks (`adjust_config_with_unaligned_cpu_tp`: query and key-value
    heads to a multiple of tp, the MLP and expert widths to a multiple of 32 x tp); its Transformers backend then builds
    the padded layers and cannot load the unpadded checkpoint into them ("start (64) + length (64) exceeds dimension
    size (64)").
    """
    sizes = [
        ("num_attention_heads", text_config["num_attention_heads"], tp),
        ("num_key_value_heads", text_config["num_key_value_heads"], tp),
        *((name, text_config[name], 32 * tp) for name in SGLANG_CPU_PADDED_WIDTHS if name in text_config),
    ]
    unaligned = [
        f"{name} {value} is not a multiple of {multiple}" for name, value, multiple in sizes if value % multiple
    ]
    if not unaligned:
        return None
    return (
        f"SGLang's CPU path pads the model for tensor parallel {tp} ({'; '.join(unaligned)}) and its Transformers "
        "backend cannot load the unpadded checkpoint into the padded layers: run it on GPUs, or choose sizes that split"
    )


# The import hooks `tf-scaffold env sglang-cpu` installs (see `sglang_cpu_multimodal_reason`).
SGLANG_CPU_SHIMS = "_tf_scaffold_sglang_cpu_shims"


def sglang_cpu_multimodal_reason(platform: Platform) -> str | None:
    """Why SGLang cannot serve this repo's vision tower here, or None."""
    if platform.device != "cpu" or importlib.util.find_spec(SGLANG_CPU_SHIMS) is not None:
        return None
    return (
        "SGLang 0.5.23 on CPU cannot build a vision tower: its Transformers backend materialises the parameters it did "
        "not replace (LayerNorm, convolution, position embedding) with `get_device()` (models/transformers.py, "
        "`TransformersBase._init_parameters`), which ignores device='cpu' and raises \"No accelerator ... is "
        'available". The environment `tf-scaffold env sglang-cpu` builds fixes that function; or run on a GPU'
    )


# SGLang releases whose Transformers backend windows a sliding layer one token wider than transformers: it hands
# `config.sliding_window` to `RadixAttention(sliding_window_size=...)` (models/transformers.py,
# `_create_attention_instances`), whose kernels take the window without the current token (SGLang's own Gemma and
# Mistral models pass `sliding_window - 1`). Observed on 0.5.23: its tokens equal transformers' with sliding_window + 1.
SGLANG_WINDOW_ONE_WIDER = ("0.5.23",)


def sglang_window_overrides(text_config: dict, version: str | None) -> dict:
    """The config change under which transformers computes what this SGLang release serves (empty: none needed)."""
    sliding = "sliding_attention" in (text_config.get("layer_types") or ())
    if sliding and text_config.get("sliding_window") and version in SGLANG_WINDOW_ONE_WIDER:
        return {"sliding_window": text_config["sliding_window"] + 1}
    return {}


# SGLang releases whose Transformers backend cannot run an encoder: it builds the attention of an encoder-only model
# as `RadixAttention(..., is_cross_attention=True)` (models/transformers.py, `_create_attention_instances`), not with
# `attn_type=AttentionType.ENCODER_ONLY` as its native BERT does, and the attention backend then stores K/V at
# `forward_batch.encoder_out_cache_loc`, which an embedding request does not have. Observed on 0.5.23 (CPU,
# torch_native attention): the first request fails with this error and the scheduler dies.
SGLANG_ENCODER_DEFECT = {"0.5.23": "The expanded size of the tensor"}


def sglang_encoder_defect(version: str | None) -> str | None:
    """The error this SGLang release is known to fail an encoder with, or None."""
    return SGLANG_ENCODER_DEFECT.get(version or "")


def sglang_skip_reason(platform: Platform) -> str | None:
    if importlib.util.find_spec("sglang") is None:
        return (
            "SGLang is not installed in this environment: on CPU build one with `tf-scaffold env sglang-cpu "
            ".venv-sglang` and run these tests with .venv-sglang/bin/python; on a GPU machine `pip install sglang`"
        )
    return None


def engine_skip_reason(engine: str, platform: Platform, text_config: dict, tp: int = 1) -> str | None:
    """Why `engine` ("vllm" or "sglang") cannot run the decoder of `text_config` (config.json's decoder part) here
    with tensor parallelism `tp`, or None."""
    if engine == "vllm":
        reason = vllm_skip_reason(text_config["head_dim"], platform)
    else:
        reason = sglang_skip_reason(platform)
    if reason is not None or tp == 1:
        return reason
    if text_config["num_attention_heads"] % tp:
        return f"{text_config['num_attention_heads']} attention heads cannot be split over tensor parallel {tp}"
    if platform.device == "cuda":
        if platform.gpus < tp:
            return f"tensor parallel {tp} needs {tp} GPUs; {platform.gpus} visible"
        return None
    if len(machine.cpu_cores()) < tp:
        return f"the engines' CPU paths run one rank per core group: tensor parallel {tp} needs {tp} cores, {len(machine.cpu_cores())} here"
    if engine == "sglang":
        return sglang_cpu_tp_reason(tp, text_config)
    return None
