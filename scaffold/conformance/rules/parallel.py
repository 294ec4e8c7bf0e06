"""Tensor- and pipeline-parallel plans: data the engines shard and split the model by."""

from __future__ import annotations

from scaffold.conformance import astutil
from scaffold.conformance.model import ClassRef, Repo
from scaffold.conformance.registry import WARNING, Issue, rule

# Tensor-parallel styles both engines apply; anything else is silently replicated by them.
ENGINE_TP_STYLES = {
    "colwise",
    "rowwise",
    "replicate",
    "colwise_gather_output",
    "rowwise_split_input",
    "colwise_rep",
    "rowwise_rep",
}


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


def _towers(repo: Repo) -> list[tuple[ClassRef | None, ClassRef | None, str]]:
    """(config class, the model class its plan is relative to, config.json section) per tower."""
    towers = [(repo.text_config_class, repo.decoder, "text_config")]
    vision = repo.sub_config_classes.get("vision_config")
    tower = repo.children(repo.base_model).get("vision_tower")
    if vision is not None and isinstance(tower, ClassRef):
        towers.append((vision, tower, "vision_config"))
    return towers


def resolves(repo: Repo, ref: ClassRef | None, parts: list[str]) -> bool:
    """Does `layers.*.self_attn.q_proj` name a module of `ref` (as far as the source shows)?"""
    current, i = ref, 0
    while i < len(parts):
        if current is None:
            return False
        part = parts[i]
        lists = repo.module_lists(current)
        if part in lists:
            if i + 1 < len(parts) and (parts[i + 1] == "*" or parts[i + 1].isdigit()):
                current = lists[part][0] if lists[part] else None
                i += 2
                continue
            return i + 1 == len(parts)
        children = repo.children(current)
        if part not in children:
            return False
        child = children[part]
        if not isinstance(child, ClassRef):
            return i + 1 == len(parts) or parts[i + 1] in ("weight", "bias")
        current, i = child, i + 1
    return True


PLANS = ("config", "base-model")


@rule(
    "TFS030",
    "tp-style-unknown",
    "tensor-parallel plan uses a style the engines do not apply",
    engine=(
        "vLLM and SGLang replicate a layer with an unknown style while its partner stays sharded: wrong outputs "
        "under tensor parallelism; transformers raises ValueError"
    ),
    fix="use colwise / rowwise (or replicate, colwise_gather_output, rowwise_split_input)",
    requires=PLANS,
)
def tp_style_unknown(repo: Repo):
    for config_class, _model, section in _towers(repo):
        plan, file, line = _plan(repo, config_class, section, "base_model_tp_plan")
        if isinstance(plan, dict):
            for pattern, style in plan.items():
                if style not in ENGINE_TP_STYLES:
                    yield Issue(file, line, f"{pattern!r}: style {style!r}")


@rule(
    "TFS031",
    "tp-pattern-matches-nothing",
    "tensor-parallel plan pattern matches no module",
    engine="the layer is silently left unsharded (transformers only warns): wrong shapes or outputs under tensor parallelism",
    fix="fix the pattern so it names a module path of the base model, `*` for the layer index",
    requires=PLANS,
)
def tp_pattern_matches_nothing(repo: Repo):
    for config_class, model, section in _towers(repo):
        plan, file, line = _plan(repo, config_class, section, "base_model_tp_plan")
        if isinstance(plan, dict) and model is not None:
            for pattern in plan:
                if isinstance(pattern, str) and not resolves(repo, model, pattern.split(".")):
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
        children = repo.children(repo.decoder)
        for key in plan:
            if key not in children:
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
    lists = [attr for attr, items in repo.module_lists(repo.decoder).items() if repo.layer in items]
    outside = [attr for attr, child in repo.children(repo.decoder).items() if child == repo.layer]
    if len(lists) != 1 or outside:
        what = (
            f"{', '.join('self.' + a for a in outside)} outside the ModuleList"
            if outside
            else f"{len(lists)} ModuleLists of layers"
        )
        init, owner = repo.method(repo.decoder, "__init__")
        yield Issue(*repo.where(owner or repo.decoder, init), f"{repo.decoder.name}: {what}")


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
    requires=PLANS,
)
def no_pp_plan(repo: Repo):
    plan, file, line = _plan(repo, repo.text_config_class, "text_config", "base_model_pp_plan")
    if not plan:
        yield Issue(file, line, "no base_model_pp_plan in the config class or config.json")
