"""The model loads offline through the Auto classes, generates, and its attention and KV cache are consistent."""

import math

import pytest
import torch
from conformance import generate_mismatch
from transformers import AutoConfig, AutoModel, {{ cookiecutter.head_auto_class }}, AutoTokenizer, DynamicCache

ATOL = 1e-5


@pytest.fixture(scope="module")
def model(repo, needs_weights):
    model = {{ cookiecutter.head_auto_class }}.from_pretrained(
        repo, trust_remote_code=True, dtype=torch.float32
    )
    return model.eval()


@pytest.fixture(scope="module")
def tokenizer(repo):
    return AutoTokenizer.from_pretrained(repo)


def test_auto_classes_resolve_to_this_repo(repo, config_json):
    config = AutoConfig.from_pretrained(repo, trust_remote_code=True)
    auto_map = config_json["auto_map"]
    assert type(config).__name__ == auto_map["AutoConfig"].split(".")[-1]
    assert config.model_type == config_json["model_type"]
    with torch.device("meta"):
        base = AutoModel.from_config(config, trust_remote_code=True)
        head = {{ cookiecutter.head_auto_class }}.from_config(config, trust_remote_code=True)
    # The engines build only the base model; the head class must wrap exactly that base model.
    assert type(base).__name__ == auto_map["AutoModel"].split(".")[-1]
    assert (
        type(head).__name__
        == auto_map["{{ cookiecutter.head_auto_class }}"].split(".")[-1]
        == config_json["architectures"][0]
    )
    assert type(head.model) is type(base)


def test_checkpoint_matches_model(repo, needs_weights):
    _model, info = {{ cookiecutter.head_auto_class }}.from_pretrained(
        repo, trust_remote_code=True, output_loading_info=True
    )
    assert not info["missing_keys"], info["missing_keys"]
    assert not info["unexpected_keys"], info["unexpected_keys"]
    assert not info["mismatched_keys"], info["mismatched_keys"]


def test_tokenizer_matches_config(tokenizer, text_config_json):
    assert tokenizer.pad_token_id == text_config_json["pad_token_id"]
    assert tokenizer.bos_token_id == text_config_json["bos_token_id"]
    assert tokenizer.eos_token_id == text_config_json["eos_token_id"]
    assert len(tokenizer) <= text_config_json["vocab_size"]
    text = "Backend-ready models run in vLLM and SGLang. Ünïcödé ✓"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_chat_template_and_generate(model, tokenizer):
    messages = [{"role": "user", "content": "Hello, who are you?"}]
    prompt = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**prompt, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    assert out.shape == (1, prompt["input_ids"].shape[1] + 8)
    assert torch.equal(out[0, : prompt["input_ids"].shape[1]], prompt["input_ids"][0])


def test_rotary_buffer_restored_after_loading(model, text_config_json):
    # `inv_freq` is non-persistent: built on the meta device it is garbage unless `_init_weights` restores it.
    dim = text_config_json["head_dim"]
    theta = text_config_json["rope_parameters"]["rope_theta"]
    expected = torch.tensor(
        [1.0 / theta ** (i / dim) for i in range(0, dim, 2)], dtype=torch.float64
    )
    torch.testing.assert_close(
        model.get_decoder().rotary_emb.inv_freq.double(), expected, rtol=1e-6, atol=0
    )


def _padded_batch(vocab_size, pad_id):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab_size, (2, 12), generator=g)
    mask = torch.ones_like(ids)
    ids[1, :5] = pad_id  # left padding, as `generate()` uses
    mask[1, :5] = 0
    return ids, mask


@pytest.mark.parametrize("other", ["sdpa"])
def test_eager_and_sdpa_agree_on_non_pad_positions(
    repo, needs_weights, text_config_json, other
):
    ids, mask = _padded_batch(
        text_config_json["vocab_size"], text_config_json["pad_token_id"]
    )
    logits = {}
    for impl in ("eager", other):
        m = {{ cookiecutter.head_auto_class }}.from_pretrained(
            repo, trust_remote_code=True, attn_implementation=impl
        ).eval()
        assert m.config._attn_implementation == impl
        with torch.no_grad():
            logits[impl] = m(input_ids=ids, attention_mask=mask).logits
    keep = mask.bool()
    torch.testing.assert_close(
        logits["eager"][keep], logits[other][keep], atol=ATOL, rtol=0
    )
    assert torch.isfinite(logits["eager"][keep]).all()


def test_kv_cache_decoding_equals_full_forward(model, text_config_json):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, text_config_json["vocab_size"], (2, 10), generator=g)
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        full = model(input_ids=ids, use_cache=False).logits
        prefix = 4
        steps = [model(input_ids=ids[:, :prefix], cache=cache, use_cache=True).logits]
        for t in range(prefix, ids.shape[1]):
            steps.append(model(input_ids=ids[:, t : t + 1], cache=cache, use_cache=True).logits)
    assert cache.get_seq_length() == ids.shape[1]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=ATOL, rtol=0)


@pytest.mark.parametrize("rows", ["one prompt", "left-padded batch"])
def test_generate_equals_greedy_decoding_without_cache(model, text_config_json, rows):
    # `generate()` of the installed transformers drives the KV cache (it passes it as `cache` from 5.24 on and as
    # `past_key_values` before): its tokens must be those of re-running the whole sequence at every step.
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(3, text_config_json["vocab_size"], (1 if rows == "one prompt" else 2, 9), generator=g)
    mask = torch.ones_like(ids)
    if rows == "left-padded batch":
        ids[1, :3], mask[1, :3] = text_config_json["pad_token_id"], 0
    problem = generate_mismatch(model, ids, mask, max_new_tokens=10)
    assert problem is None, problem


def test_hidden_states_and_attentions_are_returned(repo, needs_weights, text_config_json):
    model = {{ cookiecutter.head_auto_class }}.from_pretrained(repo, trust_remote_code=True, attn_implementation="eager")
    ids = torch.tensor([[1, 40, 41, 42, 43]])
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True, output_attentions=True)
    layers, heads = text_config_json["num_hidden_layers"], text_config_json["num_attention_heads"]
    assert len(out.hidden_states) == layers + 1  # the embeddings, then one per layer
    assert len(out.attentions) == layers
    assert out.attentions[0].shape == (1, heads, 5, 5)
    torch.testing.assert_close(out.attentions[0].sum(-1), torch.ones(1, heads, 5), atol=1e-5, rtol=0)


def test_attention_scaling_is_inverse_sqrt_head_dim(model, text_config_json):
    attn = model.get_decoder().layers[0].self_attn
    assert math.isclose(attn.scaling, text_config_json["head_dim"] ** -0.5)
