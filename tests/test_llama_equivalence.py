"""The default decoder is Llama: same state-dict keys and bit-identical logits as transformers' LlamaForCausalLM
loading the same safetensors (an independent reference implementation)."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM


def llama_config(repo) -> LlamaConfig:
    cfg = json.loads((repo / "config.json").read_text())
    return LlamaConfig(
        vocab_size=cfg["vocab_size"],
        hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg["num_key_value_heads"],
        head_dim=cfg["head_dim"],
        max_position_embeddings=cfg["max_position_embeddings"],
        rms_norm_eps=cfg["rms_norm_eps"],
        rope_parameters=cfg["rope_parameters"],
        tie_word_embeddings=cfg["tie_word_embeddings"],
        pad_token_id=cfg["pad_token_id"],
        bos_token_id=cfg["bos_token_id"],
        eos_token_id=cfg["eos_token_id"],
    )


def test_state_dict_keys_equal_llama(tiny_repo):
    ours = AutoModelForCausalLM.from_pretrained(tiny_repo, trust_remote_code=True)
    with torch.device("meta"):
        ref = LlamaForCausalLM(llama_config(tiny_repo))
    assert sorted(ours.state_dict()) == sorted(ref.state_dict())
    for key, value in ref.state_dict().items():
        assert ours.state_dict()[key].shape == value.shape, key


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_logits_bit_exact_against_llama(tiny_repo, impl):
    ours = AutoModelForCausalLM.from_pretrained(
        tiny_repo, trust_remote_code=True, attn_implementation=impl, dtype=torch.float32
    ).eval()
    ref = LlamaForCausalLM.from_pretrained(
        tiny_repo, config=llama_config(tiny_repo), attn_implementation=impl, dtype=torch.float32
    ).eval()
    assert type(ours).__name__ == "AcmeLmForCausalLM"
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, ours.config.vocab_size, (3, 40), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :7] = 0  # left padding on one row
    with torch.no_grad():
        a = ours(input_ids=ids, attention_mask=mask).logits
        b = ref(input_ids=ids, attention_mask=mask).logits
    assert (a - b).abs().max().item() == 0.0
    # and the comparison is not vacuous: the logits are real numbers that differ across positions
    assert torch.isfinite(a).all() and a.std() > 0
