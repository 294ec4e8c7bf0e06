"""A corpus of broken variants of a generated repo, each one a contract violation users make.

Every mutation states the check ids that must flag it. Each edit asserts that the text it replaces exists, so a
template change can never turn a mutation into a silent no-op.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mutation:
    name: str
    description: str
    expected: tuple[str, ...]  # check ids that must report an error
    apply: Callable[[Path], None]
    static_only_ids: tuple[str, ...] = ()  # the subset found without --trust-remote-code
    warnings: tuple[str, ...] = ()  # check ids that must report a warning (found statically)
    # The transformers release from which the change is a bug; below it the same code is correct and must be clean.
    since_transformers: str | None = None

    def breaks_here(self) -> bool:
        """Whether the installed transformers is one under which this mutation is a bug."""
        if self.since_transformers is None:
            return True
        import transformers
        from packaging.version import Version

        return Version(transformers.__version__) >= Version(self.since_transformers)


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert text.count(old) >= 1, f"mutation anchor not found in {path.name}: {old[:60]!r}"
    path.write_text(text.replace(old, new, count))


def _regex(path: Path, pattern: str, new: str) -> None:
    text = path.read_text()
    updated, n = re.subn(pattern, new, text, count=1, flags=re.S)
    assert n == 1, f"mutation pattern not found in {path.name}: {pattern[:60]!r}"
    path.write_text(updated)


def _modeling(repo: Path) -> Path:
    return next(repo.glob("modeling_*.py"))


def _config_json(repo: Path, change: Callable[[dict], None]) -> None:
    path = repo / "config.json"
    cfg = json.loads(path.read_text())
    change(cfg)
    path.write_text(json.dumps(cfg, indent=2) + "\n")


def _rename_keys(repo: Path, rename: Callable[[str], str | None], extra: dict | None = None) -> None:
    from safetensors.torch import load_file, save_file

    path = repo / "model.safetensors"
    state = load_file(path)
    state = {name: v for k, v in state.items() if (name := rename(k)) is not None}  # None: the key is dropped
    state.update(extra or {})
    save_file(state, path, metadata={"format": "pt"})


def hardcoded_sdpa(repo: Path) -> None:
    _regex(
        _modeling(repo),
        r"        attention_interface: Callable = .*?\n        \)\n        attn_output, attn_weights = attention_interface\(.*?\n        \)\n",
        "        attn_output = nn.functional.scaled_dot_product_attention(\n"
        "            query_states,\n"
        "            repeat_kv(key_states, self.num_key_value_groups),\n"
        "            repeat_kv(value_states, self.num_key_value_groups),\n"
        "            is_causal=query_states.shape[2] > 1,\n"
        "            scale=self.scaling,\n"
        "        ).transpose(1, 2)\n"
        "        attn_weights = None\n",
    )


def two_interface_calls(repo: Path) -> None:
    _edit(
        _modeling(repo),
        "        # `-1`, not heads * head_dim",
        "        again, _ = attention_interface(\n"
        "            self, query_states, key_states, value_states, attention_mask, scaling=self.scaling, **kwargs\n"
        "        )\n"
        "        attn_output = (attn_output + again) / 2\n"
        "        # `-1`, not heads * head_dim",
    )


def aliased_interface(repo: Path) -> None:
    """ALL_ATTENTION_FUNCTIONS imported under another name: Python and SGLang follow it, vLLM's source reading does
    not."""
    path = _modeling(repo)
    _edit(
        path,
        "from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS,",
        "from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS as ATTENTION_FUNCTIONS,",
    )
    text = path.read_text()
    path.write_text(text.replace("ALL_ATTENTION_FUNCTIONS.get_interface(", "ATTENTION_FUNCTIONS.get_interface("))


def direct_interface_call(repo: Path) -> None:
    """The interface indexed and called in one expression, with no local variable."""
    _regex(
        _modeling(repo),
        r"        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS\.get_interface\(\n"
        r"            self\.config\._attn_implementation, eager_attention_forward\n        \)\n"
        r"        attn_output, attn_weights = attention_interface\(",
        "        attn_output, attn_weights = ALL_ATTENTION_FUNCTIONS.get_interface(\n"
        "            self.config._attn_implementation, eager_attention_forward\n        )(",
    )


def no_backend_flag(repo: Path) -> None:
    _regex(_modeling(repo), r"\n    _supports_attention_backend = True\n", "\n")


def decoder_drops_kwargs(repo: Path) -> None:
    _edit(_modeling(repo), "            **kwargs,  # carried on to the attention call\n", "")


def positions_from_arange(repo: Path) -> None:
    _edit(
        _modeling(repo),
        "        causal_mask = create_causal_mask(",
        "        position_ids = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device)[None]\n"
        "        causal_mask = create_causal_mask(",
    )


def tp_plan_typo(repo: Path) -> None:
    _edit(next(repo.glob("configuration_*.py")), '"layers.*.self_attn.q_proj"', '"layers.*.self_attn.q_prj"')


def tp_style_sglang_refuses(repo: Path) -> None:
    # vLLM's name for a column-parallel Linear whose output is gathered; transformers' Phi-3 and OLMo-2 use it
    _edit(
        next(repo.glob("configuration_*.py")),
        '"layers.*.self_attn.q_proj": "colwise"',
        '"layers.*.self_attn.q_proj": "colwise_gather_output"',
    )


def layer_outside_modulelist(repo: Path) -> None:
    path = _modeling(repo)
    layer_cls = re.search(r"(\w+DecoderLayer)\(config, layer_idx\)", path.read_text()).group(1)
    _edit(
        path,
        "for layer_idx in range(config.num_hidden_layers)",
        "for layer_idx in range(config.num_hidden_layers - 1)",
    )
    _edit(
        path,
        "        self.norm = ",
        f"        self.last_layer = {layer_cls}(config, config.num_hidden_layers - 1)\n        self.norm = ",
    )
    _edit(
        path,
        "        hidden_states = self.norm(hidden_states)\n",
        "        hidden_states = self.last_layer(\n"
        "            hidden_states,\n"
        "            position_embeddings=position_embeddings,\n"
        "            attention_mask=causal_mask,\n"
        "            cache=cache,\n"
        "            **kwargs,\n"
        "        )\n"
        "        hidden_states = self.norm(hidden_states)\n",
    )
    n = json.loads((repo / "config.json").read_text())["num_hidden_layers"]
    _rename_keys(repo, lambda k: k.replace(f"model.layers.{n - 1}.", "model.last_layer."))


def extra_head_module(repo: Path) -> None:
    import torch

    path = _modeling(repo)
    _edit(
        path,
        "        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)\n",
        "        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)\n"
        "        self.logit_bias = nn.Linear(config.hidden_size, config.vocab_size, bias=False)\n",
    )
    _edit(
        path,
        "        logits = self.lm_head(hidden_states[:, slice_indices, :])\n",
        "        logits = self.lm_head(hidden_states[:, slice_indices, :])\n"
        "        logits = logits + self.logit_bias(hidden_states[:, slice_indices, :])\n",
    )
    cfg = json.loads((repo / "config.json").read_text())
    weight = torch.randn(cfg["vocab_size"], cfg["hidden_size"], generator=torch.Generator().manual_seed(5)) * 0.1
    _rename_keys(repo, lambda k: k, extra={"logit_bias.weight": weight})


def forward_knows_only_past_key_values(repo: Path) -> None:
    """The forwards as written for transformers < 5.24: the cache is `past_key_values` everywhere, with no `cache`."""
    path = _modeling(repo)
    text = path.read_text()
    for pattern, new in (
        (r"\n *past_key_values: Cache \| None = None,", ""),  # the old-name parameters: now the only name
        (r"\n *cache = cache if cache is not None else past_key_values.*", ""),
        (r"cache=cache if cache is not None else past_key_values,.*", "cache=cache,"),
        (r"\*\*\{CACHE_NAME: getattr\(outputs, CACHE_NAME\)\}", "past_key_values=outputs.past_key_values"),
        (r"\*\*\{CACHE_NAME: cache\}", "past_key_values=cache"),
        (r"\bcache\b", "past_key_values"),
    ):
        text, n = re.subn(pattern, new, text)
        assert n, f"mutation pattern not found in {path.name}: {pattern!r}"
    path.write_text(text)


def forward_without_kwargs(repo: Path) -> None:
    """The base model's forward takes no **kwargs (and so passes none on): the engines' keywords are refused."""
    path = _modeling(repo)
    text = path.read_text()
    base = re.search(r"\nclass (\w+Model)\(\w+PreTrainedModel\):", text).group(1)
    start = text.index(f"\nclass {base}(")
    end = text.index("\nclass ", start + 1)
    block = text[start:end]
    for old in ("        **kwargs: Unpack[TransformersKwargs],\n", "                **kwargs,\n"):
        assert old in block, f"mutation anchor not found in {base}: {old!r}"
        block = block.replace(old, "", 1)
    path.write_text(text[:start] + block + text[end:])


def moe_keys_in_dense_config(repo: Path) -> None:
    _config_json(repo, lambda cfg: cfg.update(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=64))


def sliding_window_ignored(repo: Path) -> None:
    # windows declared in config.json of a model whose code attends to everything; 4 tokens, so that the engines'
    # windows cut into the agreement test's short prompts
    _config_json(
        repo,
        lambda cfg: cfg.update(sliding_window=4, layer_types=["sliding_attention"] * cfg["num_hidden_layers"]),
    )


def automodel_missing(repo: Path) -> None:
    _config_json(repo, lambda cfg: cfg["auto_map"].pop("AutoModel"))


def model_type_llama(repo: Path) -> None:
    _config_json(repo, lambda cfg: cfg.update(model_type="llama"))
    _regex(next(repo.glob("configuration_*.py")), r'model_type = "\w+"', 'model_type = "llama"')


MUTATIONS = [
    Mutation(
        "hardcoded-sdpa",
        "attention hard-coded with F.scaled_dot_product_attention",
        ("TFS011", "TFS018", "TFS101"),
        hardcoded_sdpa,
        ("TFS011", "TFS018"),
    ),
    Mutation(
        "two-interface-calls",
        "two calls through the attention interface in one forward",
        ("TFS012", "TFS101"),
        two_interface_calls,
        ("TFS012",),
    ),
    Mutation(
        "aliased-interface",
        "ALL_ATTENTION_FUNCTIONS imported as ATTENTION_FUNCTIONS",
        ("TFS023",),
        aliased_interface,
        ("TFS023",),
    ),
    Mutation(
        "direct-interface-call",
        "ALL_ATTENTION_FUNCTIONS.get_interface(...)(...) called with no local variable",
        ("TFS023",),
        direct_interface_call,
        ("TFS023",),
    ),
    Mutation("no-backend-flag", "_supports_attention_backend removed", ("TFS020",), no_backend_flag, ("TFS020",)),
    Mutation(
        "decoder-drops-kwargs",
        "the decoder layer does not pass **kwargs to attention",
        ("TFS022", "TFS102"),
        decoder_drops_kwargs,
        ("TFS022",),
    ),
    Mutation(
        "positions-from-arange",
        "positions rebuilt with arange, ignoring position_ids",
        ("TFS103",),
        positions_from_arange,
    ),
    Mutation(
        "tp-plan-typo",
        "tensor-parallel plan pattern with a typo (q_prj)",
        ("TFS108",),
        tp_plan_typo,
        warnings=("TFS031",),
    ),
    Mutation(
        "tp-style-sglang-refuses",
        "q_proj sharded with vLLM's colwise_gather_output, a style SGLang does not know",
        ("TFS030",),
        tp_style_sglang_refuses,
        ("TFS030",),
    ),
    Mutation(
        "layer-outside-modulelist",
        "the last decoder layer kept outside the ModuleList",
        ("TFS034", "TFS110"),
        layer_outside_modulelist,
        ("TFS034",),
    ),
    Mutation(
        "extra-head-module",
        "an extra module (logit bias) in the ForCausalLM",
        ("TFS040", "TFS043"),
        extra_head_module,
        ("TFS040", "TFS043"),
    ),
    Mutation(
        "forward-knows-only-past-key-values",
        "the forwards take the KV cache only as `past_key_values` (the name before transformers 5.24)",
        ("TFS111",),
        forward_knows_only_past_key_values,
        since_transformers="5.24.0",
    ),
    Mutation(
        "forward-without-kwargs",
        "the base model's forward takes no **kwargs",
        ("TFS021", "TFS102"),
        forward_without_kwargs,
        ("TFS021",),
    ),
    Mutation(
        "moe-keys-in-dense-config",
        "num_experts / num_experts_per_tok / moe_intermediate_size in a dense model's config.json",
        (),
        moe_keys_in_dense_config,
        warnings=("TFS041",),
    ),
    Mutation(
        "sliding-window-ignored",
        "sliding_window + layer_types in config.json, code without a window",
        ("TFS025",),
        sliding_window_ignored,
        ("TFS025",),
        warnings=("TFS026",),
    ),
    Mutation("automodel-missing", "AutoModel missing from auto_map", ("TFS005",), automodel_missing, ("TFS005",)),
    Mutation("model-type-llama", "model_type set to llama", ("TFS003",), model_type_llama, ("TFS003",)),
]


def _processing(repo: Path) -> Path:
    return next(repo.glob("processing_*.py"))


def processor_without_count(repo: Path) -> None:
    _regex(
        _processing(repo),
        r"    def _get_num_multimodal_tokens\(.*?\n\n(?=    @property)",
        "",
    )


def count_disagrees(repo: Path) -> None:
    _edit(
        _processing(repo),
        "num_image_tokens=[tokens for tokens, _ in counts]",
        "num_image_tokens=[tokens + 1 for tokens, _ in counts]",
    )


def processor_without_replace(repo: Path) -> None:
    _regex(_processing(repo), r"    def replace_image_token\(.*?\n\n(?=    def )", "")


def features_wrong_rows(repo: Path) -> None:
    # one stacked tensor (which vLLM also accepts), missing each image's last row
    _edit(
        _modeling(repo),
        "image_outputs.pooler_output = list(image_features)",
        "image_outputs.pooler_output = image_features[:, :-1]",
    )


# Mutations of a multimodal repo (`tf-scaffold new NAME --multimodal`).
MM_MUTATIONS = [
    Mutation(
        "processor-without-count",
        "the processor has no _get_num_multimodal_tokens",
        ("TFS050", "TFS121"),
        processor_without_count,
        ("TFS050",),
    ),
    Mutation(
        "count-disagrees",
        "_get_num_multimodal_tokens counts one token more than the processor inserts",
        ("TFS121",),
        count_disagrees,
    ),
    Mutation(
        "processor-without-replace",
        "the processor has no replace_image_token",
        ("TFS051", "TFS120"),
        processor_without_replace,
        ("TFS051",),
    ),
    Mutation(
        "features-wrong-rows",
        "get_image_features returns one row per image too few",
        ("TFS123", "TFS125"),
        features_wrong_rows,
    ),
]


def _configuration(repo: Path) -> Path:
    return next(repo.glob("configuration_*.py"))


def moe_config_without_top_k(repo: Path) -> None:
    _regex(_configuration(repo), r"\n    num_experts_per_tok: int = \d+", "")
    _config_json(repo, lambda cfg: cfg.pop("num_experts_per_tok"))
    for path in (_modeling(repo), _configuration(repo)):  # the code reads top-k under another name
        path.write_text(path.read_text().replace("config.num_experts_per_tok", "2"))


def experts_count_renamed(repo: Path) -> None:
    for path in (_modeling(repo), _configuration(repo), repo / "config.json"):
        _edit(path, "num_experts", "expert_count", count=-1)
        path.write_text(path.read_text().replace("expert_count_per_tok", "num_experts_per_tok"))


def experts_called_by_keyword(repo: Path) -> None:
    _edit(
        _modeling(repo),
        "self.experts(hidden_states_reshaped, selected_experts, routing_weights)",
        "self.experts(hidden_states_reshaped, top_k_index=selected_experts, top_k_weights=routing_weights)",
    )


def experts_take_router_logits(repo: Path) -> None:
    # the experts route for themselves from the logits: a 2-argument forward the engines' kernel cannot stand in for
    _edit(
        _modeling(repo),
        "self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor",
        "self, hidden_states: torch.Tensor, router_logits: torch.Tensor",
    )
    _edit(
        _modeling(repo),
        "        final_hidden_states = torch.zeros_like(hidden_states)\n        with torch.no_grad():",
        "        top_k_weights, top_k_index = torch.topk(router_logits.softmax(-1), 2, dim=-1)\n"
        "        top_k_weights = top_k_weights / top_k_weights.sum(-1, keepdim=True)\n"
        "        final_hidden_states = torch.zeros_like(hidden_states)\n        with torch.no_grad():",
    )
    _edit(
        _modeling(repo),
        "        _, routing_weights, selected_experts = self.gate(hidden_states_reshaped)\n"
        "        final_hidden_states = self.experts(hidden_states_reshaped, selected_experts, routing_weights)",
        "        router_logits, _, _ = self.gate(hidden_states_reshaped)\n"
        "        final_hidden_states = self.experts(hidden_states_reshaped, router_logits)",
    )


def moe_checkpoint_packed(repo: Path) -> None:
    # the experts saved as the model holds them in memory, one 3-D tensor per layer: what `save_file(model.state_dict())`
    # writes when the modeling file registers no checkpoint conversion
    import torch
    from safetensors.torch import load_file, save_file

    path = repo / "model.safetensors"
    state = load_file(str(path))
    experts = sorted({k.split(".experts.")[0] for k in state if ".experts." in k})
    assert experts, "mutation anchor not found: no per-expert tensors in model.safetensors"
    for block in experts:
        count = len({k for k in state if k.startswith(f"{block}.experts.") and k.endswith(".down_proj.weight")})
        gate = [state.pop(f"{block}.experts.{e}.gate_proj.weight") for e in range(count)]
        up = [state.pop(f"{block}.experts.{e}.up_proj.weight") for e in range(count)]
        down = [state.pop(f"{block}.experts.{e}.down_proj.weight") for e in range(count)]
        state[f"{block}.experts.gate_up_proj"] = torch.stack([torch.cat(p) for p in zip(gate, up, strict=True)])
        state[f"{block}.experts.down_proj"] = torch.stack(down)
    save_file(state, str(path), metadata={"format": "pt"})


# Mutations of a mixture-of-experts repo (`tf-scaffold new NAME --moe`).
MOE_MUTATIONS = [
    Mutation(
        "moe-config-without-top-k",
        "num_experts_per_tok neither in config.json nor declared by the config class",
        ("TFS045",),
        moe_config_without_top_k,
        ("TFS045",),
    ),
    Mutation(
        "experts-count-renamed",
        "the expert count is called expert_count, a name neither engine reads",
        (),
        experts_count_renamed,
        warnings=("TFS046",),
    ),
    Mutation(
        "moe-checkpoint-packed",
        "the experts saved packed (one 3-D gate_up_proj / down_proj per layer), not one expert at a time",
        ("TFS048",),
        moe_checkpoint_packed,
        ("TFS048",),
    ),
    Mutation(
        "experts-called-by-keyword",
        "the block calls self.experts(h, top_k_index=..., top_k_weights=...)",
        ("TFS047",),
        experts_called_by_keyword,
        ("TFS047",),
    ),
    Mutation(
        "experts-take-router-logits",
        "the experts take the router logits and route for themselves",
        ("TFS047",),
        experts_take_router_logits,
        ("TFS047",),
    ),
]


def layer_types_short(repo: Path) -> None:
    _config_json(repo, lambda cfg: cfg.update(layer_types=cfg["layer_types"][:-1]))


def sliding_without_window(repo: Path) -> None:
    _config_json(repo, lambda cfg: cfg.update(sliding_window=None))


# Mutations of a repo with sliding-window layers (`--sliding-window 16 --layer-types sliding,full`).
WINDOW_MUTATIONS = [
    Mutation("layer-types-short", "layer_types one entry short", ("TFS024",), layer_types_short, ("TFS024",)),
    Mutation(
        "sliding-without-window",
        "sliding layers with sliding_window null in config.json",
        ("TFS024",),
        sliding_without_window,
        ("TFS024",),
    ),
]


def _prefix(repo: Path) -> str:
    """The class-name prefix of a generated encoder (`AcmeEncoder`)."""
    return re.search(r"class (\w+)SelfAttention\(nn\.Module\):", _modeling(repo).read_text()).group(1)


def encoder_is_causal_missing(repo: Path) -> None:
    """The attention no longer says it is bidirectional: the mask still is, the engines' attention is causal."""
    _regex(_modeling(repo), r"\n        # Every token sees every other[^\n]*\n        self\.is_causal = False\n", "\n")


