"""Tensor- and pipeline-parallel plans: data the engines shard and split the model by."""

from __future__ import annotations

from tf_scaffold.conformance import astutil
from tf_scaffold.conformance.classes import ClassRef
from tf_scaffold.conformance.registry import GENERATIVE, WARNING, Issue, rule
from tf_scaffold.conformance.repo import Repo

# The tensor-parallel styles each engine's Transformers backend knows. vLLM (`replace_linear_class` in
# vllm/model_executor/models/transformers/utils.py) replicates an nn.Linear whose style it does not know; SGLang
# (`_normalize_tp_style` in sglang/srt/models/transformers.py) maps transformers' other names onto its own and raises
# "Unsupported TP style" for anything else, at load, whatever the tensor-parallel size.
VLLM_TP_STYLES = {"colwise", "rowwise", "replicate", "colwise_gather_output", "rowwise_split_input"}
SGLANG_TP_ALIASES = {
    "colwiseparallel": "colwise",
    "packed_colwise": "colwise",
    "local_colwise": "colwise",
    "rowwiseparallel": "rowwise",
    "packed_rowwise": "rowwise",
    "local_rowwise": "rowwise",
    "local_packed_rowwise": "rowwise",
    "embedding_rowwise": "replicate",
    "isolated": "replicate",
    "local": "replicate",
    "replicated_with_grad_allreduce": "replicate",
    "moe_tp_experts": "replicate",
}
SGLANG_TP_STYLES = {"colwise", "colwise_rep", "rowwise", "rowwise_rep", "replicate"}


def sglang_style(style: str) -> str | None:
    """The style SGLang applies for a plan's style, None where it refuses to load."""
    style = style.lower().replace("-", "_")
    style = SGLANG_TP_ALIASES.get(style, style)
    return style if style in SGLANG_TP_STYLES else None


def _plan(repo: Repo, config_class: ClassRef | None, section: str, attr: str):
    """(plan, file, line): config.json's value, else the config class's (parents included)."""
    saved = repo.section(section).get(attr)
    if saved is not None:
        return saved, "config.json", 0
    node, owner = repo.class_attr(config_class, attr)
    if node is None:
        return None, "config.json", 0
    file, line = repo.where(owner, node)
    return astutil.literal(node), file, line


def _tp_plan(repo: Repo, config_class: ClassRef | None, section: str):
    """(plan, file, line) of a tower's tensor-parallel plan when it is {pattern: style} strings (TFS009 reports any
    other shape), else (None, ...)."""
    plan, file, line = _plan(repo, config_class, section, "base_model_tp_plan")
    if not (isinstance(plan, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in plan.items())):
        plan = None
    return plan, file, line


def _towers(repo: Repo) -> list[tuple[ClassRef | None, ClassRef | None, str]]:
    """(config class, the model class its plan is relative to, config.json section) per tower."""
    towers = [(repo.text_config_class, repo.decoder, "text_config")]
    vision = repo.sub_config_classes.get("vision_config")
    tower = repo.children(repo.base_model).get("vision_tower")
    if vision is not None and isinstance(tower, ClassRef):
        towers.append((vision, tower, "vision_config"))
    return towers


LEAVES = {"Linear", "Parameter", "Embedding", "Conv1d", "Conv2d", "Conv3d", "LayerNorm"}


UNKNOWN = "?"


def reached(repo: Repo, ref: ClassRef | None, parts: list[str]) -> list[ClassRef | str]:
    """What `layers.*.self_attn.q_proj` names in `ref`, through every branch of the __init__s (`a if c else b`,
    assignments under `if`): classes, names like "Linear" and "Parameter", UNKNOWN where the source does not show
    (the benefit of the doubt); [] when it names nothing."""
    pending, seen, out = [(ref, 0)], set(), []
    while pending:
        current, i = pending.pop()
        if (id(current), i) in seen or current is None:
            continue
        seen.add((id(current), i))
        if i == len(parts):
            out.append(current)
            continue
        if isinstance(current, str):
            if current not in LEAVES:
                out.append(UNKNOWN)
            elif parts[i] in ("weight", "bias") and i + 1 == len(parts):
                out.append(current)
            continue
        part, lists = parts[i], repo.module_lists(current)
        if part in lists:
            if i + 1 == len(parts):
                out.append("ModuleList")
            elif parts[i + 1] == "*" or parts[i + 1].isdigit():
                pending += [(element, i + 2) for element in lists[part]] if lists[part] else []
                out += [] if lists[part] else [UNKNOWN]
            continue
        pending += [(member, i + 1) for member in repo.members(current).get(part, [])]
    return out


