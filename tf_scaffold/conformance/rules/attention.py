"""The decoder's attention: the modules vLLM and SGLang route to their paged attention.

Only the attention classes of the decoder layers are held to these rules: vLLM hands its paged attention only the
modules whose config is the text config (`AttentionFuser.validate`), SGLang only the `layer_idx` of the decoder's
layers. A vision or audio tower's attention keeps transformers' own attention inside both engines.
"""

from __future__ import annotations

import ast

from tf_scaffold.conformance import astutil
from tf_scaffold.conformance.classes import ClassRef
from tf_scaffold.conformance.registry import GENERATIVE, WARNING, Issue, rule
from tf_scaffold.conformance.repo import Repo
from tf_scaffold.conformance.roles import (
    interface_lookups,
    interface_names,
    is_interface_lookup,
    literal_interface_name,
)

HARD_CODED_ATTENTION = ("scaled_dot_product_attention", "flash_attn_func", "flash_attn_varlen_func")


def _dispatch(repo: Repo, ref: ClassRef):
    """(forward, its class, calls through a lookup variable, direct `ALL_ATTENTION_FUNCTIONS[...](...)` calls)."""
    forward, owner = repo.method(ref, "forward")
    if forward is None:
        return None, None, [], []
    variables = interface_lookups(owner.source, forward)
    names = interface_names(owner.source)
    calls, direct = [], []
    for node in ast.walk(forward):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id in variables:
            calls.append(node)
        elif isinstance(node.func, ast.Subscript | ast.Call) and is_interface_lookup(node.func, names):
            direct.append(node)
    return forward, owner, calls, direct


def _each_attention(repo: Repo):
    for ref in repo.decoder_attention:
        forward, owner, calls, direct = _dispatch(repo, ref)
        if forward is not None:
            yield ref, forward, owner, calls, direct


ATTENTION = ("config", "attention")


@rule(
    "TFS011",
    "attention-not-dispatched",
    "attention does not dispatch through the attention interface",
    engine=(
        'vLLM refuses the model: "Layer N does not dispatch through the Transformers attention interface and vLLM has '
        'no other way to handle it."; SGLang loads it and serves wrong tokens, with no error: its attention is never '
        "called, so from the second generated token on the model sees only the current token"
    ),
    fix=(
        "call attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, "
        "eager_attention_forward) once in forward"
    ),
    requires=ATTENTION,
    verdicts={"vLLM": "rejected", "SGLang": "wrong"},
)
def attention_not_dispatched(repo: Repo):
    for ref, forward, owner, calls, direct in _each_attention(repo):
        if not calls and not direct:
            yield Issue(
                *repo.where(owner, forward), f"{ref.name}.forward makes no call through the attention interface"
            )


@rule(
    "TFS012",
    "attention-dispatched-twice",
    "attention forward calls the interface more than once",
    engine=(
        "vLLM requires exactly one call through the interface variable per attention forward and refuses the model "
        "(SGLang 0.5.23 serves it: each call goes through its attention)"
    ),
    fix="keep exactly one call through the interface variable",
    requires=ATTENTION,
    verdicts={"vLLM": "rejected", "SGLang": "ok"},
)
def attention_dispatched_twice(repo: Repo):
    for ref, _forward, owner, calls, direct in _each_attention(repo):
        if len(calls) + len(direct) > 1:
            yield Issue(
                *repo.where(owner, (calls + direct)[1]),
                f"{ref.name}.forward calls the attention interface {len(calls) + len(direct)} times",
            )


@rule(
    "TFS013",
    "attention-subscript-lookup",
    "attention looked up with ALL_ATTENTION_FUNCTIONS[...] instead of get_interface(...)",
    engine="transformers' set_attn_implementation() looks for `get_interface(` and silently refuses to switch",
    fix="use ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)",
    severity=WARNING,
    requires=ATTENTION,
)
def attention_subscript_lookup(repo: Repo):
    for ref, forward, owner, _calls, _direct in _each_attention(repo):
        names = interface_names(owner.source)
        for node in ast.walk(forward):
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in names:
                yield Issue(*repo.where(owner, node), f"{ref.name}.forward uses {node.value.id}[...]")


@rule(
    "TFS014",
    "attention-scaling-unresolvable",
    "attention scaling is not a literal or self.<attr>",
    engine='vLLM: "Cannot resolve attention scaling expression"',
    fix="store the scale in __init__ (self.scaling = head_dim**-0.5) and pass scaling=self.scaling",
    requires=ATTENTION,
)
def attention_scaling_unresolvable(repo: Repo):
    for ref, _forward, owner, calls, _direct in _each_attention(repo):
        for call in calls[:1]:
            scaling = next((kw.value for kw in call.keywords if kw.arg == "scaling"), None)
            if scaling is None:
                continue  # vLLM falls back to head_size**-0.5
            literal = isinstance(scaling, ast.Constant) and isinstance(scaling.value, int | float)
            attr = (
                isinstance(scaling, ast.Attribute)
                and isinstance(scaling.value, ast.Name)
                and scaling.value.id == "self"
            )
            if not (literal or attr):
                yield Issue(*repo.where(owner, call), f"{ref.name}.forward passes scaling={astutil.unparse(scaling)}")


def _init_line(repo: Repo, ref: ClassRef):
    init, owner = repo.method(ref, "__init__")
    return repo.where(owner or ref, init)


