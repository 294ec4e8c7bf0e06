"""The head class and the checkpoint: the engines never run the head, and load only `model.*` and `lm_head.*`."""

from __future__ import annotations

import ast

from tf_scaffold.conformance import astutil
from tf_scaffold.conformance.classes import ClassRef
from tf_scaffold.conformance.files import safetensors_keys
from tf_scaffold.conformance.registry import ENCODER, WARNING, Issue, rule
from tf_scaffold.conformance.repo import Repo

MODULE_CALLS = ("Linear", "Embedding", "Parameter", "ModuleList", "Sequential", "LayerNorm", "Conv1d", "Conv2d")


@rule(
    "TFS040",
    "head-extra-modules",
    "the head class defines modules besides model and lm_head",
    engine=(
        "the engines never build the head class: its extra weights have nowhere to go and both refuse the "
        "checkpoint (vLLM: 'There is no module or parameter named ...'; SGLang: 'No module or parameter named "
        "...'), and the extra computation would never run (an encoder's sequence classifier may hold a `classifier` "
        "or `score` module: vLLM applies that one)"
    ),
    fix="move the module into the base model",
    requires=("config", "head"),
    verdicts={"vLLM": "rejected", "SGLang": "rejected"},
)
def head_extra_modules(repo: Repo):
    init, owner = repo.method(repo.head, "__init__")
    extra = []
    allowed = {"model", "lm_head", _prefix(repo), *(CLASSIFIER_NAMES if repo.family == ENCODER else ())}
    for attr, (value, _) in repo.init_attrs(repo.head).items():
        if attr in allowed or not isinstance(value, ast.Call):
            continue
        child = repo.children(repo.head).get(attr)
        if isinstance(child, ClassRef) or astutil.call_name(value) in MODULE_CALLS:
            extra.append(attr)
    if extra and owner is not None:
        yield Issue(*repo.where(owner, init), f"{repo.head.name} defines {', '.join('self.' + a for a in extra)}")


def _prefix(repo: Repo) -> str:
    """The head's `base_model_prefix` (transformers' default: "model")."""
    node, _ = repo.class_attr(repo.head, "base_model_prefix")
    prefix = astutil.literal(node) if node is not None else None
    return prefix if isinstance(prefix, str) and prefix else "model"


# The modules vLLM takes a sequence classifier's head from, first found (`getattr_iter(seq_cls_model, ["classifier",
# "score"])` in vllm/model_executor/models/transformers/pooling.py); SGLang maps both checkpoint prefixes to its
# `classifier.` and ignores them.
CLASSIFIER_NAMES = ("classifier", "score")

# The checkpoint prefixes SGLang's `hf_to_sglang_mapper` (sglang/srt/models/transformers.py) maps onto its `model.`;
# vLLM maps whatever `base_model_prefix` says.
SGLANG_BASE_PREFIXES = ("model", "transformer", "gpt_neox")


@rule(
    "TFS044",
    "base-model-prefix-sglang-cannot-map",
    "the base model sits under a prefix SGLang does not map",
    engine=(
        "vLLM renames `<base_model_prefix>.*` checkpoint keys to `model.*`; SGLang maps only model., transformer. "
        "and gpt_neox. and looks for the rest under model.<prefix>.*: 'No module or parameter named ...' at load"
    ),
    fix='name the head\'s base model attribute `model` (base_model_prefix = "model") and save its weights as model.*',
    requires=("config", "head"),
)
def base_model_prefix_sglang_cannot_map(repo: Repo):
    prefix = _prefix(repo)
    attrs = repo.init_attrs(repo.head)
    if prefix not in SGLANG_BASE_PREFIXES and prefix in attrs:
        value, owner = attrs[prefix]
        yield Issue(*repo.where(owner, value), f"{repo.head.name} holds its base model as self.{prefix}")


@rule(
    "TFS042",
    "lm-head-not-one-linear",
    "the LM head computes more than one Linear",
    engine=(
        "the engines replace the head with their own single linear layer (vLLM's and SGLang's ParallelLMHead, tied "
        "when tie_word_embeddings) and apply only logit_scale / final_logit_softcapping from the config: anything "
        "else the head computes never runs, and the served logits differ from transformers'"
    ),
    fix=(
        "keep lm_head one nn.Linear and the head's forward `logits = self.lm_head(hidden_states)`; move other "
        "computation into the base model, or express scaling as config.logit_scale / final_logit_softcapping"
    ),
    severity=WARNING,
    requires=("config", "head"),
)
def lm_head_not_one_linear(repo: Repo):
    attrs = repo.init_attrs(repo.head)
    if "lm_head" in attrs:
        value, owner = attrs["lm_head"]
        if isinstance(value, ast.Call) and astutil.call_name(value) != "Linear":
            yield Issue(*repo.where(owner, value), f"{repo.head.name}.lm_head is {astutil.unparse(value.func)}")
    forward, owner = repo.method(repo.head, "forward")
    if forward is None or not owner.in_repo:
        return
    logits = set()
    for node in ast.walk(forward):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            if astutil.self_call_target(node.value) == "lm_head":
                logits |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    for node in ast.walk(forward):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in logits for t in node.targets):
            value = node.value
            reads_logits = any(isinstance(n, ast.Name) and n.id in logits for n in ast.walk(value))
            if reads_logits and isinstance(value, ast.BinOp | ast.Call | ast.UnaryOp):
                if isinstance(value, ast.Call) and astutil.call_name(value) in ("float", "to", "contiguous"):
                    continue
                yield Issue(*repo.where(owner, node), f"{repo.head.name}.forward post-processes the logits")
                return


@rule(
    "TFS043",
    "checkpoint-keys-outside-model",
    "checkpoint keys outside model.* and lm_head.*, or an unreadable checkpoint header",
    engine=(
        "vLLM: 'There is no module or parameter named ...'; SGLang: 'No module or parameter named ...' (an encoder's "
        "checkpoint may also hold its base model's keys with no prefix, as BertModel saves them, which vLLM and "
        "SGLang map to model.*, and classifier.* / score.*, which vLLM loads into the classifier and SGLang ignores)"
    ),
    fix="keep every weight inside the base model (prefix model.) or the LM head",
    requires=("config",),
    verdicts={"vLLM": "rejected", "SGLang": "rejected"},
)
def checkpoint_keys_outside_model(repo: Repo):
    # vLLM renames <base_model_prefix>.* to model.*; TFS044 says what SGLang does with it
    allowed = ("model.", "lm_head.") + ((_prefix(repo) + ".",) if repo.head is not None else ())
    if repo.family == ENCODER:
        # vLLM's `missing_bmp_pattern` maps keys that start with a direct child of the base model to model.*, SGLang
        # maps "" to model.
        children = repo.members(repo.base_model) if repo.base_model is not None else {}
        allowed += tuple(f"{name}." for name in (*children, *CLASSIFIER_NAMES))
    for name, keys in safetensors_keys(repo.root).items():
        if isinstance(keys, str):
            yield Issue(name, 0, keys)
            continue
        bad = [k for k in keys if not k.startswith(allowed)]
        if bad:
            shown = ", ".join(bad[:3]) + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")
            yield Issue(name, 0, f"{len(bad)} keys outside model./lm_head.: {shown}")
