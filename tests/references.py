"""What the bit-exactness tests share: the decoder fields every in-library twin takes from a generated config.json,
and the inputs they compare on."""

import torch

# The fields a generated decoder's config.json and its in-library twin (Llama, Qwen2, Qwen3, Qwen3-MoE, Ministral)
# share under the same names.
DECODER_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "max_position_embeddings",
    "rms_norm_eps",
    "rope_parameters",
    "tie_word_embeddings",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
)


def decoder_fields(cfg: dict, *extra: str) -> dict:
    """The shared fields of a config.json (and `extra` ones), as keyword arguments of the twin's config class."""
    return {key: cfg[key] for key in (*DECODER_FIELDS, *extra)}


def padded_batch(vocab_size: int, length: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """Three random prompts of `length` ids, the second left-padded by 7, with their attention mask."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab_size, (3, length), generator=g)
    mask = torch.ones_like(ids)
    ids[1, :7], mask[1, :7] = 0, 0  # left padding on one row
    return ids, mask


SPY = "keyword_spy"  # an attention implementation that records what each attention call receives


def _register_spy():
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def spy(module, query, key, value, attention_mask, **kwargs):
        module._seen_keywords = {name: value is not None for name, value in kwargs.items()}
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register(SPY, spy)
    AttentionMaskInterface.register(SPY, sdpa_mask)


def attention_keywords(model, **inputs) -> list[dict[str, bool]]:
    """The keyword arguments each self-attention layer's attention function receives in one forward of `model` (built
    with `attn_implementation=SPY`): one {keyword: given a value (not None)} per layer, in layer order."""
    layers = [m for m in model.modules() if isinstance(getattr(m, "layer_idx", None), int) and hasattr(m, "is_causal")]
    for layer in layers:
        layer._seen_keywords = None
    with torch.no_grad():
        model(**inputs)
    seen = [layer._seen_keywords for layer in layers]
    assert seen and None not in seen, f"some attention layers were not called through the interface: {seen}"
    return seen


def assert_same_keywords(ours: list[dict[str, bool]], twin: list[dict[str, bool]]) -> None:
    """Layer by layer, the attention function gets a value for the same keywords from both models, and nothing the
    twin does not pass at all (the twin may pass a keyword as None, which every attention function reads as absent:
    Qwen2/Qwen3 pass `sliding_window=None` on full-attention layers, BERT `encoder_hidden_states=None`)."""
    assert len(ours) == len(twin)
    for i, (a, b) in enumerate(zip(ours, twin, strict=True)):
        given_a, given_b = {k for k, v in a.items() if v}, {k for k, v in b.items() if v}
        assert given_a == given_b, f"layer {i}: ours {sorted(given_a)}, the twin {sorted(given_b)}"
        assert set(a) <= set(b), f"layer {i}: ours passes {sorted(set(a) - set(b))}, which the twin does not"


_register_spy()
