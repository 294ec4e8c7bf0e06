"""Every decoder option has an in-library twin in transformers, used here as the independent reference: the generated
repo and the twin load the same safetensors and must have the same state-dict keys, bit-identical logits (eager and
sdpa) and the same greedy `generate()` tokens, past the sliding window where there is one.

| `new` options                                   | twin                     |
|-------------------------------------------------|--------------------------|
| `--moe` (q/k norm on, as Qwen3-MoE)             | `Qwen3MoeForCausalLM`    |
| `--moe --sliding-window W --layer-types sliding`| `Qwen3MoeForCausalLM`    |
| `--qk-norm`                                     | `Qwen3ForCausalLM`       |
| `--qk-norm --sliding-window W` (sliding,full)   | `Qwen3ForCausalLM`       |
| `--attention-bias`                              | `Qwen2ForCausalLM`       |
| `--attention-bias --sliding-window W` (sliding) | `Qwen2ForCausalLM`       |
| `--sliding-window W` (sliding,full)             | `MinistralForCausalLM`   |
"""

import json

import pytest
import torch
from references import SPY, assert_same_keywords, attention_keywords, decoder_fields, padded_batch
from transformers import (
    AutoModelForCausalLM,
    MinistralConfig,
    MinistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
    Qwen3MoeConfig,
    Qwen3MoeForCausalLM,
)

from tf_scaffold import commands

WINDOW = 16
PROMPT = 40  # longer than the window: the sliding layers really drop tokens


def _window(cfg: dict) -> dict:
    """The twin's sliding-window fields for a repo config (Qwen2/Qwen3 switch the window on with a flag)."""
    if "sliding_window" not in cfg:
        return {"use_sliding_window": False, "layer_types": ["full_attention"] * cfg["num_hidden_layers"]}
    return {"use_sliding_window": True, "sliding_window": cfg["sliding_window"], "layer_types": cfg["layer_types"]}


def qwen3_moe(cfg: dict):
    # Qwen3-MoE slides every layer or none, switched on with a flag
    extra = {"use_sliding_window": "sliding_window" in cfg, "sliding_window": cfg.get("sliding_window")}
    config = Qwen3MoeConfig(
        **decoder_fields(cfg),
        intermediate_size=2 * cfg["moe_intermediate_size"],  # only for dense layers, which there are none of
        moe_intermediate_size=cfg["moe_intermediate_size"],
        num_experts=cfg["num_experts"],
        num_experts_per_tok=cfg["num_experts_per_tok"],
        norm_topk_prob=cfg["norm_topk_prob"],
        router_aux_loss_coef=cfg["router_aux_loss_coef"],
        decoder_sparse_step=1,
        mlp_only_layers=[],
        attention_bias=False,
        **extra,
    )
    return Qwen3MoeForCausalLM, config


def qwen3(cfg: dict):
    config = Qwen3Config(
        **decoder_fields(cfg), intermediate_size=cfg["intermediate_size"], attention_bias=False, **_window(cfg)
    )
    return Qwen3ForCausalLM, config


def qwen2(cfg: dict):
    return Qwen2ForCausalLM, Qwen2Config(
        **decoder_fields(cfg), intermediate_size=cfg["intermediate_size"], **_window(cfg)
    )


def ministral(cfg: dict):
    config = MinistralConfig(
        **decoder_fields(cfg),
        intermediate_size=cfg["intermediate_size"],
        sliding_window=cfg["sliding_window"],
        layer_types=cfg["layer_types"],
    )
    return MinistralForCausalLM, config


VARIANTS = {
    "moe": ({"moe": True}, qwen3_moe),
    "moe-sliding": ({"moe": True, "sliding_window": WINDOW, "layer_types": "sliding"}, qwen3_moe),
    "qk-norm": ({"qk_norm": True}, qwen3),
    "qk-norm-sliding": ({"qk_norm": True, "sliding_window": WINDOW, "layer_types": "sliding,full"}, qwen3),
    "attention-bias": ({"attention_bias": True}, qwen2),
    "attention-bias-sliding": (
        {"attention_bias": True, "sliding_window": WINDOW, "layer_types": "sliding"},
        qwen2,
    ),
    "sliding": ({"sliding_window": WINDOW, "layer_types": "sliding,full"}, ministral),
}


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("twins")
    return {
        name: commands.new({"name": f"twin-{name}", **answers}, root).path for name, (answers, _) in VARIANTS.items()
    }