def encoder_last_layer_causal(repo: Path) -> None:
    """The last layer's attention is made causal (a subclass setting is_causal = True), the others stay
    bidirectional: a text-only model with both."""
    path = _modeling(repo)
    name = _prefix(repo)
    _edit(
        path,
        f"class {name}Encoder(nn.Module):",
        f"class {name}CausalSelfAttention({name}SelfAttention):\n"
        "    def __init__(self, config, layer_idx):\n"
        "        super().__init__(config, layer_idx)\n"
        "        self.is_causal = True\n\n\n"
        f"class {name}CausalAttention({name}Attention):\n"
        "    def __init__(self, config, layer_idx):\n"
        "        super().__init__(config, layer_idx)\n"
        f"        self.self = {name}CausalSelfAttention(config, layer_idx)\n\n\n"
        f"class {name}CausalLayer({name}Layer):\n"
        "    def __init__(self, config, layer_idx):\n"
        "        super().__init__(config, layer_idx)\n"
        f"        self.attention = {name}CausalAttention(config, layer_idx)\n\n\n"
        f"class {name}Encoder(nn.Module):",
    )
    _edit(
        path,
        f"[{name}Layer(config, layer_idx) for layer_idx in range(config.num_hidden_layers)]",
        f"[{name}Layer(config, layer_idx) for layer_idx in range(config.num_hidden_layers - 1)]\n"
        f"            + [{name}CausalLayer(config, config.num_hidden_layers - 1)]",
    )


