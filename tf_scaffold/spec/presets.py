"""Presets: named sets of size answers that `--preset` starts from, and the answers that are sizes."""

from __future__ import annotations

from typing import Any

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
# Presets of a decoder's shape only: an encoder refuses them (its WordPiece tokenizer fills a small vocabulary).
DECODER_PRESETS = ("llama-3.2-1b",)