def load_pair(repo, twin, impl="eager"):
    ours = AutoModelForCausalLM.from_pretrained(
        repo, trust_remote_code=True, attn_implementation=impl, dtype=torch.float32
    ).eval()
    cls, config = twin(json.loads((repo / "config.json").read_text()))
    ref = cls.from_pretrained(repo, config=config, attn_implementation=impl, dtype=torch.float32).eval()
    return ours, ref


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_state_dict_keys_equal_the_twin(repos, variant):
    repo = repos[variant]
    ours = AutoModelForCausalLM.from_pretrained(repo, trust_remote_code=True)
    cls, config = VARIANTS[variant][1](json.loads((repo / "config.json").read_text()))
    with torch.device("meta"):
        ref = cls(config)
    assert sorted(ours.state_dict()) == sorted(ref.state_dict())
    for key, value in ref.state_dict().items():
        assert ours.state_dict()[key].shape == value.shape, key


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_logits_bit_exact_against_the_twin(repos, variant, impl):
    ours, ref = load_pair(repos[variant], VARIANTS[variant][1], impl)
    ids, mask = padded_batch(ours.config.vocab_size, PROMPT)
    with torch.no_grad():
        a = ours(input_ids=ids, attention_mask=mask).logits
        b = ref(input_ids=ids, attention_mask=mask).logits
    assert (a - b).abs().max().item() == 0.0
    assert torch.isfinite(a).all() and a.std() > 0


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_generate_past_the_window_equals_the_twin(repos, variant):
    ours, ref = load_pair(repos[variant], VARIANTS[variant][1], "sdpa")
    ids, mask = padded_batch(ours.config.vocab_size, length=12)
    for rows in (slice(0, 1), slice(0, 3)):  # a single prompt, then the left-padded batch
        kwargs = dict(attention_mask=mask[rows], do_sample=False, max_new_tokens=24, min_new_tokens=24)
        a = ours.generate(ids[rows], **kwargs)
        b = ref.generate(ids[rows], **kwargs)
        assert torch.equal(a, b)
        assert len(set(a[0, 12:].tolist())) > 1  # not a degenerate repetition of one token


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_attention_function_receives_the_twins_keywords(repos, variant):
    """The keywords each attention call receives equal the twin's (`position_ids` and `use_cache` among them:
    transformers' flash attention finds packed sequences by `position_ids`; the window where there is one)."""
    repo = repos[variant]
    ours = AutoModelForCausalLM.from_pretrained(repo, trust_remote_code=True, attn_implementation=SPY).eval()
    cls, config = VARIANTS[variant][1](json.loads((repo / "config.json").read_text()))
    config._attn_implementation = SPY
    ref = cls(config).eval()
    ids, mask = padded_batch(ours.config.vocab_size, length=8)
    theirs = attention_keywords(ref, input_ids=ids, attention_mask=mask)
    assert all(layer["position_ids"] and layer["use_cache"] for layer in theirs)
    assert_same_keywords(attention_keywords(ours, input_ids=ids, attention_mask=mask), theirs)


@pytest.mark.parametrize("variant", ["qk-norm-sliding", "sliding"])
def test_the_window_changes_the_output(repos, variant):
    """The sliding layers really slide: the same weights without the window give other logits past it."""
    repo = repos[variant]
    ours = AutoModelForCausalLM.from_pretrained(repo, trust_remote_code=True, dtype=torch.float32).eval()
    unwindowed = AutoModelForCausalLM.from_pretrained(
        repo, trust_remote_code=True, dtype=torch.float32, sliding_window=10_000
    ).eval()
    ids, _ = padded_batch(ours.config.vocab_size)
    with torch.no_grad():
        a, b = ours(input_ids=ids).logits, unwindowed(input_ids=ids).logits
    assert (a[:, :WINDOW] - b[:, :WINDOW]).abs().max().item() == 0.0  # inside the window: identical
    assert (a[:, WINDOW:] - b[:, WINDOW:]).abs().max().item() > 1e-3  # past it: different


