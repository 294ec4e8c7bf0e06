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
