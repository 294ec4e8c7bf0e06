"""Repos `check` meets in the wild, built on a copy of a generated repo: malformed-but-plausible files (each must give
findings, never a crash or a hang), and correct code of other styles (each must give no false error).

Used by tests/test_check_robustness.py and benchmarks/check_robustness.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    apply: Callable[[Path], None]
    # malformed input: the ids that must report it; correct code: () and `forbidden` ids that must not appear
    expected: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()


def _config(repo: Path, change: Callable[[dict], None]) -> None:
    path = repo / "config.json"
    cfg = json.loads(path.read_text())
    change(cfg)
    path.write_text(json.dumps(cfg))


def _modeling(repo: Path) -> Path:
    return next(repo.glob("modeling_*.py"))


def _sub(path: Path, pattern: str, new: str, count: int = 1) -> None:
    text, n = re.subn(pattern, new, path.read_text(), count=count, flags=re.S)
    assert n, f"anchor not found in {path.name}: {pattern[:60]!r}"
    path.write_text(text)


def _safetensors_header(repo: Path, header: object) -> None:
    data = json.dumps(header).encode()
    (repo / "model.safetensors").write_bytes(struct.pack("<Q", len(data)) + data)


def _fifo(repo: Path) -> None:
    path = repo / "model.safetensors"
    path.unlink()
    os.mkfifo(path)


def _long_expression(repo: Path) -> None:
    path = _modeling(repo)
    path.write_text(path.read_text() + "\nBIG = " + "+".join(["1"] * 200_000) + "\n")


def _deep_expression(repo: Path) -> None:
    path = _modeling(repo)
    path.write_text(path.read_text() + "\nDEEP = " + "(" * 5000 + "1" + ")" * 5000 + "\n")


def _huge_modeling(repo: Path) -> None:
    path = _modeling(repo)
    filler = "".join(f"def helper_{i}(x):\n    return x * {i} + {i}\n\n\n" for i in range(120_000))
    path.write_text(path.read_text() + "\n\n" + filler)


def _bom_and_coding(repo: Path) -> None:
    path = _modeling(repo)
    path.write_bytes(b"\xef\xbb\xbf" + b"# -*- coding: utf-8 -*-\n" + path.read_bytes())


def _latin1_coding(repo: Path) -> None:
    path = _modeling(repo)
    text = path.read_text().replace('"""', '"""Caf\xe9. ', 1)
    path.write_bytes(b"# -*- coding: latin-1 -*-\n" + text.encode("latin-1"))


def _auto_map_outside(repo: Path) -> None:
    outside = repo.parent / f"{repo.name}-outside.py"
    outside.write_text("class Evil: pass\n")
    _config(repo, lambda c: c["auto_map"].update(AutoModel=f"..{repo.parent.name}.{repo.name}-outside.Evil"))


MALFORMED = [
    Case(
        "auto-map-list", "auto_map is a list", lambda r: _config(r, lambda c: c.update(auto_map=[1, 2])), ("TFS009",)
    ),
    Case(
        "auto-map-string",
        "auto_map is a string",
        lambda r: _config(r, lambda c: c.update(auto_map="x.Y")),
        ("TFS009",),
    ),
    Case(
        "architectures-nested",
        "architectures is a nested list",
        lambda r: _config(r, lambda c: c.update(architectures=[["AcmeLmForCausalLM"]])),
        ("TFS009",),
    ),
    Case(
        "model-type-list",
        "model_type is a list",
        lambda r: _config(r, lambda c: c.update(model_type=["x"])),
        ("TFS009",),
    ),
    Case(
        "text-config-string",
        "text_config is a string",
        lambda r: _config(r, lambda c: c.update(text_config="llama")),
        ("TFS009",),
    ),
    Case(
        "tp-style-list",
        "a tensor-parallel style is a list",
        lambda r: _config(r, lambda c: c.update(base_model_tp_plan={"layers.*.self_attn.q_proj": ["colwise"]})),
        ("TFS009",),
    ),
    Case(
        "automodel-not-string",
        "auto_map AutoModel is a number",
        lambda r: _config(r, lambda c: c["auto_map"].update(AutoModel=12)),
        ("TFS005",),
    ),
    Case(
        "processor-config-list",
        "processor_config.json holds a list",
        lambda r: (r / "processor_config.json").write_text("[1, 2, 3]"),
        ("TFS009",),
    ),
    Case(
        "processor-config-wrong-shape",
        "processor_config.json's image_processor and auto_map are strings",
        lambda r: (r / "processor_config.json").write_text(json.dumps({"auto_map": "p.P", "image_processor": "x"})),
        ("TFS050",),
    ),
    Case(
        "safetensors-header-list",
        "the safetensors header is a JSON list",
        lambda r: _safetensors_header(r, [1, 2, 3]),
        ("TFS043",),
    ),
    Case(
        "safetensors-header-values",
        "the safetensors header maps names to numbers",
        lambda r: _safetensors_header(r, {"model.x": 3, "__metadata__": {}}),
        ("TFS043",),
    ),
    Case(
        "safetensors-truncated",
        "model.safetensors has 3 bytes",
        lambda r: (r / "model.safetensors").write_bytes(b"abc"),
        ("TFS043",),
    ),
    Case("safetensors-fifo", "model.safetensors is a FIFO (opening it would block)", _fifo, ("TFS043",)),
    Case("long-expression", "a modeling file with a 200,000-term expression", _long_expression, ()),
    Case("deep-expression", "a modeling file with 5,000 nested parentheses", _deep_expression, ("TFS010",)),
    Case("auto-map-outside-repo", "an auto_map module with `..` parts", _auto_map_outside, ("TFS010",)),
    Case("huge-modeling-file", "a 5 MB modeling file", _huge_modeling, ()),
    Case(
        "config-not-utf8",
        "config.json in latin-1",
        lambda r: (r / "config.json").write_bytes(b'{"a": "\xe9"}'),
        ("TFS001",),
    ),
]


# ---- correct code in other styles: no false errors ------------------------------------------------------------------


def _inherit_flag_from_transformers(repo: Path) -> None:
    """The model's PreTrainedModel subclasses Qwen2's, which sets _supports_attention_backend."""
    path = _modeling(repo)
    _sub(
        path,
        r"\n    # The gate both engines check before running this model with their own attention.\n    _supports_attention_backend = True\n",
        "\n",
    )
    _sub(path, r"(class \w+PreTrainedModel\()PreTrainedModel(\):)", r"\1Qwen2PreTrainedModel\2")
    _sub(
        path,
        r"(from transformers\.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel\n)",
        r"\1from transformers.models.qwen2.modeling_qwen2 import Qwen2PreTrainedModel\n",
    )


def _kwargs_through_helper(repo: Path) -> None:
    """The decoder layer hands **kwargs to its attention through a helper method."""
    path = _modeling(repo)
    _sub(
        path,
        r"        hidden_states, _ = self\.self_attn\(\n(.*?)\n        \)\n",
        "        hidden_states = self._attend(\n\\1\n        )\n",
    )
    _sub(
        path,
        r"(class \w+DecoderLayer\(GradientCheckpointingLayer\):\n)",
        "\\1    def _attend(self, **kwargs):\n        return self.self_attn(**kwargs)[0]\n\n",
    )


def _attention_inherits_init(repo: Path) -> None:
    """The attention class is a thin subclass that inherits __init__ (and so layer_idx) from its parent."""
    path = _modeling(repo)
    text = path.read_text()
    name = re.search(r"class (\w+)Attention\(nn\.Module\):", text).group(1)
    text = text.replace(f"class {name}Attention(nn.Module):", f"class {name}AttentionBase(nn.Module):", 1)
    text = text.replace(f"        self.self_attn = {name}Attention(", f"        self.self_attn = {name}Attention(")
    marker = f"class {name}DecoderLayer("
    sub = (
        f"class {name}Attention({name}AttentionBase):\n"
        '    """Same attention; a subclass a model author might add to override one method."""\n\n'
        '    def extra_repr(self) -> str:\n        return f"layer {self.layer_idx}"\n\n\n'
    )
    path.write_text(text.replace(marker, sub + marker, 1))


def _gpt2_style_config(repo: Path) -> None:
    """config.json names widths the GPT-2 way; the config class subclasses GPT2Config, whose attribute_map maps them."""

    def change(cfg):
        cfg["n_embd"] = cfg.pop("hidden_size")
        cfg["n_layer"] = cfg.pop("num_hidden_layers")
        cfg["n_head"] = cfg.pop("num_attention_heads")

    _config(repo, change)
    path = next(repo.glob("configuration_*.py"))
    _sub(path, r"(class \w+Config\()PreTrainedConfig(\):)", r"\1GPT2Config\2")
    _sub(
        path,
        r"(from transformers import PreTrainedConfig\n)",
        r"\1from transformers.models.gpt2.configuration_gpt2 import GPT2Config\n",
    )
    for field in ("hidden_size", "num_hidden_layers", "num_attention_heads"):
        _sub(path, rf"\n    {field}: int = \d+", "")


def _no_automodel(repo: Path) -> None:
    _config(repo, lambda c: c["auto_map"].pop("AutoModel"))


def _automodel_is_head(repo: Path) -> None:
    _config(repo, lambda c: c["auto_map"].update(AutoModel=c["auto_map"]["AutoModelForCausalLM"]))


def _layer_drops_kwargs(repo: Path) -> None:
    _sub(_modeling(repo), r"            \*\*kwargs,  # carried on to the attention call\n", "")


def _no_automodel_layer_drops_kwargs(repo: Path) -> None:
    _no_automodel(repo)
    _layer_drops_kwargs(repo)


def _automodel_is_head_layer_drops_kwargs(repo: Path) -> None:
    _automodel_is_head(repo)
    _layer_drops_kwargs(repo)


CORRECT = [
    Case(
        "flag-inherited",
        "_supports_attention_backend inherited from Qwen2PreTrainedModel",
        _inherit_flag_from_transformers,
        forbidden=("TFS020",),
    ),
    Case(
        "kwargs-through-helper",
        "**kwargs reach attention through a helper method",
        _kwargs_through_helper,
        forbidden=("TFS022",),
    ),
    Case(
        "attention-inherits-init",
        "the attention class inherits __init__ (layer_idx)",
        _attention_inherits_init,
        forbidden=("TFS015", "TFS019"),
    ),
    Case(
        "gpt2-attribute-map",
        "widths named n_embd/n_layer/n_head through GPT2Config's attribute_map",
        _gpt2_style_config,
        forbidden=("TFS008",),
    ),
    Case("bom-and-coding-line", "a UTF-8 BOM and a PEP 263 coding line", _bom_and_coding, forbidden=("TFS010",)),
    Case("latin1-coding-line", "a latin-1 file declaring its coding", _latin1_coding, forbidden=("TFS010",)),
]

# Breaks that must be found even when auto_map does not lead to the base model.
HIDDEN_BREAKS = [
    Case(
        "no-automodel-layer-drops-kwargs",
        "no AutoModel, and the layer drops **kwargs",
        _no_automodel_layer_drops_kwargs,
        ("TFS005", "TFS022"),
    ),
    Case(
        "automodel-is-head-layer-drops-kwargs",
        "AutoModel names the head, and the layer drops **kwargs",
        _automodel_is_head_layer_drops_kwargs,
        ("TFS006", "TFS022"),
    ),
]


# ---- encoders (`tf-scaffold new NAME --arch encoder`): the sentence-transformers files and how is_causal is set ----


def _modules_json(repo: Path, value: object | str) -> None:
    (repo / "modules.json").write_text(value if isinstance(value, str) else json.dumps(value))


def _pooling_config(repo: Path, value: object | str) -> None:
    (repo / "1_Pooling" / "config.json").write_text(value if isinstance(value, str) else json.dumps(value))


def _pooling_fifo(repo: Path) -> None:
    path = repo / "1_Pooling" / "config.json"
    path.unlink()
    os.mkfifo(path)


def _pooling_path(repo: Path, value: object) -> None:
    modules = json.loads((repo / "modules.json").read_text())
    next(m for m in modules if m["type"].endswith("Pooling"))["path"] = value
    _modules_json(repo, modules)


def _encoder_names(repo: Path) -> str:
    return re.search(r"class (\w+)SelfAttention\(nn\.Module\):", _modeling(repo).read_text()).group(1)


def _is_causal_from_config(repo: Path) -> None:
    """BERT's way: the attention takes is_causal as an argument, the layer passes config.is_decoder (false)."""
    path, name = _modeling(repo), _encoder_names(repo)
    _sub(
        path,
        r"(class \w+SelfAttention\(nn\.Module\):.*?def __init__\(self, config: \w+, layer_idx: int)\)",
        r"\1, is_causal: bool = False)",
    )
    _sub(path, r"\n        self\.is_causal = False\n", "\n        self.is_causal = is_causal\n")
    _sub(
        path,
        rf"self\.self = {name}SelfAttention\(config, layer_idx\)",
        f"self.self = {name}SelfAttention(config, layer_idx, is_causal=config.is_decoder)",
    )
    _sub(next(repo.glob("configuration_*.py")), r"(\n    pad_token_id: )", r"\n    is_decoder: bool = False\1")
    _config(repo, lambda c: c.update(is_decoder=False))


