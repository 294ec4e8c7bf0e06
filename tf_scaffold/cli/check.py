"""`tf-scaffold check` (any repo, against the engines' contract) and `tf-scaffold update` (a generated repo, to the
installed template)."""

from __future__ import annotations

from pathlib import Path

import typer

from tf_scaffold.cli.app import command, epilog
from tf_scaffold.errors import ExitCode, ScaffoldError


@command(
    epilog=epilog(
        [
            "`tf-scaffold check ./my-model` (static: reads files, never runs the repo's code)",
            "`tf-scaffold check ./my-model --trust-remote-code` (also runs the engines' calls on CPU)",
            "`tf-scaffold check ./my-model --json --ignore TFS016,TFS017`",
        ],
        {
            ExitCode.OK: "no errors",
            ExitCode.FAILED: "errors found",
            ExitCode.USAGE: "usage error (bad option, not a folder, no config.json: one line on stderr, even with --json)",
            ExitCode.INTERNAL: "a check failed internally (report it)",
        },
    )
)
def check(
    path: Path = typer.Argument(..., help="A model repo folder (config.json + modeling code)."),
    trust_remote_code: bool = typer.Option(
        False, "--trust-remote-code", help="Import and run the repo's code for the dynamic checks (as the engines do)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    select: str = typer.Option(None, help="Comma-separated check ids to run/report (e.g. TFS011,TFS020)."),
    ignore: str = typer.Option(None, help="Comma-separated check ids to leave out."),
    no_tp: bool = typer.Option(False, "--no-tp", help="Skip the 2-process tensor-parallel run (TFS109)."),
    no_lint: bool = typer.Option(False, "--no-lint", help="Leave out the transformers-mlinter section."),
) -> None:
    """Check that a repo is servable by vLLM and SGLang's Transformers backend: what is wrong, where, how to fix it."""
    import tf_scaffold.conformance.dynamic.rules  # noqa: F401  (registers the dynamic rule ids, without torch)
    from tf_scaffold.conformance import RULES
    from tf_scaffold.fs import require_repo

    ids = {
        k: [i.strip().upper() for i in v.split(",") if i.strip()]
        for k, v in (("select", select), ("ignore", ignore))
        if v
    }
    for key, values in ids.items():
        unknown = [i for i in values if i not in RULES]
        if unknown:
            raise ScaffoldError(
                f"unknown check id {unknown[0]} in --{key}: `tf-scaffold check --help`; ids are listed in docs/conformance.md"
            )
    require_repo(path)
    from tf_scaffold.conformance import check as run_check
    from tf_scaffold.conformance.report import Finding, Report, print_report

    try:
        report = run_check(
            path, trust_remote_code, ids.get("select"), ids.get("ignore"), tp=not no_tp, lint=not no_lint
        )
    except Exception as err:  # noqa: BLE001 - a bug of ours: still a report, with exit code 3
        report = Report(repo=str(path))
        report.findings.append(Finding("TFS000", "internal-error", "", 0, f"{type(err).__name__}: {err}"[:300]))
    if json_output:
        typer.echo(report.to_json())
    else:
        print_report(report, trust_remote_code)
    raise typer.Exit(int(ExitCode(report.exit_code)))


# ---- update ----------------------------------------------------------------------------------------------------------


@command(
    epilog=epilog(
        [
            "`tf-scaffold update ./acme-lm --pretend` (print the diff, write nothing)",
            "`tf-scaffold update ./acme-lm` (3-way merge the installed template into the repo)",
            "`tf-scaffold update ./old-repo --adopt` (a repo made before update data: record the installed template)",
        ],
        {
            ExitCode.OK: "updated (or nothing to do)",
            ExitCode.FAILED: "conflicts or weights that no longer fit",
            ExitCode.USAGE: "usage error (not a folder, no .tf-scaffold.json)",
        },
    )
)
def update(
    path: Path = typer.Argument(..., help="A repo made by `tf-scaffold new` (it holds .tf-scaffold.json)."),
    pretend: bool = typer.Option(False, "--pretend", help="Print the diff the update would apply; write nothing."),
    adopt: bool = typer.Option(
        False, "--adopt", help="For a repo made before update data existed: record the installed template as its base."
    ),
    rebuild_weights: bool = typer.Option(
        False, "--rebuild-weights", help="Regenerate the tiny random weights when they no longer fit the updated code."
    ),
) -> None:
    """Bring a generated repo to the installed template: your edits are kept, template changes are merged in."""
    from tf_scaffold.fs import require_folder
    from tf_scaffold.update import update as run_update

    require_folder(path)
    result = run_update(path, pretend=pretend, adopt=adopt, weights=rebuild_weights)
    if pretend:
        typer.echo(result.diff(), nl=False)
    verb = "would be" if pretend else "were"
    typer.echo(f"{path}: tf-scaffold {result.old_version} -> {result.new_version}")
    if not result.files:
        typer.echo("  nothing to change: the repo already has the installed template's code")
    for change in result.files:
        colour = typer.colors.RED if change.action == "conflict" else None
        typer.secho(f"  {change.action:10s} {change.path}", fg=colour)
    for note in result.notes:
        typer.echo(f"  note: {note}")
    if result.rebuilt_weights:
        typer.echo("  model.safetensors rebuilt: tiny random weights for the updated code, from the answers' seed")
    problems = []
    if result.conflicts:
        problems.append(
            f"{len(result.conflicts)} file(s) {verb} left with conflict markers (<<<<<<< yours ... >>>>>>>): "
            f"{', '.join(result.conflicts)}; edit them to keep what you want, then run the tests"
        )
    if result.weights:
        problems.append(result.weights)
    for problem in problems:
        typer.secho(f"error: {problem}", fg=typer.colors.RED, err=True)
    if problems:
        raise typer.Exit(int(ExitCode.FAILED))
    if not pretend and result.files:
        typer.echo(f"Next: tf-scaffold check {path} && (cd {path} && pytest)")