def test_combined_qk_norm_and_bias_match_qwen3_with_a_zero_output_bias(tmp_path):
    """`--qk-norm --attention-bias` is Qwen3 with `attention_bias=True`, except that Qwen3 also biases `o_proj`:
    with that bias zero the logits are bit-identical, and it is the only key the repo does not have."""
    repo = commands.new({"name": "twin-both", "qk_norm": True, "attention_bias": True}, tmp_path).path
    cfg = json.loads((repo / "config.json").read_text())
    config = Qwen3Config(
        **decoder_fields(cfg), intermediate_size=cfg["intermediate_size"], attention_bias=True, **_window(cfg)
    )
    ours = AutoModelForCausalLM.from_pretrained(repo, trust_remote_code=True, dtype=torch.float32).eval()
    ref = Qwen3ForCausalLM.from_pretrained(repo, config=config, dtype=torch.float32).eval()
    missing = sorted(set(ref.state_dict()) - set(ours.state_dict()))
    assert missing == [f"model.layers.{i}.self_attn.o_proj.bias" for i in range(cfg["num_hidden_layers"])]
    assert set(ours.state_dict()) < set(ref.state_dict())
    with torch.no_grad():
        for layer in ref.model.layers:
            layer.self_attn.o_proj.bias.zero_()
        ids, mask = padded_batch(cfg["vocab_size"])
        a = ours(input_ids=ids, attention_mask=mask).logits
        b = ref(input_ids=ids, attention_mask=mask).logits
    assert (a - b).abs().max().item() == 0.0


def test_router_sends_every_token_to_exactly_top_k_experts(repos):
    """Hooks on the experts see what the router chose: each token reaches `num_experts_per_tok` distinct experts, with
    weights that are the top-k of the softmax over the router logits, renormalised to sum to 1 (`norm_topk_prob`)."""
    repo = repos["moe"]
    model = AutoModelForCausalLM.from_pretrained(repo, trust_remote_code=True, dtype=torch.float32).eval()
    k, n = model.config.num_experts_per_tok, model.config.num_experts
    seen = []

    def record(module, args, output):
        hidden, index, weights = args
        seen.append((module, index, weights))

    for layer in model.model.layers:
        layer.mlp.experts.register_forward_hook(record)
    ids, _ = padded_batch(model.config.vocab_size)
    with torch.no_grad():
        out = model(input_ids=ids, output_router_logits=True)
    assert len(seen) == len(out.router_logits) == model.config.num_hidden_layers
    used = set()
    for (_, index, weights), logits in zip(seen, out.router_logits, strict=True):
        tokens = ids.numel()
        assert index.shape == weights.shape == (tokens, k)
        assert all(len(set(row.tolist())) == k for row in index)  # k distinct experts per token
        probs = torch.softmax(logits.float(), dim=-1)
        top = torch.topk(probs, k, dim=-1)
        assert torch.equal(index, top.indices)
        torch.testing.assert_close(weights, top.values / top.values.sum(-1, keepdim=True), rtol=0, atol=1e-7)
        torch.testing.assert_close(weights.sum(-1), torch.ones(tokens), rtol=0, atol=1e-6)
        used |= set(index.flatten().tolist())
    assert len(used) == n  # the random router spreads 120 tokens over every expert


def test_router_logits_and_aux_loss_equal_the_twin(repos):
    ours, ref = load_pair(repos["moe"], qwen3_moe)
    ids, mask = padded_batch(ours.config.vocab_size, PROMPT)
    labels = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        a = ours(input_ids=ids, attention_mask=mask, labels=labels, output_router_logits=True)
        b = ref(input_ids=ids, attention_mask=mask, labels=labels, output_router_logits=True)
    assert len(a.router_logits) == len(b.router_logits) == ours.config.num_hidden_layers
    for x, y in zip(a.router_logits, b.router_logits, strict=True):
        assert torch.equal(x, y)
    assert a.aux_loss.item() > 0
    torch.testing.assert_close(a.aux_loss, b.aux_loss, rtol=0, atol=1e-6)
    torch.testing.assert_close(a.loss, b.loss, rtol=0, atol=1e-6)
    with torch.no_grad():
        plain = ours(input_ids=ids, attention_mask=mask)
    assert plain.aux_loss is None and plain.router_logits is None  # off unless asked for, as upstream


def test_dense_configs_carry_no_moe_keys(repos):
    from tf_scaffold.facts import MOE_CONFIG_KEYS

    for variant, repo in repos.items():
        keys = set(json.loads((repo / "config.json").read_text()))
        if variant.startswith("moe"):
            assert {"num_experts", "num_experts_per_tok", "moe_intermediate_size", "norm_topk_prob"} <= keys
            assert "intermediate_size" not in keys
        else:
            assert not keys & set(MOE_CONFIG_KEYS), variant