def _is_causal_class_attribute(repo: Path) -> None:
    """is_causal = False as a class attribute of the attention, not set in __init__."""
    path = _modeling(repo)
    _sub(path, r"\n        self\.is_causal = False\n", "\n")
    _sub(path, r'(class \w+SelfAttention\(nn\.Module\):\n    """[^\n]*"""\n)', r"\1\n    is_causal = False\n")


def _last_token_pooling(repo: Path) -> None:
    """Last-token pooling in both: 1_Pooling/config.json and config.pooling_type."""
    cfg = json.loads((repo / "1_Pooling" / "config.json").read_text())
    cfg.update(pooling_mode_cls_token=False, pooling_mode_lasttoken=True)
    _pooling_config(repo, cfg)
    _config(repo, lambda c: c.update(pooling_type="LAST"))
    _sub(next(repo.glob("configuration_*.py")), r'(\n    pooling_type: str = )"CLS"', r'\1"LAST"')


def _no_sentence_transformers_files(repo: Path) -> None:
    """No modules.json: vLLM pools CLS and normalises, as config.pooling_type and config.normalize say."""
    (repo / "modules.json").unlink()
    shutil.rmtree(repo / "1_Pooling")


ENCODER_MALFORMED = [
    Case("modules-json-broken", "modules.json is not JSON", lambda r: _modules_json(r, "[{broken"), ("TFS076",)),
    Case("modules-json-object", "modules.json is an object", lambda r: _modules_json(r, {"0": "x"}), ("TFS076",)),
    Case(
        "modules-json-untyped",
        "a modules.json entry has no type",
        lambda r: _modules_json(r, [{"idx": 0, "path": ""}, 3]),
        ("TFS076",),
    ),
    Case("pooling-path-number", "the Pooling entry's path is a number", lambda r: _pooling_path(r, 7), ("TFS076",)),
    Case(
        "pooling-path-outside",
        "the Pooling entry's path leaves the repo",
        lambda r: _pooling_path(r, "../../.."),
        ("TFS076",),
    ),
    Case("pooling-config-list", "1_Pooling/config.json is a list", lambda r: _pooling_config(r, [1, 2]), ("TFS076",)),
    Case("pooling-config-broken", "1_Pooling/config.json is not JSON", lambda r: _pooling_config(r, "{"), ("TFS076",)),
    Case("pooling-config-fifo", "1_Pooling/config.json is a FIFO", _pooling_fifo, ("TFS076",)),
    Case(
        "pooling-type-list",
        "config.json's pooling_type is a list",
        lambda r: _config(r, lambda c: c.update(pooling_type=["CLS"])),
        ("TFS074",),
    ),
    Case(
        "normalize-string",
        "config.json's normalize is a string",
        lambda r: _config(r, lambda c: c.update(normalize="no")),
        (),
    ),
]

ENCODER_CORRECT = [
    Case(
        "is-causal-from-config",
        "is_causal passed down from config.is_decoder (false), BERT's way",
        _is_causal_from_config,
        forbidden=("TFS071", "TFS072"),
    ),
    Case(
        "is-causal-class-attribute",
        "is_causal = False as a class attribute",
        _is_causal_class_attribute,
        forbidden=("TFS071", "TFS072"),
    ),
    Case(
        "last-token-pooling",
        "last-token pooling in 1_Pooling/config.json and config.pooling_type",
        _last_token_pooling,
        forbidden=("TFS073", "TFS074", "TFS075", "TFS076"),
    ),
    Case(
        "no-sentence-transformers-files",
        "no modules.json: vLLM's default (CLS, normalised) is what the config says",
        _no_sentence_transformers_files,
        forbidden=("TFS073", "TFS074", "TFS075", "TFS076"),
    ),
]


def make(source: Path, dest_root: Path, case: Case) -> Path:
    dest = dest_root / f"{source.name}-{case.name}"
    if dest.exists():  # made already, by another test of the same module
        return dest
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", ".ruff_cache"))
    case.apply(dest)
    return dest
