"""Findings and the report: text for people, JSON (schema-versioned) for CI."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field

from tf_scaffold.conformance.registry import ERROR, INTERNAL, RULES, WARNING

# 2: `skipped` (id -> reason), `internal_errors`, `schema`, the `transformers_lint` section.
SCHEMA_VERSION = 2


@dataclass
class Finding:
    id: str
    severity: str
    file: str
    line: int
    message: str
    engine: str = ""
    fix: str = ""

    def __post_init__(self):
        rule = RULES.get(self.id)
        if rule is not None:
            self.engine = self.engine or rule.engine
            self.fix = self.fix or rule.fix

    @property
    def title(self) -> str:
        rule = RULES.get(self.id)
        return rule.title if rule else self.id

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_dict(self) -> dict:
        return {**asdict(self), "title": self.title}

    def __str__(self) -> str:
        return f"{self.location}: {self.id} [{self.severity}] {self.message} -> {self.fix}"


@dataclass
class LintViolation:
    """A transformers-mlinter finding: the transformers-convention layer, reported with mlinter's own ids."""

    id: str
    file: str
    line: int
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Report:
    repo: str
    findings: list[Finding] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # check id -> why it did not run
    lint: list[LintViolation] = field(default_factory=list)
    lint_skipped: str | None = None  # why transformers-mlinter did not run

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def internal_errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == INTERNAL]

    @property
    def exit_code(self) -> int:
        """0 clean (warnings allowed), 1 errors found, 3 a check failed internally (its report is incomplete)."""
        if self.internal_errors:
            return 3
        return 1 if self.errors else 0

    def ids(self) -> set[str]:
        return {f.id for f in self.findings}

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema": SCHEMA_VERSION,
                "repo": self.repo,
                "checks": self.ran,
                "skipped": self.skipped,
                "errors": len(self.errors),
                "warnings": len(self.warnings),
                "internal_errors": len(self.internal_errors),
                "findings": [f.to_dict() for f in self.findings],
                "transformers_lint": {
                    "violations": [v.to_dict() for v in self.lint],
                    "skipped": self.lint_skipped,
                },
            },
            indent=2,
        )


def print_report(report: Report, dynamic: bool) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(width=None if sys.stdout.isatty() else 120, highlight=False)
    console.print(
        f"[bold]{escape(report.repo)}[/]: {len(report.ran)} checks ran ({'static + dynamic' if dynamic else 'static'})"
        + (f", {len(report.skipped)} skipped" if report.skipped else "")
    )
    for check_id, why in sorted(report.skipped.items()):
        console.print(f"  [dim]{check_id} skipped: {escape(why)}[/]")
    for severity, colour in ((INTERNAL, "magenta"), (ERROR, "red"), (WARNING, "yellow")):
        group = [f for f in report.findings if f.severity == severity]
        if not group:
            continue
        console.print(f"\n[bold {colour}]{len(group)} {severity}{'s' if len(group) > 1 else ''}[/]")
        for f in group:
            console.print(f"  [{colour}]{f.id}[/] {escape(f.location)}  {escape(f.title)}: {escape(f.message)}")
            console.print(f"        engines: {escape(f.engine)}", style="dim")
            console.print(f"        fix: {escape(f.fix)}")
    if report.lint:
        console.print(f"\n[bold]transformers conventions[/] (transformers-mlinter, not blocking): {len(report.lint)}")
        for v in report.lint:
            console.print(f"  [cyan]{v.id}[/] {escape(v.file)}:{v.line}  {escape(v.message)}")
    elif report.lint_skipped:
        console.print(f"\n[dim]transformers conventions not checked: {escape(report.lint_skipped)}[/]")
    if not dynamic:
        console.print("\n[dim]static checks only: add --trust-remote-code to run the model the way the engines do[/]")
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = "[green]backend-ready[/]" if not errors else "[red]not backend-ready[/]"
    if report.internal_errors:
        verdict = "[magenta]incomplete: a check failed internally (please report it)[/]"
    console.print(f"\n{verdict}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