def _pooling_type(repo: Path, value: str | None) -> None:
    """config.json's pooling_type and the config class's default, set to `value` (None: removed)."""
    if value is None:
        _config_json(repo, lambda cfg: cfg.pop("pooling_type"))
        _regex(_configuration(repo), r'\n    pooling_type: str = "\w+"', "")
    else:
        _config_json(repo, lambda cfg: cfg.update(pooling_type=value))
        _regex(_configuration(repo), r'(\n    pooling_type: str = )"\w+"', rf'\1"{value}"')


def _pooling_modes(repo: Path, **modes: bool) -> None:
    path = repo / "1_Pooling" / "config.json"
    cfg = json.loads(path.read_text())
    assert all(f"pooling_mode_{m}" in cfg for m in modes), f"mutation anchor not found in {path}"
    cfg.update({f"pooling_mode_{m}": on for m, on in modes.items()})
    path.write_text(json.dumps(cfg, indent=2) + "\n")


def pooling_type_missing(repo: Path) -> None:
    _pooling_type(repo, None)


def pooling_mean(repo: Path) -> None:
    """sentence-transformers (and vLLM) pool the mean of the tokens; config.json still says CLS for SGLang."""
    _pooling_modes(repo, cls_token=False, mean_tokens=True)


def pooling_type_last(repo: Path) -> None:
    """config.pooling_type says LAST, modules.json's Pooling config CLS."""
    _pooling_type(repo, "LAST")


