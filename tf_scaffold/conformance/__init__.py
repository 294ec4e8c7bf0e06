"""Backend conformance: is a Hugging Face custom-code repo servable by vLLM and SGLang's Transformers backend?

`check(root)` runs the rules of the registry (`registry.RULES`): the static ones read `config.json`, the safetensors
headers and the Python sources as data (never importing the repo); the dynamic ones, only when the repo's code is
trusted, do on CPU what the engines do. Every finding has a stable id, a severity, `file:line`, the engine failure
it prevents and the fix; every rule that did not run says why.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tf_scaffold.conformance.registry import DYNAMIC, ERROR, INTERNAL, RULES, STATIC, WARNING, ids
from tf_scaffold.conformance.report import SCHEMA_VERSION, Finding, Report
from tf_scaffold.conformance.static import static_checks

__all__ = [
    "DYNAMIC",
    "ERROR",
    "INTERNAL",
    "RULES",
    "SCHEMA_VERSION",
    "STATIC",
    "WARNING",
    "Finding",
    "Report",
    "check",
    "ids",
    "static_checks",
]

# the dynamic rules' declarations (not their code, which imports torch when it runs): `check()` and every reader of
# RULES see the whole registry whichever module was imported first
from tf_scaffold.conformance.dynamic import rules as _dynamic_rules  # noqa: E402, F401


def check(
    root: Path,
    trust_remote_code: bool = False,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    tp: bool = True,
    lint: bool = True,
) -> Report:
    """Static rules, plus the dynamic ones when the repo's code is trusted, plus transformers-mlinter's section."""
    select = set(select or ())
    ignore = set(ignore or ())
    report = Report(repo=str(root))
    report.findings, report.ran, report.skipped = static_checks(root, select, ignore)
    wanted = [i for i in ids(DYNAMIC) if (not select or i in select) and i not in ignore]
    if trust_remote_code and wanted:
        blocking = [f for f in report.findings if f.id in ("TFS001", "TFS010") and f.severity == ERROR]
        if blocking:
            for check_id in wanted:
                report.skipped[check_id] = (
                    f"the repo's code cannot be imported ({blocking[0].id}: {blocking[0].message})"
                )
        else:
            from tf_scaffold.conformance.dynamic import dynamic_checks

            findings, ran, skipped = dynamic_checks(root, select=wanted, tp=tp)
            report.findings += findings
            report.ran += ran
            report.skipped.update(skipped)
    elif wanted:
        for check_id in wanted:
            report.skipped[check_id] = "dynamic: runs the repo's code, only with --trust-remote-code"
    if lint:
        from tf_scaffold.conformance.mlint import lint as run_lint

        report.lint, report.lint_skipped = run_lint(Path(root))
    return report
