"""Running the static rules: files read as data, never imported."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from tf_scaffold.conformance import rules as _rules  # noqa: F401  (registers the static rules)
from tf_scaffold.conformance.registry import DECODER, INTERNAL, MULTIMODAL, RULES, STATIC, ids
from tf_scaffold.conformance.repo import Repo
from tf_scaffold.conformance.report import Finding

FAMILY_RULE = "TFS071"  # encoder-attention-causal: the rule whose verdict rests on telling an encoder

# What each requirement a rule declares means, and why a rule needing it cannot run without it.
FACTS: dict[str, Callable[[Repo], str | None]] = {
    "config": lambda repo: None if repo.config is not None else "config.json is missing or unreadable (TFS001)",
    "head": lambda repo: (
        None if repo.head is not None else "no head class of the repo found (auto_map, architectures)"
    ),
    "base-model": lambda repo: (
        None
        if repo.base_model is not None
        else "no base model found: auto_map has no AutoModel of the repo, and no head class wraps one"
    ),
    "decoder-layer": lambda repo: (
        None
        if repo.layer is not None
        else "no decoder layers found: the decoder holds no nn.ModuleList of layer classes of the repo"
    ),
    "attention": lambda repo: None if repo.decoder_attention else "no attention class found in the decoder layers",
    "processor": lambda repo: None if repo.processor_class is not None else "no processor class of the repo found",
    "embedding": lambda repo: (
        None if repo.embedding else "not an embedding model: architectures[0] does not end with `Model`"
    ),
    "classifier": lambda repo: (
        None
        if repo.classifier_head is not None
        else "no sequence classifier of the repo found (auto_map AutoModelForSequenceClassification, architectures)"
    ),
}


def static_checks(
    root: Path, select: Iterable[str] | None = None, ignore: Iterable[str] | None = None
) -> tuple[list[Finding], list[str], dict[str, str]]:
    """Every static rule on the repo at `root`: (findings, ids that ran, {id: why it did not run})."""
    repo = Repo(Path(root))
    wanted = [i for i in ids(STATIC) if (not select or i in set(select)) and i not in set(ignore or ())]
    findings: list[Finding] = []
    try:
        family = repo.family
    except Exception as err:  # noqa: BLE001 - the decoder rules still run; the rule that tells encoders says why
        family = MULTIMODAL if repo.multimodal else DECODER
        message = f"telling whether the repo is an encoder failed internally: {type(err).__name__}: {err}"[:300]
        findings.append(Finding(FAMILY_RULE, INTERNAL, "", 0, message))
    ran: list[str] = []
    skipped: dict[str, str] = {}
    for rule_id in wanted:
        rule = RULES[rule_id]
        if family not in rule.applies_to:
            skipped[rule_id] = rule.skip_reason(family)
            continue
        try:
            missing = next((why for need in rule.requires if (why := FACTS[need](repo))), None)
            if missing:
                skipped[rule_id] = missing
                continue
            issues = list(rule.check(repo))
        except Exception as err:  # noqa: BLE001 - one broken rule must not take the report down
            ran.append(rule_id)
            findings.append(
                Finding(rule_id, INTERNAL, "", 0, f"the check failed internally: {type(err).__name__}: {err}"[:300])
            )
            continue
        ran.append(rule_id)
        findings += [Finding(rule_id, i.severity or rule.severity, i.file, i.line, i.message) for i in issues]
    return findings, ran, skipped