def resolves(repo: Repo, ref: ClassRef | None, parts: list[str]) -> bool:
    return bool(reached(repo, ref, parts))


PLANS = ("config", "base-model")


@rule(
    "TFS030",
    "tp-style-sglang-refuses",
    "tensor-parallel plan uses a style SGLang refuses",
    engine=(
        "SGLang refuses to load the model (ValueError: Unsupported TP style), whatever the tensor-parallel size; "
        "vLLM replicates the layer, which breaks its sharded partner under tensor parallelism"
    ),
    fix="use colwise / rowwise (or replicate), which both engines apply",
    requires=PLANS,
    verdicts={"vLLM": "ok", "SGLang": "rejected"},  # at TP=1
)
def tp_style_sglang_refuses(repo: Repo):
    for config_class, _model, section in _towers(repo):
        plan, file, line = _tp_plan(repo, config_class, section)
        for pattern, style in (plan or {}).items():
            if sglang_style(style) is None:
                yield Issue(file, line, f"{pattern!r}: style {style!r}")


@rule(
    "TFS037",
    "tp-style-vllm-replicates",
    "tensor-parallel plan shards a Linear with a style vLLM does not apply",
    engine=(
        "vLLM replicates that nn.Linear (SGLang shards it): under tensor parallelism on vLLM a column-sharded "
        "partner or a row-sharded successor gets full-width tensors, a shape error or wrong outputs"
    ),
    fix="use colwise / rowwise, which both engines apply",
    severity=WARNING,
    requires=PLANS,
)
def tp_style_vllm_replicates(repo: Repo):
    for config_class, model, section in _towers(repo):
        plan, file, line = _tp_plan(repo, config_class, section)
        for pattern, style in (plan or {}).items():
            sharded = sglang_style(style) in ("colwise", "rowwise")
            if sharded and style not in VLLM_TP_STYLES and "Linear" in reached(repo, model, pattern.split(".")):
                yield Issue(file, line, f"{pattern!r}: style {style!r} on an nn.Linear")


@rule(
    "TFS031",
    "tp-pattern-matches-nothing",
    "tensor-parallel plan pattern matches no module",
    engine=(
        "the engines and transformers apply the pattern to nothing: the module it was meant for stays replicated, "
        "which breaks its sharded partner under tensor parallelism (a stale pattern is harmless)"
    ),
    fix="fix the pattern so it names a module path of the base model, `*` for the layer index; drop a stale one",
    severity=WARNING,
    requires=PLANS,
)
def tp_pattern_matches_nothing(repo: Repo):
    for config_class, model, section in _towers(repo):
        plan, file, line = _tp_plan(repo, config_class, section)
        if plan and model is not None:
            for pattern in plan:
                if not resolves(repo, model, pattern.split(".")):
                    yield Issue(file, line, f"pattern {pattern!r} matches no module of {model.name}")


@rule(
    "TFS032",
    "pp-plan-malformed",
    "pipeline-parallel plan is malformed",
    engine="the engines cannot split the model into stages",
    fix='use {"module": (["input names"], ["output names"])} with lists of strings',
    requires=PLANS,
)
def pp_plan_malformed(repo: Repo):
    plan, file, line = _plan(repo, repo.text_config_class, "text_config", "base_model_pp_plan")
    if plan is None:
        return
    ok = isinstance(plan, dict) and all(
        isinstance(v, list | tuple)
        and len(v) == 2
        and all(isinstance(x, list | tuple) and all(isinstance(s, str) for s in x) for x in v)
        for v in plan.values()
    )
    if not ok:
        yield Issue(file, line, "base_model_pp_plan is not {name: ([inputs], [outputs])}")


