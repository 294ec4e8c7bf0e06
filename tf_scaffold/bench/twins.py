"""The in-library twin of a generated decoder, as the engines implement it natively: a copy of the repo (same
safetensors, same tokenizer) whose config.json names the twin's architecture and model type instead of the custom
code, so that vLLM and SGLang load their own implementation of that model."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from tf_scaffold import record
from tf_scaffold.errors import ScaffoldError

# architecture -> model type, for the twins the generated decoders have (tests/test_twin_equivalence.py proves each
# bit-exact with its generated counterpart) and which vLLM and SGLang both implement natively
TWINS = {
    "LlamaForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "MinistralForCausalLM": "ministral",
}


@dataclass(frozen=True)
class Twin:
    architecture: str | None
    reason: str  # why this twin, or why there is none

    @property
    def model_type(self) -> str | None:
        return TWINS.get(self.architecture) if self.architecture else None


def twin_for(repo: Path, native: str | None = None) -> Twin:
    """The twin of `repo`: `native` when given ("none": no native side), else read from the answers a generated
    repo keeps in `.tf-scaffold.json`."""
    if native is not None:
        if native.lower() == "none":
            return Twin(None, "--native none")
        if native not in TWINS:
            raise ScaffoldError(f"--native {native}: choose one of {', '.join(TWINS)}, or none")
        return Twin(native, f"--native {native}")
    saved = record.load(repo)
    if saved is None:
        return Twin(None, f"not a tf-scaffold repo (no readable {record.NAME}): name its twin with --native ARCH")
    answers = saved["answers"]
    if answers.get("multimodal"):
        return Twin(None, "no in-library twin for a multimodal repo: its vision tower is tf-scaffold's own design")
    if answers.get("arch", "decoder") != "decoder":
        return Twin(None, f"no generating twin for an {answers['arch']} repo")
    if answers.get("moe"):
        return Twin("Qwen3MoeForCausalLM", "--moe is Qwen3-MoE's design")
    if answers.get("qk_norm") and answers.get("attention_bias"):
        return Twin(None, "--qk-norm with --attention-bias has no in-library twin (Qwen3's bias covers o_proj too)")
    if answers.get("qk_norm"):
        return Twin("Qwen3ForCausalLM", "--qk-norm is Qwen3's design")
    if answers.get("attention_bias"):
        return Twin("Qwen2ForCausalLM", "--attention-bias is Qwen2's design")
    if answers.get("sliding_window"):
        return Twin("MinistralForCausalLM", "a sliding window over alternate layers is Ministral's design")
    return Twin("LlamaForCausalLM", "the default decoder is Llama's design")


def twin_config(config: dict, twin: Twin) -> dict:
    """`config` (a generated decoder's config.json) rewritten for the twin's own config class."""
    cfg = {k: v for k, v in config.items() if k != "auto_map"}
    cfg.update(architectures=[twin.architecture], model_type=twin.model_type)
    window = cfg.get("sliding_window")
    if twin.model_type in ("qwen2", "qwen3", "qwen3_moe"):
        # these switch the window on with a flag
        cfg["use_sliding_window"] = window is not None
    if twin.model_type == "qwen3_moe":
        cfg.update(decoder_sparse_step=1, mlp_only_layers=[])  # every layer sparse, as generated
        cfg.setdefault("intermediate_size", 2 * cfg["moe_intermediate_size"])  # for dense layers, of which none
    if twin.model_type in ("qwen2", "qwen3") and "layer_types" not in cfg:
        cfg["layer_types"] = ["full_attention"] * cfg["num_hidden_layers"]
    return cfg


def native_copy(repo: Path, dest: Path, twin: Twin) -> Path:
    """A copy of `repo` at `dest` that the engines load natively as `twin`: weights and tokenizer, no custom code."""
    shutil.copytree(repo, dest, ignore=shutil.ignore_patterns("*.py", "tests", "__pycache__", record.NAME))
    config = json.loads((repo / "config.json").read_text())
    (dest / "config.json").write_text(json.dumps(twin_config(config, twin), indent=2) + "\n")
    return dest
