"""The attention probe the dynamic checks register in transformers' attention interface, and the stand-ins they use
to call the model the way the engines do."""

from __future__ import annotations

PROBE = "tfs_probe"  # registered with a mask function: transformers builds the usual causal/padding mask
ENGINE = "tfs_engine"  # registered without one: mask is None, as with the engines' own attention


class Probe:
    """An attention function that records its calls and computes attention in plain torch: causal, or bidirectional
    for a module whose `is_causal` is False, as the engines read it (`getattr(module, "is_causal", True)`).

    `tfs_segments` (a 1-D tensor of segment ids, passed as a kwarg to the base model's forward) restricts attention
    to tokens of the same packed sequence, as the engines do with their metadata.
    """

    def __init__(self):
        self.calls: list[tuple] = []

    def __call__(
        self,
        module,
        query,
        key,
        value,
        attention_mask,
        scaling=None,
        dropout=0.0,
        **kwargs,
    ):
        import torch

        self.calls.append((getattr(module, "layer_idx", None), kwargs.get("tfs_sentinel")))
        cache = kwargs.get("tfs_cache")  # an engine-style cache: the probe keeps K/V per layer
        if cache is not None:
            idx = module.layer_idx
            if idx in cache:
                key = torch.cat([cache[idx][0], key], dim=2)
                value = torch.cat([cache[idx][1], value], dim=2)
            cache[idx] = (key, value)
        b, h, t, d = query.shape
        s = key.shape[2]
        rep = h // key.shape[1]
        key = key.repeat_interleave(rep, dim=1)
        value = value.repeat_interleave(rep, dim=1)
        scores = torch.matmul(query, key.transpose(2, 3)) * (scaling if scaling is not None else d**-0.5)
        rows = torch.arange(t, device=query.device)[:, None] + (s - t)
        allowed = torch.arange(s, device=query.device)[None, :] <= rows
        if not getattr(module, "is_causal", True):
            allowed = torch.ones_like(allowed)
        segments = kwargs.get("tfs_segments")
        if segments is not None:
            allowed = allowed & (segments[-t:, None] == segments[None, :s])
        allowed = allowed[None, None].expand(b, 1, t, s)
        if attention_mask is not None and attention_mask.dtype == torch.bool:
            allowed = allowed & attention_mask[..., -s:]
        elif attention_mask is not None:
            allowed = allowed & (attention_mask[..., -s:] == 0)
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores.float(), dim=-1).to(query.dtype)
        out = torch.matmul(probs, value).transpose(1, 2).contiguous()
        return out, None


def missing_module():
    """A module that is not on this pipeline stage: passes hidden states through (as vLLM's PPMissingLayer)."""
    import torch

    class Missing(torch.nn.Module):
        def forward(self, *args, **kwargs):
            return args[0] if args else kwargs.get("hidden_states", next(iter(kwargs.values())))

    return Missing()


def register(probe: Probe) -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(PROBE, probe)
    AttentionMaskInterface.register(PROBE, sdpa_mask)
    AttentionInterface.register(ENGINE, probe)


def set_attn(model, impl: str) -> None:
    try:
        model.set_attn_implementation(impl)
    except (ValueError, AttributeError, KeyError):
        pass
    for module in model.modules():
        cfg = getattr(module, "config", None)
        if cfg is not None:
            cfg._attn_implementation = impl