def normalize_false(repo: Path) -> None:
    """config.normalize false, modules.json still has its Normalize entry."""
    _config_json(repo, lambda cfg: cfg.update(normalize=False))
    _regex(_configuration(repo), r"(\n    normalize: bool = )True", r"\1False")


def pooling_config_missing(repo: Path) -> None:
    (repo / "1_Pooling" / "config.json").unlink()


# Mutations of an encoder embedding model (`tf-scaffold new NAME --arch encoder`).
ENCODER_MUTATIONS = [
    Mutation(
        "encoder-is-causal-missing",
        "the attention no longer sets is_causal = False (the mask stays bidirectional)",
        ("TFS071", "TFS104"),
        encoder_is_causal_missing,
        ("TFS071",),
    ),
    Mutation(
        "encoder-last-layer-causal",
        "the last layer's attention is causal, the others bidirectional",
        ("TFS072",),
        encoder_last_layer_causal,
        ("TFS072",),
    ),
    Mutation(
        "pooling-type-missing",
        "no pooling_type in config.json nor in the config class",
        (),
        pooling_type_missing,
        warnings=("TFS073",),
    ),
    Mutation(
        "pooling-mean",
        "1_Pooling/config.json pools the mean of the tokens",
        (),
        pooling_mean,
        warnings=("TFS074",),
    ),
    Mutation(
        "pooling-type-last",
        "config.pooling_type LAST while modules.json pools CLS",
        (),
        pooling_type_last,
        warnings=("TFS075",),
    ),
    Mutation(
        "normalize-false",
        "config.normalize false while modules.json has a Normalize entry",
        (),
        normalize_false,
        warnings=("TFS075",),
    ),
    Mutation(
        "pooling-config-missing",
        "modules.json names 1_Pooling, whose config.json is missing",
        ("TFS076",),
        pooling_config_missing,
        ("TFS076",),
    ),
]