@rule(
    "TFS033",
    "pp-plan-names-missing-module",
    "pipeline-parallel plan names a module the base model does not have",
    engine="the engines cannot find the stage module",
    fix="name top-level attributes of the base model (embed_tokens, layers, norm)",
    requires=PLANS,
)
def pp_plan_names_missing_module(repo: Repo):
    plan, file, line = _plan(repo, repo.text_config_class, "text_config", "base_model_pp_plan")
    if isinstance(plan, dict) and repo.decoder is not None:
        members = repo.members(repo.decoder)
        for key in plan:
            if isinstance(key, str) and key not in members:
                yield Issue(file, line, f"{key!r} is not a module of {repo.decoder.name}")


@rule(
    "TFS034",
    "layers-outside-modulelist",
    "decoder layers are not all in one nn.ModuleList",
    engine=(
        "vLLM refuses the model even without pipeline parallelism ('layer name ... should only contain one "
        "integer'); SGLang serves it, but pipeline parallelism splits only the ModuleList named in "
        "base_model_pp_plan, and layers outside it run on every stage or nowhere"
    ),
    fix="keep every decoder layer in the single nn.ModuleList (self.layers)",
    requires=("config", "base-model", "decoder-layer"),
    verdicts={"vLLM": "rejected", "SGLang": "ok"},
)
def layers_outside_modulelist(repo: Repo):
    holder = repo.layer_owner  # the decoder, or the module under an encoder that holds its layers
    lists = [attr for attr, items in repo.module_lists(holder).items() if repo.layer in items]
    outside = [attr for attr, child in repo.children(holder).items() if child == repo.layer]
    if len(lists) != 1 or outside:
        what = (
            f"{', '.join('self.' + a for a in outside)} outside the ModuleList"
            if outside
            else f"{len(lists)} ModuleLists of layers"
        )
        init, owner = repo.method(holder, "__init__")
        yield Issue(*repo.where(owner or holder, init), f"{holder.name}: {what}")


def _tp_failure() -> str:
    return (
        "at tensor parallel > 1, SGLang refuses the model ('... does not support tensor parallel yet!'); vLLM warns "
        "and shards what its graph fusion recognises, replicating the rest, which may fail"
    )


@rule(
    "TFS035",
    "no-tp-plan",
    "the config has no base_model_tp_plan",
    engine=_tp_failure(),
    fix='declare base_model_tp_plan in the config class: q/k/v/gate/up "colwise", o/down "rowwise"',
    severity=WARNING,
    requires=PLANS,
)
def no_tp_plan(repo: Repo):
    plan, file, line = _plan(repo, repo.text_config_class, "text_config", "base_model_tp_plan")
    if not plan:
        yield Issue(file, line, "no base_model_tp_plan in the config class or config.json")


@rule(
    "TFS036",
    "no-pp-plan",
    "the config has no base_model_pp_plan",
    engine=(
        "at pipeline parallel > 1, SGLang refuses the model ('... does not support pipeline parallel yet!'); vLLM "
        "warns and infers the split from the order the decoder declares its submodules, which may fail"
    ),
    fix='declare base_model_pp_plan: {"embed_tokens": (["input_ids"], ["inputs_embeds"]), "layers": ..., "norm": ...}',
    severity=WARNING,
    applies_to=GENERATIVE,
    requires=PLANS,
    not_applicable="pipeline parallelism splits a decoder's embed_tokens / layers / norm; an encoder is served whole",
)
def no_pp_plan(repo: Repo):
    plan, file, line = _plan(repo, repo.text_config_class, "text_config", "base_model_pp_plan")
    if not plan:
        yield Issue(file, line, "no base_model_pp_plan in the config class or config.json")
