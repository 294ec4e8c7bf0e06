"""`tf-scaffold new`: its options (grouped in help panels, each declared once), the answers they give, the summary
of what was made."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

import typer
import typer.core

from tf_scaffold.cli.app import command, epilog
from tf_scaffold.errors import ExitCode, ScaffoldError
from tf_scaffold.spec.choices import ARCHES, ENCODER_TASKS, POOLING_MODES, PRESET_NAMES, ROPE_SCALINGS


def _interactive(no_input: bool) -> bool:
    return not no_input and sys.stdin.isatty() and not os.environ.get("CI")


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


@command(
    cls=_NewCommand,
    epilog=epilog(
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
