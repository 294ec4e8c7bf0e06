"""`tf-scaffold test` (a repo's harness with an engine's interpreter) and `tf-scaffold bench` (its speed under each
engine's Transformers backend)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from tf_scaffold.cli.app import INTERRUPTED, command, epilog
from tf_scaffold.errors import ExitCode, ScaffoldError


@command(
    epilog=epilog(
        [
            "`tf-scaffold test acme-lm` (CPU checks + every engine importable here)",
            "`tf-scaffold test acme-lm --python .venv-vllm/bin/python --engines vllm`",
            "`tf-scaffold test acme-lm --python .venv-sglang/bin/python --engines sglang --engines-only --fail-on-skip`",
            "`tf-scaffold test acme-lm --engines-only --engines vllm,sglang` (on a GPU machine with both installed)",
        ],
        {
            ExitCode.OK: "every selected test passed",
            ExitCode.FAILED: "a test failed (or, with --fail-on-skip, skipped)",
            ExitCode.USAGE: "usage error (not a generated repo, unknown engine, no test selected)",
            ExitCode.ENVIRONMENT: "the interpreter does not exist or lacks tf-scaffold",
            ExitCode.INTERRUPTED: INTERRUPTED,
        },
    )
)
def test(
    path: Path = typer.Argument(..., help="The generated model repo."),
    engines: str = typer.Option(None, help="Comma-separated engines to run: vllm, sglang (default: all that import)."),
    python: str = typer.Option(None, help="Interpreter of the environment to test in (default: this one)."),
    engines_only: bool = typer.Option(False, "--engines-only", help="Skip the CPU checks; run only engine tests."),
    fail_on_skip: bool = typer.Option(
        False, "--fail-on-skip", help="Exit 1 when a test was skipped (for CI: proves the engines really ran)."
    ),
    keyword: str = typer.Option(None, "-k", help="Only the tests whose names match this pytest -k expression."),
) -> None:
    """Run a repo's harness: CPU checks and the engine tests, then report what ran, passed and skipped (and why)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from tf_scaffold.engines import run_harness

    selected = [e.strip() for e in engines.split(",") if e.strip()] if engines else None
    report = run_harness(path, selected, python=python, cpu=not engines_only, keyword=keyword)
    console = Console(width=None if sys.stdout.isatty() else 160)
    versions = ", ".join(f"{k} {v}" for k, v in report.versions.items() if v) or "unknown"
    console.print(f"\n[bold]{path}[/] with {report.python}: {versions}")
    table = Table(show_header=True, header_style="bold")
    table.add_column("test", overflow="fold")
    table.add_column("result")
    table.add_column("why / seconds", overflow="fold")
    colours = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow", "xfailed": "magenta"}
    for o in report.outcomes:
        detail = o.message.splitlines()[0][:200] if o.outcome != "passed" and o.message else f"{o.seconds:.1f} s"
        # escaped: test ids like `test_x[tp2]` would otherwise read as markup and lose their parameters
        table.add_row(escape(o.name), f"[{colours[o.outcome]}]{o.outcome}[/]", escape(detail))
    console.print(table)
    console.print(f"harness finished in {report.seconds:.0f} s")
    console.print(
        f"harness: {report.count('passed')} passed, {report.count('failed') + report.count('error')} failed, "
        f"{report.count('skipped')} skipped"
        + (
            f", {report.count('xfailed')} failed as a known engine defect does (xfailed)"
            if report.count("xfailed")
            else ""
        ),
        highlight=False,
    )
    failed = report.count("failed") + report.count("error")
    # a known engine defect that ran and showed itself is proven; a skip is not
    ran = report.count("passed") + report.count("xfailed")
    unproven = fail_on_skip and (report.count("skipped") or not ran)
    if unproven:
        console.print(f"[red]--fail-on-skip: {report.count('skipped')} skipped, {report.count('passed')} passed[/]")
    ok = report.exit_code == 0 and not failed and not unproven
    raise typer.Exit(int(ExitCode.OK if ok else ExitCode.FAILED))


# ---- bench -----------------------------------------------------------------------------------------------------------


