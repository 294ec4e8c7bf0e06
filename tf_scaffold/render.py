"""Templates -> {relative path: text}. Pure: nothing is written to disk here.

The template folders are cookiecutter-compatible (`cookiecutter.json` + a `{{cookiecutter.repo_name}}` folder), so
`cookiecutter templates/model-repo` renders the same files. We render with jinja2 directly to keep `new` fast, with
StrictUndefined so a missing value is an error, never an empty string in generated code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2

from tf_scaffold import __version__, facts, variants
from tf_scaffold.errors import ScaffoldError
from tf_scaffold.spec import Spec

ROOT_DIR = "{{cookiecutter.repo_name}}"


def templates_root() -> Path:
    """The `templates/` folder: beside the package in a checkout, inside it in an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise ScaffoldError("tf-scaffold's templates are missing from this installation: reinstall tf-scaffold")


# The one template: a Hugging Face model repo of any kind (the kind decides which files it holds, `variants.Kind`).
TEMPLATE = "model-repo"


def template_dir() -> Path:
    return templates_root() / TEMPLATE


def human_count(n: int) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


# The license header of the generated Python files: the license's name and where to read it, by Hub license id.
LICENSES = {
    "apache-2.0": ("Apache License, Version 2.0", "http://www.apache.org/licenses/LICENSE-2.0"),
    "mit": ("MIT License", "https://opensource.org/license/mit"),
    "bsd-3-clause": ("BSD 3-Clause License", "https://opensource.org/license/bsd-3-clause"),
}


def license_text(spec: Spec) -> tuple[str, str]:
    """(name, URL) of the repo's license; a license without a well-known text points at the repo's LICENSE file."""
    return LICENSES.get(
        spec.license, (f"{spec.license} license", f"https://huggingface.co/{spec.resolved_hub_id}/blob/main/LICENSE")
    )


def context(spec: Spec) -> dict[str, Any]:
    """The cookiecutter context: every slot the templates fill, computed here and nowhere else."""
    names, kind, vision, moe, enc = spec.names, variants.kind_of(spec), spec.vision, spec.moe, spec.encoder
    mm = names.multimodal_classes
    return {
        "name": spec.name,
        "repo_name": names.repo_name,
        "module_name": names.module_name,
        "class_prefix": names.class_prefix,
        "model_type": names.model_type,
        "config_class": names.config_class,
        "base_model_class": names.base_model_class,
        "architecture": names.architecture,
        "head_class": names.head_class,
        "pipeline_tag": kind.pipeline_tag,
        "configuration_module": names.configuration_module,
        "modeling_module": names.modeling_module,
        "hidden_size": spec.hidden_size,
        "num_layers": spec.num_layers,
        "num_heads": spec.num_heads,
        "num_kv_heads": spec.num_kv_heads,
        "head_dim": spec.resolved_head_dim,
        "intermediate_size": spec.intermediate_size,
        "vocab_size": spec.vocab_size,
        "max_position_embeddings": spec.max_position_embeddings,
        "rope_theta": repr(float(spec.rope_theta)),
        "rms_norm_eps": repr(float(spec.rms_norm_eps)),
        "tie_word_embeddings": repr(bool(spec.tie_word_embeddings)),
        "decoder_summary": variants.decoder_summary(spec),
        "decoder_parts": variants.decoder_parts(spec),
        "qk_norm": spec.qk_norm,
        "attention_bias": spec.attention_bias,
        # 0 and "" for a model without sliding layers. `layer_types` is the config's list as Python source (a list
        # would be a cookiecutter choice variable).
        "sliding": spec.sliding_window is not None,
        "sliding_window": spec.sliding_window or 0,
        # the generated tests' first engine prompt runs past a window the engines' 256-token context can hold
        "window_prompt": spec.sliding_window is not None and spec.sliding_window < 200,
        "window_prompt_length": (spec.sliding_window or 0) + 8,
        "layer_types": json.dumps(list(spec.layer_types)) if spec.layer_types else "",
        "moe": moe is not None,
        "num_experts": moe.num_experts if moe else 0,
        "num_experts_per_tok": moe.num_experts_per_tok if moe else 0,
        "moe_intermediate_size": moe.moe_intermediate_size if moe else 0,
        "norm_topk_prob": repr(bool(moe and moe.norm_topk_prob)),
        "router_aux_loss_coef": repr(float(moe.router_aux_loss_coef if moe else 0.0)),
        # `--arch encoder`: what it serves and how its embeddings are pooled (the pooling files and config fields)
        "encoder": enc is not None,
        "task": enc.task if enc else "",
        "pooling": enc.pooling if enc else "",
        "pooling_type": enc.pooling.upper() if enc else "",
        "normalize": repr(bool(enc and enc.normalize)),
        "type_vocab_size": enc.type_vocab_size if enc else 0,
        "token_types": bool(enc and enc.type_vocab_size),  # a boolean: cookiecutter passes numbers as strings
        "num_labels": enc.num_labels if enc else 0,
        "layer_norm_eps": repr(float(enc.layer_norm_eps if enc else 0.0)),
        "cls_token_id": facts.ENCODER_CLS_TOKEN_ID,
        "sep_token_id": facts.ENCODER_SEP_TOKEN_ID,
        "pad_token_id": facts.PAD_TOKEN_ID,
        "bos_token_id": facts.BOS_TOKEN_ID,
        "eos_token_id": facts.EOS_TOKEN_ID,
        "license": spec.license,
        "license_name": license_text(spec)[0],
        "license_url": license_text(spec)[1],
        "hub_id": spec.resolved_hub_id,
        "rope_parameters": repr(spec.rope_parameters),
        "seed": spec.seed,
        "weights_std": spec.weights_std,
        # Python source, not a dict: cookiecutter merges a dict given to it into the default one
        "tp_plan": _dict_source(variants.tp_plan(spec)),
        "pp_plan": {k: [list(v[0]), list(v[1])] for k, v in facts.PP_PLAN.items()},
        "num_parameters_human": human_count(variants.num_parameters(spec)),
        "has_weights": spec.weights,
        "tool_version": __version__,
        "tool_series": ".".join(__version__.split(".")[:2]) + ".*",
        "multimodal": spec.multimodal,
        "head_auto_class": kind.head_auto_class,
        "suite_class": kind.suite_class,
        # The decoder's own classes: the base model of a text-only repo, `language_model` of a multimodal one.
        "text_config_class": names.text_config_class,
        "text_model_class": names.text_model_class,
        "text_model_type": names.text_model_type,
        "vision_model_type": names.vision_model_type,
        "vision_config_class": mm.get("vision_config", ""),
        "vision_model_class": mm.get("vision_model", ""),
        "processor_class": mm.get("processor", ""),
        "image_processor_class": mm.get("image_processor", ""),
        "processing_module": names.processing_module,
        "image_processing_module": names.image_processing_module,
        "image_size": vision.image_size if vision else 0,
        "patch_size": vision.patch_size if vision else 0,
        "vision_hidden_size": vision.vision_hidden_size if vision else 0,
        "vision_intermediate_size": vision.vision_intermediate_size if vision else 0,
        "vision_num_layers": vision.vision_num_layers if vision else 0,
        "vision_num_heads": vision.vision_num_heads if vision else 0,
        "num_image_tokens": vision.num_image_tokens if vision else 0,
        "image_token": facts.IMAGE_TOKEN if vision else "",
        "image_token_id": facts.IMAGE_TOKEN_ID if vision else -1,
        "vision_tp_plan": variants.vision_tp_plan(spec),
    }