def _head_class(repo: Path) -> tuple[Path, str, int, int]:
    """(modeling file, its text, start and end of the ForSequenceClassification class)."""
    path = _modeling(repo)
    text = path.read_text()
    start = re.search(r"\nclass \w+ForSequenceClassification\(", text).start()
    end = text.find("\n__all__", start)
    return path, text, start, end


def _in_head(repo: Path, pattern: str, new: str) -> None:
    """Replace what `pattern` matches in the ForSequenceClassification class only."""
    path, text, start, end = _head_class(repo)
    block, n = re.subn(pattern, new, text[start:end], count=1)
    assert n == 1, f"mutation pattern not found in the classifier class: {pattern[:60]!r}"
    path.write_text(text[:start] + block + text[end:])


CLASSIFIER_LINE = r"self\.classifier = \w+ClassificationHead\(config\)"


def classifier_renamed(repo: Path) -> None:
    """The classifier module is called `head`: neither `classifier` nor `score`."""
    _in_head(repo, r"self\.classifier = ", "self.head = ")
    _in_head(repo, r"self\.classifier\(", "self.head(")
    _rename_keys(repo, lambda k: "head." + k.removeprefix("classifier.") if k.startswith("classifier.") else k)


def classifier_reads_pooler(repo: Path) -> None:
    """BertForSequenceClassification's way: the encoder keeps its pooler (dense + tanh on the first token), the
    classifier is one nn.Linear on the pooler output."""
    _in_head(repo, r", add_pooling_layer=False\)", ")")
    _in_head(
        repo,
        CLASSIFIER_LINE,
        "self.dropout = nn.Dropout(config.hidden_dropout_prob)\n"
        "        self.classifier = nn.Linear(config.hidden_size, config.num_labels)",
    )
    _in_head(
        repo,
        r"logits = self\.classifier\(outputs\.last_hidden_state\)",
        "pooled_output = outputs[1]\n"
        "        pooled_output = self.dropout(pooled_output)\n"
        "        logits = self.classifier(pooled_output)",
    )
    _rename_keys(
        repo,
        lambda k: k.replace("classifier.dense.", "model.pooler.dense.").replace("classifier.out_proj.", "classifier."),
    )


