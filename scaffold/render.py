"""Templates -> {relative path: text}. Pure: nothing is written to disk here.

The template folders are cookiecutter-compatible (`cookiecutter.json` + a `{{cookiecutter.repo_name}}` folder), so
`cookiecutter templates/decoder` renders the same files. We render with jinja2 directly to keep `new` fast, with
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

from scaffold import __version__
from scaffold.errors import ScaffoldError
from scaffold.spec import BOS_TOKEN_ID, EOS_TOKEN_ID, IMAGE_TOKEN, IMAGE_TOKEN_ID, PAD_TOKEN_ID, Spec

ROOT_DIR = "{{cookiecutter.repo_name}}"
SKIPPED_PARTS = {"__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache", ".hypothesis"}


def templates_root() -> Path:
    """The `templates/` folder: beside the package in a checkout, inside it in an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise ScaffoldError("tf-scaffold's templates are missing from this installation: reinstall tf-scaffold")


def template_dir(variant: str = "decoder") -> Path:
    return templates_root() / variant


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
    mm = spec.multimodal_classes
    return {
        **_text_context(spec),
        "multimodal": spec.multimodal,
        "head_auto_class": "AutoModelForImageTextToText" if spec.multimodal else "AutoModelForCausalLM",
        # the harness class the repo's tests declare themselves with (scaffold.testing)
        "suite_class": "ImageTextToTextRepoTests" if spec.multimodal else "CausalLMRepoTests",
        # The decoder's own classes: the base model of a text-only repo, `language_model` of a multimodal one.
        "text_config_class": mm.get("text_config", spec.config_class),
        "text_model_class": mm.get("text_model", spec.base_model_class),
        "text_model_type": f"{spec.model_type}_text" if spec.multimodal else spec.model_type,
        "vision_model_type": f"{spec.model_type}_vision" if spec.multimodal else "",
        "vision_config_class": mm.get("vision_config", ""),
        "vision_model_class": mm.get("vision_model", ""),
        "processor_class": mm.get("processor", ""),
        "image_processor_class": mm.get("image_processor", ""),
        "processing_module": spec.processing_module,
        "image_processing_module": spec.image_processing_module,
        "image_size": spec.image_size or 0,
        "patch_size": spec.patch_size or 0,
        "vision_hidden_size": spec.vision_hidden_size or 0,
        "vision_intermediate_size": spec.vision_intermediate_size,
        "vision_num_layers": spec.vision_num_layers or 0,
        "vision_num_heads": spec.vision_num_heads or 0,
        "num_image_tokens": spec.num_image_tokens,
        "image_token": IMAGE_TOKEN if spec.multimodal else "",
        "image_token_id": IMAGE_TOKEN_ID if spec.multimodal else -1,
        "vision_tp_plan": dict(spec.vision_tp_plan),
    }


def _text_context(spec: Spec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "repo_name": spec.repo_name,
        "module_name": spec.module_name,
        "class_prefix": spec.class_prefix,
        "model_type": spec.model_type,
        "config_class": spec.config_class,
        "base_model_class": spec.base_model_class,
        "architecture": spec.architecture,
        "configuration_module": spec.configuration_module,
        "modeling_module": spec.modeling_module,
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
        "pad_token_id": PAD_TOKEN_ID,
        "bos_token_id": BOS_TOKEN_ID,
        "eos_token_id": EOS_TOKEN_ID,
        "license": spec.license,
        "license_name": license_text(spec)[0],
        "license_url": license_text(spec)[1],
        "hub_id": spec.resolved_hub_id,
        "rope_parameters": repr(spec.rope_parameters),
        "seed": spec.seed,
        "weights_std": spec.weights_std,
        "tp_plan": dict(spec.tp_plan),
        "pp_plan": {k: [list(v[0]), list(v[1])] for k, v in spec.pp_plan.items()},
        "num_parameters_human": human_count(spec.num_parameters),
        "has_weights": spec.weights,
        "tool_version": __version__,
        "tool_series": ".".join(__version__.split(".")[:2]) + ".*",
    }


def _environment(tdir: Path) -> jinja2.Environment:
    # The same search path cookiecutter uses: the project folder, then the template's `templates/` folder, which
    # holds the pieces several files include.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(tdir / ROOT_DIR), str(tdir / "templates")]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(spec: Spec, variant: str = "decoder") -> dict[str, str]:
    """Render every template file of `variant` for `spec`. Returns {posix relative path: text}."""
    tdir = template_dir(variant)
    env = _environment(tdir)
    ctx = {"cookiecutter": context(spec)}
    files: dict[str, str] = {}
    src_root = tdir / ROOT_DIR
    for path in sorted(src_root.rglob("*")):
        if path.is_dir() or any(part in SKIPPED_PARTS for part in path.parts) or path.suffix in (".pyc", ".pyo"):
            continue
        rel_template = path.relative_to(src_root).as_posix()
        rel_out = env.from_string(rel_template).render(ctx)
        try:
            text = env.get_template(rel_template).render(ctx)
        except (jinja2.TemplateError, UnicodeDecodeError) as err:  # a broken installation, not a user error
            raise ScaffoldError(f"template {rel_template} failed to render: {err}") from err
        if text.strip():  # files of the other variant render empty (cookiecutter's post-gen hook deletes them)
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


def cookiecutter_defaults(variant: str = "decoder") -> dict[str, Any]:
    return json.loads((template_dir(variant) / "cookiecutter.json").read_text())
