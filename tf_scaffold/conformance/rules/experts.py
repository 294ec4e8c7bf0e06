"""Mixtures of experts: the module the engines replace with their fused MoE kernel, and the config fields they build
it from (vLLM `TransformersMoEBase.recursive_replace`, SGLang `MoEMixin.recursive_replace`).

Both engines walk the base model for a child named `experts` that is an `nn.ModuleList` or holds 3-D parameters,
replace it with their fused MoE layer, and call that layer as the block called `experts`:
`experts(hidden_states, top_k_index, top_k_weights)`.
"""

from __future__ import annotations

import ast
import re

from tf_scaffold.conformance import astutil
from tf_scaffold.conformance.classes import ClassRef
from tf_scaffold.conformance.files import safetensors_keys
from tf_scaffold.conformance.registry import WARNING, Issue, rule
from tf_scaffold.conformance.repo import Repo
from tf_scaffold.facts import MOE_EXPERT_COUNT_KEYS

# What each engine reads for top-k and the experts' width, first found wins (vLLM `getattr_iter`, SGLang
# `_getattr_first`): without them neither can size its fused layer.
TOP_K_KEYS = ("num_experts_per_tok", "top_k")
WIDTH_KEYS = ("moe_intermediate_size", "intermediate_size")
EXPERTS_CALL = ("hidden_states", "top_k_index", "top_k_weights")


def _field(repo: Repo, keys: tuple[str, ...]):
    """(key, value) of the first of `keys` the engines would find: in config.json, else a default the (text) config
    class declares (the engines read the config object, which has the class's defaults)."""
    for key in keys:
        value = repo.text_field(key)
        if value is None:
            node, _ = repo.class_attr(repo.text_config_class, key)
            value = astutil.literal(node) if node is not None else None
        if value is not None:
            return key, value
    return None


def experts_blocks(repo: Repo) -> list[tuple[ClassRef, ClassRef | str]]:
    """(block, experts class) for every class of the repo with a child `self.experts = ...(...)`."""
    found = []
    for source in repo.sources.values():
        for name in source.class_lines:
            ref = repo.find(name)
            if ref is not None and ref.in_repo and (child := repo.children(ref).get("experts")) is not None:
                found.append((ref, child))
    return found


@rule(
    "TFS045",
    "moe-config-incomplete",
    "MoE config lacks the fields the engines size their fused MoE layer from",
    engine=(
        "SGLang stops at load (`assert top_k is not None, 'Cannot determine top_k from config.'`); vLLM builds its "
        "fused MoE layer without a top-k or width and fails"
    ),
    fix="declare num_experts, num_experts_per_tok and moe_intermediate_size in the config",
    requires=("config",),
)
def moe_config_incomplete(repo: Repo):
    count = _field(repo, MOE_EXPERT_COUNT_KEYS)
    if count is None or not experts_blocks(repo):
        return
    for what, keys in (("top-k", TOP_K_KEYS), ("expert width", WIDTH_KEYS)):
        if _field(repo, keys) is None:
            yield Issue("config.json", 0, f"{count[0]} is set but no {what} ({' or '.join(keys)})")


@rule(
    "TFS046",
    "experts-without-moe-config",
    "the model has experts but the config gives no expert count",
    engine=(
        "the engines do not see a mixture of experts: no fused MoE kernel, every expert runs as plain PyTorch in a "
        "Python loop, unsharded under tensor parallelism (correct tokens, a fraction of the speed)"
    ),
    fix="declare num_experts (with num_experts_per_tok and moe_intermediate_size) in the config",
    severity=WARNING,
    requires=("config",),
)
def experts_without_moe_config(repo: Repo):
    if _field(repo, MOE_EXPERT_COUNT_KEYS) is not None:
        return
    for block, _ in experts_blocks(repo):
        file, line = repo.where(block)
        yield Issue(file, line, f"{block.name}.experts, but no {' / '.join(MOE_EXPERT_COUNT_KEYS)} in config.json")


@rule(
    "TFS047",
    "experts-call-contract",
    "the experts module is not called as experts(hidden_states, top_k_index, top_k_weights)",
    engine=(
        "SGLang replaces `experts` with its fused MoE layer, `forward(hidden_states, topk_ids, topk_weights, **kwargs)`"
        ", and the block's call reaches it unchanged: keywords named as transformers names them fall into **kwargs "
        "(TypeError: missing 'topk_ids' and 'topk_weights'), other positional arguments route tokens to the wrong "
        "experts; vLLM replaces the whole block when it recognises router + experts and never runs this call"
    ),
    fix=(
        "route in the block (router -> top-k ids and weights) and call self.experts(hidden_states, top_k_index, "
        "top_k_weights) with 2-D hidden states; give the experts' forward exactly those three parameters"
    ),
    requires=("config",),
    verdicts={"SGLang": "rejected"},
)
def experts_call_contract(repo: Repo):
    if _field(repo, MOE_EXPERT_COUNT_KEYS) is None:
        return
    for block, experts in experts_blocks(repo):
        if isinstance(experts, ClassRef):
            forward, owner = repo.method(experts, "forward")
            if forward is not None:
                params = [a.arg for a in forward.args.args[1:] + forward.args.kwonlyargs]
                if len(forward.args.args) - 1 != 3 or forward.args.kwonlyargs or forward.args.vararg:
                    file, line = repo.where(owner, forward)
                    yield Issue(
                        file, line, f"{experts.name}.forward({', '.join(params)}): takes other than 3 arguments"
                    )
        forward, owner = repo.method(block, "forward")
        for node in ast.walk(forward) if forward is not None else ():
            if isinstance(node, ast.Call) and astutil.self_call_target(node) == "experts":
                if len(node.args) != 3 or node.keywords:
                    file, line = repo.where(owner, node)
                    yield Issue(file, line, f"self.experts({astutil.unparse(node)[len('self.experts(') : -1]})")


# Expert weights saved packed, one 3-D tensor per layer (transformers v5's in-memory layout), not one per expert.
PACKED_EXPERTS = re.compile(r"\.experts\.(gate_up_proj|down_proj|gate_proj|up_proj)(\.weight)?$")


@rule(
    "TFS048",
    "moe-checkpoint-packed",
    "the checkpoint stores the experts packed, not one expert at a time",
    engine=(
        "SGLang's fused MoE loader maps only per-expert names (`experts.<e>.gate_proj.weight`, `up_proj`, `down_proj`;"
        " `w1`/`w2`/`w3`): it skips packed tensors with a warning ('could not be matched to any parameter') and "
        "serves uninitialised experts, wrong tokens without an error; vLLM loads either layout"
    ),
    fix=(
        "save the experts one by one: register transformers' Qwen2-MoE checkpoint conversion for the model_type "
        "(`register_checkpoint_conversion_mapping`) in the modeling file and save with `save_pretrained`, as "
        "`tf-scaffold new --moe` repos do"
    ),
    requires=("config",),
    verdicts={"vLLM": "ok", "SGLang": "wrong"},
)
def moe_checkpoint_packed(repo: Repo):
    for file, keys in safetensors_keys(repo.root).items():
        if isinstance(keys, list) and (packed := [k for k in keys if PACKED_EXPERTS.search(k)]):
            more = f", ... ({len(packed)} tensors)" if len(packed) > 2 else ""
            yield Issue(file, 0, f"packed expert tensors: {', '.join(packed[:2])}{more}")