def classifier_bare_linear(repo: Path) -> None:
    """The classifier is one nn.Linear on the first token, indexed by the head's forward."""
    _in_head(repo, CLASSIFIER_LINE, "self.classifier = nn.Linear(config.hidden_size, config.num_labels)")
    _in_head(
        repo, r"self\.classifier\(outputs\.last_hidden_state\)", "self.classifier(outputs.last_hidden_state[:, 0])"
    )
    _rename_keys(
        repo, lambda k: None if "classifier.dense." in k else k.replace("classifier.out_proj.", "classifier.")
    )


def score_with_bias(repo: Path) -> None:
    """The classifier is a `score` nn.Linear with a bias (its default)."""
    _in_head(repo, CLASSIFIER_LINE, "self.score = nn.Linear(config.hidden_size, config.num_labels)")
    _in_head(repo, r"self\.classifier\(outputs\.last_hidden_state\)", "self.score(outputs.last_hidden_state[:, 0])")
    _rename_keys(repo, lambda k: None if "classifier.dense." in k else k.replace("classifier.out_proj.", "score."))


# Mutations of an encoder sequence classifier (`tf-scaffold new NAME --arch encoder --task classify`).
CLASSIFIER_MUTATIONS = [
    Mutation(
        "classifier-renamed",
        "the classifier module is called head",
        # and so the head's module and its checkpoint keys are neither the base model's nor the classifier's
        ("TFS077", "TFS040", "TFS043"),
        classifier_renamed,
        ("TFS077", "TFS040", "TFS043"),
    ),
    Mutation(
        "classifier-reads-pooler",
        "BERT-style: an nn.Linear on the base model's pooler output",
        ("TFS078",),
        classifier_reads_pooler,
        ("TFS078",),
        warnings=("TFS079",),
    ),
    Mutation(
        "classifier-bare-linear",
        "the classifier is one nn.Linear applied to the first token",
        (),
        classifier_bare_linear,
        warnings=("TFS079",),
    ),
    Mutation(
        "classifier-named-score",
        "the classifier is a `score` nn.Linear (with its bias), checkpoint keys score.*",
        ("TFS080",),
        score_with_bias,
        ("TFS080",),
        warnings=("TFS079",),
    ),
]


def make(source: Path, dest_root: Path, mutation: Mutation) -> Path:
    dest = dest_root / f"{source.name}-{mutation.name}"
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", ".ruff_cache"))
    mutation.apply(dest)
    return dest