@command(
    epilog=epilog(
        [
            "`tf-scaffold bench acme-lm --python .venv-vllm/bin/python --python .venv-sglang/bin/python`",
            "`tf-scaffold bench acme-lm --python .venv-vllm/bin/python --engines vllm --batch-sizes 8,32 --compiled`",
            "`tf-scaffold bench my-model --python .venv-vllm/bin/python --native Qwen3ForCausalLM` (a hand-written repo)",
        ],
        {
            ExitCode.OK: "measured",
            ExitCode.FAILED: "the sides disagreed, or the results could not be written",
            ExitCode.USAGE: "usage error (not a model repo that generates, bad option, earlier results without --force)",
            ExitCode.ENVIRONMENT: "an interpreter does not exist or lacks the engine or tf-scaffold",
            ExitCode.INTERRUPTED: INTERRUPTED,
        },
    )
)
def bench(
    path: Path = typer.Argument(
        ..., help="The model repo (one that generates: AutoModelForCausalLM or AutoModelForImageTextToText)."
    ),
    python: list[str] = typer.Option(
        None, help="Interpreter of an environment with an engine; repeat for one per engine (default: this one)."
    ),
    engines: str = typer.Option(None, help="Comma-separated: vllm, sglang (default: those the interpreters have)."),
    batch_sizes: str = typer.Option("4,8,16,32", help="Comma-separated batch sizes."),
    new_tokens: int = typer.Option(64, min=1, help="Greedy tokens generated per prompt (EOS ignored)."),
    prompt_len: int = typer.Option(32, min=1, help="Prompt length in tokens (random ids, the same for every side)."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for bench.json, bench.md, bench.png [./bench-NAME]."),
    force: bool = typer.Option(False, "--force", help="Replace the results of an earlier bench in --out."),
    native: str = typer.Option(
        None, help="The in-library twin the engines run natively (e.g. LlamaForCausalLM), or none [from the answers]."
    ),
    compiled: bool = typer.Option(
        None,
        "--compiled/--eager",
        help="The engines compiled (torch.compile, CUDA graphs) [GPU: compiled, CPU: eager].",
    ),
    threads: int = typer.Option(None, min=1, help="CPU threads for every side, on the same cores [all usable cores]."),
    budget: float = typer.Option(600, min=1, help="Seconds of measuring per engine before stopping anyway."),
    precision: float = typer.Option(
        0.02, min=0.0001, help="Stop when the backend/native ratio's 95 % interval is this narrow (± half-width)."
    ),
    min_rounds: int = typer.Option(6, min=1, help="Rounds before the interval may stop the run (6: a 95 % interval)."),
    max_rounds: int = typer.Option(40, min=1, help="Rounds at most."),
    profile: bool = typer.Option(False, "--profile", help="Profile a run even when the backend is not slower."),
    transformers: bool = typer.Option(
        True, "--transformers/--no-transformers", help="Time transformers' generate() too (the speedup column)."
    ),
    twin_backend: bool = typer.Option(
        False, "--twin-backend", help="Also time the twin's in-library class through the Transformers backend."
    ),
) -> None:
    """Time transformers' generate(), each engine's Transformers backend and the engine's native twin on the same
    prompts and weights: tokens/s, speedup and backend/native ratio with their intervals, and fused layers."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from tf_scaffold.bench import report
    from tf_scaffold.bench.run import BenchError, Settings, plan, run_bench
    from tf_scaffold.engines.machine import cpu_cores, detect_platform
    from tf_scaffold.fs import require_repo

    bad_sizes = f"--batch-sizes {batch_sizes!r}: give positive integers separated by commas, e.g. 4,8,16,32"
    try:
        sizes = sorted({int(b) for b in batch_sizes.split(",") if b.strip()})
    except ValueError:
        raise ScaffoldError(bad_sizes) from None
    if not sizes or sizes[0] < 1:
        raise ScaffoldError(bad_sizes)
    require_repo(path)
    out = out or Path(f"bench-{path.resolve().name}")
    if out.exists() and not out.is_dir():
        raise ScaffoldError(f"--out {out} is a file: give a folder")
    if (out / "bench.json").exists() and not force:
        raise ScaffoldError(
            f"{out} holds the results of an earlier bench: give another --out, or --force to replace them"
        )
    platform = detect_platform()
    cores = cpu_cores()
    threads = min(threads or len(cores), len(cores))
    settings = Settings(
        batch_sizes=sizes,
        new_tokens=new_tokens,
        prompt_len=prompt_len,
        budget=budget,
        precision=precision,
        min_rounds=min_rounds,
        max_rounds=max(max_rounds, min_rounds),
        compiled=platform.device != "cpu" if compiled is None else compiled,
        threads=threads,
        cores=cores[:threads],
        dtype=platform.dtype,
        device=platform.device,
        profile=profile,
        transformers=transformers,
        twin_backend=twin_backend,
    )
    selected = [e.strip() for e in engines.split(",") if e.strip()] if engines else None
    # the repo, the interpreters and the twin, before anything starts
    planned = plan(path, python or None, selected, native, transformers)
    console = Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:  # stopped before an error is printed
        task = bar.add_task("starting", total=None)
        result = run_bench(
            path,
            settings,
            progress=lambda text: bar.update(task, description=text),
            log=bar.console.log,
            planned=planned,
        )
    try:
        written = report.write(result, out)
    except OSError as err:
        raise BenchError(f"cannot write the results to {out}: {err.strerror or err}") from None
    Console(width=None if sys.stdout.isatty() else 160).print(report.markdown(result), markup=False, highlight=False)
    typer.echo("wrote " + ", ".join(str(p) for p in written))
