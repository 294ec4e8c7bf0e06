"""Human-readable conformance report (rich), grouped by severity."""

from __future__ import annotations

import sys

from scaffold.conformance.checks import RULES, Report


def print_report(report: Report, dynamic: bool) -> None:
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 120, highlight=False)
    console.print(
        f"[bold]{report.repo}[/]: {len(report.ran)} checks ran ({'static + dynamic' if dynamic else 'static'})"
        + (f", {len(report.skipped)} skipped" if report.skipped else "")
    )
    for check_id, why in sorted(report.skipped.items()):
        console.print(f"  [dim]{check_id} skipped: {why}[/]")
    for severity, colour in (("error", "red"), ("warning", "yellow")):
        group = [f for f in report.findings if f.severity == severity]
        if not group:
            continue
        console.print(f"\n[bold {colour}]{len(group)} {severity}{'s' if len(group) > 1 else ''}[/]")
        for f in group:
            console.print(f"  [{colour}]{f.id}[/] {f.location}  {RULES[f.id][0]}: {f.message}")
            console.print(f"        engines: {f.engine}", style="dim")
            console.print(f"        fix: {f.fix}")
    if not dynamic:
        console.print("\n[dim]static checks only: add --trust-remote-code to run the model the way the engines do[/]")
    errors = len(report.errors)
    warnings = len(report.findings) - errors
    verdict = "[green]backend-ready[/]" if not errors else "[red]not backend-ready[/]"
    console.print(f"\n{verdict}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