@rule(
    "TFS015",
    "attention-without-layer-idx",
    "attention module does not set self.layer_idx",
    engine=(
        "the engines key their KV cache on an int layer_idx, one attention module per index: vLLM refuses a layer "
        'without one ("Layer N does not dispatch ..."), SGLang looks its attention up by it'
    ),
    fix="set self.layer_idx = layer_idx in the attention __init__",
    requires=ATTENTION,
)
def attention_without_layer_idx(repo: Repo):
    for ref in repo.decoder_attention:
        if "layer_idx" not in repo.init_attrs(ref):
            yield Issue(*_init_line(repo, ref), f"{ref.name}.__init__ does not set self.layer_idx")


@rule(
    "TFS016",
    "attention-without-is-causal",
    "attention module does not set self.is_causal",
    engine="the engines and transformers' sdpa/flash read is_causal to choose causal masking (False = encoder)",
    fix="set self.is_causal = True in the attention __init__",
    severity=WARNING,
    applies_to=GENERATIVE,
    requires=ATTENTION,
    not_applicable="an encoder's is_causal is held to TFS071/TFS072",
)
def attention_without_is_causal(repo: Repo):
    for ref in repo.decoder_attention:
        attrs = repo.init_attrs(ref)
        if "is_causal" not in attrs and repo.class_attr(ref, "is_causal")[0] is None:
            yield Issue(*_init_line(repo, ref), f"{ref.name}.__init__ does not set self.is_causal")


@rule(
    "TFS017",
    "attention-output-not-reshaped",
    "attention output is not reshaped with -1",
    engine="under tensor parallelism each rank holds only its heads: a hard-coded heads*head_dim reshape breaks",
    fix="attn_output = attn_output.reshape(*input_shape, -1)",
    severity=WARNING,
    requires=ATTENTION,
)
def attention_output_not_reshaped(repo: Repo):
    for ref, forward, owner, calls, _direct in _each_attention(repo):
        for call in calls[:1]:
            outputs = set()
            for node in ast.walk(forward):
                if isinstance(node, ast.Assign) and node.value is call:
                    outputs |= {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            reshaped = any(
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("reshape", "view")
                and node.args
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in outputs
                and astutil.literal(node.args[-1]) == -1
                for node in ast.walk(forward)
            )
            if not reshaped:
                yield Issue(
                    *repo.where(owner, call), f"{ref.name}.forward does not reshape the attention output with -1"
                )


@rule(
    "TFS018",
    "attention-hard-coded",
    "attention computed by a hard-coded kernel",
    engine=(
        "the engines cannot replace it with their paged attention: vLLM refuses the model; SGLang serves wrong tokens, "
        "with no error (the kernel never sees SGLang's KV cache)"
    ),
    fix="compute attention only through the attention interface",
    requires=ATTENTION,
    verdicts={"vLLM": "rejected", "SGLang": "wrong"},
)
def attention_hard_coded(repo: Repo):
    for ref in repo.decoder_attention:
        for current in repo.chain(ref):
            if not current.in_repo:
                continue
            for node in ast.walk(current.node):
                if isinstance(node, ast.Call) and astutil.call_name(node) in HARD_CODED_ATTENTION:
                    yield Issue(*repo.where(current, node), f"{current.name} calls {astutil.call_name(node)} directly")


@rule(
    "TFS019",
    "attention-without-config",
    "attention module does not keep self.config",
    engine="the engines read the text config from the attention module (vLLM routes it to its attention by it)",
    fix="set self.config = config in the attention __init__",
    severity=WARNING,
    requires=ATTENTION,
)
def attention_without_config(repo: Repo):
    for ref in repo.decoder_attention:
        if "config" not in repo.init_attrs(ref):
            yield Issue(*_init_line(repo, ref), f"{ref.name}.__init__ does not set self.config")


@rule(
    "TFS023",
    "attention-dispatch-vllm-cannot-read",
    "attention dispatches in a form vLLM does not read",
    engine=(
        "vLLM reads the attention forward's source and accepts only a call through a local variable assigned from "
        "the bare name ALL_ATTENTION_FUNCTIONS (`.get_interface(...)` or `[...]`): under another name, or called "
        'directly, it refuses the model ("Layer N does not dispatch through the Transformers attention interface"); '
        "SGLang, which only registers its function in the interface, serves it"
    ),
    fix=(
        "import ALL_ATTENTION_FUNCTIONS under its own name and call it through one local variable: "
        "attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(...); attention_interface(self, ...)"
    ),
    requires=ATTENTION,
    verdicts={"vLLM": "rejected", "SGLang": "ok"},
)
def attention_dispatch_vllm_cannot_read(repo: Repo):
    for ref, forward, owner, calls, direct in _each_attention(repo):
        for call in direct:
            yield Issue(
                *repo.where(owner, call),
                f"{ref.name}.forward calls {astutil.unparse(call.func)} directly, not through a local variable",
            )
        if calls and not direct:
            lookups = interface_lookups(owner.source, forward)
            called = {c.func.id for c in calls if isinstance(c.func, ast.Name)}
            if not any(literal_interface_name(lookups[name].value) for name in called if name in lookups):
                node = lookups[next(iter(called))]
                yield Issue(
                    *repo.where(owner, node),
                    f"{ref.name}.forward looks the interface up as {astutil.unparse(node.value)}",
                )
