"""The default decoder is Llama: same state-dict keys, bit-identical logits, hidden states, attentions and greedy
`generate()` tokens as transformers' own `LlamaForCausalLM` loading the same safetensors (an independent reference
implementation), for every RoPE type transformers supports."""

import json

import pytest
import torch
from references import SPY, assert_same_keywords, attention_keywords, decoder_fields, padded_batch
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, LlamaConfig, LlamaForCausalLM

from tf_scaffold import commands

# `--rope-scaling` answers, each with a max_position_embeddings of 128 and an original context of 64, so that a
# 160-token input runs past both (dynamic rescales past the former, longrope and yarn past the latter).
ROPE_SCALINGS = {
    "default": None,
    "linear": {"rope_type": "linear", "factor": 4.0},
    "dynamic": {"rope_type": "dynamic", "factor": 4.0},
    "yarn": {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 64},
    "longrope": {
        "rope_type": "longrope",
        "short_factor": [1.0 + i / 64 for i in range(32)],
        "long_factor": [1.0 + i / 8 for i in range(32)],
        "original_max_position_embeddings": 64,
        "factor": 2.0,
    },
    "llama3": {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 64},
}
LONG = 160


def llama_config(repo) -> LlamaConfig:
    return LlamaConfig(**decoder_fields(json.loads((repo / "config.json").read_text()), "intermediate_size"))


def load_pair(repo, impl="eager"):
    ours = AutoModelForCausalLM.from_pretrained(
        repo, trust_remote_code=True, attn_implementation=impl, dtype=torch.float32
    ).eval()
    ref = LlamaForCausalLM.from_pretrained(
        repo, config=llama_config(repo), attn_implementation=impl, dtype=torch.float32
    ).eval()
    return ours, ref


@pytest.fixture(scope="module")
def rope_repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("rope")
    return {
        name: commands.new(
            {"name": f"rope-{name}", "max_position_embeddings": 128, "rope_scaling": scaling}, root
        ).path
        for name, scaling in ROPE_SCALINGS.items()
    }


def test_state_dict_keys_equal_llama(tiny_repo):
    ours = AutoModelForCausalLM.from_pretrained(tiny_repo, trust_remote_code=True)
    with torch.device("meta"):
        ref = LlamaForCausalLM(llama_config(tiny_repo))
    assert sorted(ours.state_dict()) == sorted(ref.state_dict())
    for key, value in ref.state_dict().items():
        assert ours.state_dict()[key].shape == value.shape, key


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_logits_bit_exact_against_llama(tiny_repo, impl):
    ours, ref = load_pair(tiny_repo, impl)
    assert type(ours).__name__ == "AcmeLmForCausalLM"
    ids, mask = padded_batch(ours.config.vocab_size)
    with torch.no_grad():
        a = ours(input_ids=ids, attention_mask=mask).logits
        b = ref(input_ids=ids, attention_mask=mask).logits
    assert (a - b).abs().max().item() == 0.0
    # and the comparison is not vacuous: the logits are real numbers that differ across positions
    assert torch.isfinite(a).all() and a.std() > 0


def test_hidden_states_and_attentions_equal_llama(tiny_repo):
    ours, ref = load_pair(tiny_repo, "eager")
    ids, mask = padded_batch(ours.config.vocab_size)
    with torch.no_grad():
        a = ours(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        b = ref(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    assert len(a.hidden_states) == len(b.hidden_states) == ours.config.num_hidden_layers + 1
    assert len(a.attentions) == len(b.attentions) == ours.config.num_hidden_layers
    for x, y in zip(a.hidden_states + a.attentions, b.hidden_states + b.attentions, strict=True):
        assert torch.equal(x, y)


def test_generate_equals_llama_generate(tiny_repo):
    ours, ref = load_pair(tiny_repo, "sdpa")
    ids, mask = padded_batch(ours.config.vocab_size, length=12)
    for rows in (slice(0, 1), slice(2, 3), slice(0, 3)):  # two single prompts, then the left-padded batch
        kwargs = dict(attention_mask=mask[rows], do_sample=False, max_new_tokens=16, min_new_tokens=16)
        a = ours.generate(ids[rows], **kwargs)
        b = ref.generate(ids[rows], **kwargs)
        assert torch.equal(a, b)
        assert len(set(a[0, 12:].tolist())) > 1  # not a degenerate repetition of one token


@pytest.mark.parametrize("rope", list(ROPE_SCALINGS))
def test_every_rope_type_is_bit_exact_against_llama(rope_repos, rope):
    repo = rope_repos[rope]
    saved = json.loads((repo / "config.json").read_text())["rope_parameters"]
    assert saved["rope_type"] == rope
    ours, ref = load_pair(repo)
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(3, ours.config.vocab_size, (1, LONG), generator=g)
    with torch.no_grad():
        a = ours(input_ids=ids).logits
        b = ref(input_ids=ids).logits
    assert (a - b).abs().max().item() == 0.0
    # the scaling is real: past the original context the positions differ from the default RoPE's
    if rope != "default":
        default, _ = load_pair(rope_repos["default"])
        with torch.no_grad():
            c = default(input_ids=ids).logits
        assert (a[0, 64:] - c[0, 64:]).abs().max() > 1e-3


def test_attention_function_receives_llamas_keywords(tiny_repo):
    """What the attention function is called with equals `LlamaAttention`'s: transformers' flash attention finds
    packed sequences (padding-free training) by `position_ids` in those keywords."""
    ours = AutoModelForCausalLM.from_pretrained(tiny_repo, trust_remote_code=True, attn_implementation=SPY)
    ref = LlamaForCausalLM(llama_config(tiny_repo)).eval()
    ref.set_attn_implementation(SPY)
    ids, mask = padded_batch(ours.config.vocab_size, length=8)
    theirs = attention_keywords(ref, input_ids=ids, attention_mask=mask)
    assert all(layer["position_ids"] and layer["use_cache"] for layer in theirs)
    assert_same_keywords(attention_keywords(ours.eval(), input_ids=ids, attention_mask=mask), theirs)


def test_vlm_text_attention_receives_llamas_keywords(tiny_vl_repo):
    """The multimodal repo's decoder (`language_model`) is the same Llama decoder: its attention calls get the same
    keywords as `LlamaAttention`'s, with and without an image in the prompt."""
    ours = AutoModelForImageTextToText.from_pretrained(
        tiny_vl_repo, trust_remote_code=True, attn_implementation=SPY
    ).eval()
    text = json.loads((tiny_vl_repo / "config.json").read_text())["text_config"]
    ref = LlamaForCausalLM(LlamaConfig(**decoder_fields(text, "intermediate_size"))).eval()
    ref.set_attn_implementation(SPY)
    ids, mask = padded_batch(text["vocab_size"], length=8)
    theirs = attention_keywords(ref, input_ids=ids, attention_mask=mask)
    assert_same_keywords(attention_keywords(ours.model.language_model, input_ids=ids, attention_mask=mask), theirs)
    vision = ours.config.vision_config
    n = (vision.image_size // vision.patch_size) ** 2
    image_ids = torch.tensor([[1, *[ours.config.image_token_id] * n, 40, 41]])
    pixels = torch.zeros(1, 3, vision.image_size, vision.image_size)
    assert_same_keywords(attention_keywords(ours, input_ids=image_ids, pixel_values=pixels), theirs)