def _dict_source(mapping: dict[str, str]) -> str:
    """A dict of strings as Python source, one entry per line (the formatter keeps it so: trailing comma)."""
    return "{\n" + "".join(f"    {json.dumps(k)}: {json.dumps(v)},\n" for k, v in mapping.items()) + "}"


def _environment(tdir: Path) -> jinja2.Environment:
    # The same search path cookiecutter uses: the project folder, then the template's `templates/` folder, which
    # holds the pieces several files include.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(tdir / ROOT_DIR), str(tdir / "templates")]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(spec: Spec) -> dict[str, str]:
    """Render every template file of the spec's kind of repo. Returns {posix relative path: text}."""
    tdir = template_dir()
    env = _environment(tdir)
    ctx = {"cookiecutter": context(spec)}
    files: dict[str, str] = {}
    for rel_template in variants.kind_of(spec).files:
        rel_out = env.from_string(rel_template).render(ctx)
        try:
            text = env.get_template(rel_template).render(ctx)
        except (jinja2.TemplateError, UnicodeDecodeError, OSError) as err:  # a broken installation, not a user error
            raise ScaffoldError(f"template {rel_template} failed to render: {err}") from err
        files[rel_out] = text
    return format_python(files)


def format_python(files: dict[str, str]) -> dict[str, str]:
    """Format every .py file with ruff, under the repo's own `ruff.toml` (transformers' settings): the generated code
    is read by people and reviewed by linters, and `ruff format` inside the repo must change nothing."""
    import tempfile

    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    out = dict(files)
    with tempfile.TemporaryDirectory(prefix="tf-scaffold-ruff-") as tmp:
        config = Path(tmp) / "ruff.toml"
        config.write_text(files.get("ruff.toml", ""), encoding="utf-8")
        for rel, text in files.items():
            if not rel.endswith(".py"):
                continue
            # what transformers' `make style` does: sort the imports, then format
            for step in (["check", "--fix-only", "--select", "I"], ["format"]):
                cmd = [ruff, *step, "--config", str(config), "--stdin-filename", rel, "-"]
                try:
                    # run outside any project, so import sections come out as they do in the repo itself
                    proc = subprocess.run(cmd, input=text, capture_output=True, text=True, check=False, cwd=tmp)
                except FileNotFoundError:
                    raise ScaffoldError(
                        "ruff is not installed: `pip install ruff` (tf-scaffold formats generated code)"
                    ) from None
                if proc.returncode != 0:
                    raise ScaffoldError(f"generated {rel} is not valid Python: {proc.stderr.strip().splitlines()[-1]}")
                text = proc.stdout
            out[rel] = text
    return out


def cookiecutter_defaults() -> dict[str, Any]:
    return json.loads((template_dir() / "cookiecutter.json").read_text())
