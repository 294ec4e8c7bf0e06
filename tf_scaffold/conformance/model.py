"""A repo as the rules see it: its files loaded as data (`repo.py`), its classes resolved the way Python resolves
them (through the repo's imports, into the installed transformers' sources, read with `ast` and never imported),
and the pieces the engines care about found from `auto_map`, `architectures` and the class structure: the config
class, the head, the base model, the decoder, its layer class and its attention classes.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from tf_scaffold.conformance import astutil
from tf_scaffold.conformance.registry import ENCODER, MULTIMODAL, TEXT, Issue
from tf_scaffold.conformance.repo import (
    Source,
    as_dict,
    auto_map_target,
    confined,
    load_source,
    read_json,
    regular_file,
    split_target,
    type_name,
)
from tf_scaffold.facts import HEAD_AUTO_CLASSES, SEQUENCE_CLASSIFICATION_AUTO_CLASS
from tf_scaffold.installed import transformers_root

SOURCE_PATTERNS = ("modeling_*.py", "configuration_*.py", "processing_*.py", "image_processing_*.py")
# Base classes of transformers past which nothing a rule reads is defined.
ROOTS = {"PreTrainedModel", "PreTrainedConfig", "PretrainedConfig", "GenerationMixin", "Module", "object"}
INTERFACE_NAMES = ("ALL_ATTENTION_FUNCTIONS",)
MAX_CHAIN = 16
# The module tree of the base model, as its __init__s build it: how deep and how many modules are followed.
MAX_TREE_DEPTH, MAX_TREE_MODULES = 8, 400
MAX_EVAL_DEPTH = 32
# transformers' mask builders: a base model that builds only a padding mask attends bidirectionally (an encoder's).
BIDIRECTIONAL_MASKS = (
    "create_bidirectional_mask",
    "_prepare_4d_attention_mask",
    "_prepare_4d_attention_mask_for_sdpa",
    "get_extended_attention_mask",
)
CAUSAL_MASKS = (
    "create_causal_mask",
    "create_sliding_window_causal_mask",
    "create_chunked_causal_mask",
    "create_masks_for_generate",
    "_prepare_4d_causal_attention_mask",
    "_prepare_4d_causal_attention_mask_for_sdpa",
)
# architectures vLLM does not serve as embedding models although they end with `Model` (`_SUFFIX_TO_DEFAULTS`)
NOT_EMBEDDING_SUFFIXES = ("ChatModel", "LMHeadModel", "ClassificationModel", "RewardModel", "PreTrainedModel")


class _Unknown:
    """A value the source does not show (a runtime argument, a computed expression)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(frozen=True, eq=False)
class Module:
    """One submodule of the base model as its __init__s build it: its path (`encoder.layer.*.attention.self`), its
    class, and the `self.<attr>` values its __init__ gives (UNKNOWN where the source does not show them)."""

    path: str
    ref: ClassRef
    attrs: dict

    def is_causal(self, repo: Repo):
        """What `module.is_causal` is for the engines: the __init__'s value, else the class attribute, else their
        default True (`getattr(module, "is_causal", True)`); UNKNOWN when the source does not show it."""
        if "is_causal" in self.attrs:
            return self.attrs["is_causal"]
        node, _ = repo.class_attr(self.ref, "is_causal")
        if node is None:
            return True
        value = astutil.literal(node)
        return value if isinstance(value, bool) else UNKNOWN


@dataclass(frozen=True, eq=False)
class ClassRef:
    """A class and the module it is defined in (each module is loaded once, so the pair identifies the class)."""

    source: Source
    node: ast.ClassDef

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClassRef) and other.source is self.source and other.node.name == self.node.name

    def __hash__(self) -> int:
        return hash((id(self.source), self.node.name))

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def in_repo(self) -> bool:
        return self.source.in_repo


# ---- the installed transformers, read as files ----------------------------------------------------------------------


@cache
def transformers_source(dotted: str) -> Source | None:
    root = transformers_root()
    if root is None or not dotted.startswith("transformers"):
        return None
    rel = Path(*dotted.split(".")[1:])
    for path in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
        if regular_file(path):
            return load_source(dotted, path, in_repo=False)
    return None


@cache
def _model_folders() -> tuple[str, ...]:
    root = transformers_root()
    if root is None or not (root / "models").is_dir():
        return ()
    return tuple(sorted(p.name for p in (root / "models").iterdir() if p.is_dir() and not p.name.startswith("_")))


@cache
def locate_transformers_class(name: str) -> ClassRef | None:
    """Where `from transformers import <name>` comes from: the model folder whose name starts the class name
    (`Qwen2MoePreTrainedModel` -> models/qwen2_moe), searched in its modeling and configuration files."""
    if name in ROOTS:
        return None
    lowered = name.lower()
    folders = [f for f in _model_folders() if lowered.startswith(f.replace("_", ""))]
    for folder in sorted(folders, key=len, reverse=True):
        for kind in ("modeling", "configuration"):
            source = transformers_source(f"transformers.models.{folder}.{kind}_{folder}")
            if source is not None and (node := source.cls(name)) is not None:
                return ClassRef(source, node)
    return None


# ---- the repo -------------------------------------------------------------------------------------------------------


class Repo:
    """Everything the static rules read. Loading never raises; what could not be read is in `problems`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.problems: list[tuple[str, Issue]] = []  # (rule id, issue) found while loading
        self.config: dict | None = None
        self.config_problem: str | None = None
        self.processor_config: dict | None = None
        self.sources: dict[str, Source] = {}
        self._load()

    # -- loading --

    def _load(self) -> None:
        path = self.root / "config.json"
        if not path.exists():
            self.config_problem = f"{self.root} has no config.json: not a model repo"
            return
        value, problem = read_json(path)
        if problem is None and not isinstance(value, dict):
            problem = f"config.json holds {type_name(value)}, not an object"
        if problem is not None:
            self.config_problem = problem
            return
        self.config = value
        processor_path = self.root / "processor_config.json"
        if processor_path.exists():
            value, problem = read_json(processor_path)
            if problem is None and not isinstance(value, dict):
                problem = f"holds {type_name(value)}, not an object"
            if problem is not None:
                self.problems.append(("TFS009", Issue("processor_config.json", 0, f"processor_config.json {problem}")))
                self.processor_config = {}
            else:
                self.processor_config = value
        modules: dict[str, str] = {}  # module -> where it was named
        for key, value in self.auto_map.items():
            target = auto_map_target(value)
            parts = split_target(target) if target else None
            if parts:
                modules.setdefault(parts[0], f"auto_map[{key!r}]")
            elif target and (".." in target or "/" in target or "\\" in target):
                issue = Issue("config.json", 0, f"auto_map[{key!r}] names {target[:80]!r}, outside the repo")
                self.problems.append(("TFS010", issue))
        for pattern in SOURCE_PATTERNS:
            try:
                found = sorted(self.root.glob(pattern))
            except OSError:
                found = []
            for path in found:
                modules.setdefault(path.stem, path.name)
        for module, named_by in sorted(modules.items()):
            self._load_module(module, named_by)

    def _load_module(self, module: str, named_by: str) -> None:
        rel = f"{module.replace('.', '/')}.py"
        path = confined(self.root, rel)
        if path is None:
            self.problems.append(("TFS010", Issue("config.json", 0, f"{named_by} names {module}, outside the repo")))
            return
        if not path.exists():
            self.problems.append(("TFS010", Issue(rel, 0, f"{named_by} names {module}, which is not in the repo")))
            return
        source = load_source(module, path, in_repo=True)
        self.sources[module] = source
        if source.problem:
            self.problems.append(("TFS010", Issue(self.rel(path), source.problem_line, source.problem)))

    def rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except (ValueError, OSError):
            return path.name

    def where(self, ref: ClassRef, node: ast.AST | None = None) -> tuple[str, int]:
        """(file, line) of a class (or a node in it), for a finding."""
        line = getattr(node, "lineno", None) or ref.node.lineno
        if ref.in_repo:
            return self.rel(ref.source.path), line
        return f"{ref.source.name} (installed transformers)", line

    # -- config.json, shape-checked --

    @cached_property
    def auto_map(self) -> dict:
        value = (self.config or {}).get("auto_map")
        return value if isinstance(value, dict) else {}

    def auto_class(self, key: str) -> str | None:
        target = auto_map_target(self.auto_map.get(key))
        parts = split_target(target) if target else None
        return parts[1] if parts else None

    @cached_property
    def architectures(self) -> list[str]:
        value = (self.config or {}).get("architectures")
        if isinstance(value, list):
            return [v for v in value if isinstance(v, str)]
        return [value] if isinstance(value, str) else []

    def section(self, name: str) -> dict:
        """A nested part of config.json (`text_config`, `vision_config`), or the whole of a text-only one."""
        return as_dict((self.config or {}).get(name)) or (self.config or {})

    def text_field(self, key: str):
        """A field of the decoder's config: under `text_config` in a composite config.json, else at the top."""
        return self.section("text_config").get(key, (self.config or {}).get(key))

    @cached_property
    def multimodal(self) -> bool:
        """A nested vision config or a processor config marks a vision-language repo."""
        return bool(as_dict((self.config or {}).get("vision_config"))) or self.processor_config is not None

    # -- classes --

    def find(self, name: str) -> ClassRef | None:
        """A class defined in the repo, by name."""
        for source in self.sources.values():
            if name in source.class_lines and (node := source.cls(name)) is not None:
                return ClassRef(source, node)
        return None

    def resolve(self, source: Source, expr: ast.AST | str, depth: int = 0) -> ClassRef | None:
        """The class an expression names in `source`, following its imports and aliases as Python would."""
        if depth > MAX_CHAIN:
            return None
        if isinstance(expr, ast.Attribute):
            module = self._module_of(source, astutil.dotted(expr.value) or "")
            return self.resolve(module, expr.attr, depth + 1) if module is not None else None
        name = expr.id if isinstance(expr, ast.Name) else expr if isinstance(expr, str) else None
        if not name or name in ROOTS:
            return None
        if (node := source.cls(name)) is not None:
            return ClassRef(source, node)
        if name in source.aliases:
            return self.resolve(source, source.aliases[name], depth + 1)
        if name in source.imports:
            module, attr, level = source.imports[name]
            if attr is None:
                return None
            target = self._import(source, module, level)
            if target is not None:
                return self.resolve(target, attr, depth + 1)
            if module.split(".")[0] == "transformers" and level == 0:
                return locate_transformers_class(attr)
        return None

    def _module_of(self, source: Source, name: str) -> Source | None:
        """The module a local name (`import x.y as z`; `from . import modeling_x`) refers to."""
        head = name.split(".")[0]
        if head not in source.imports:
            return None
        module, attr, level = source.imports[head]
        full = ".".join(p for p in (module, attr, *name.split(".")[1:]) if p)
        return self._import(source, full, level)

    def _import(self, source: Source, module: str, level: int) -> Source | None:
        if level:
            package = source.name.split(".")[:-level] if level <= source.name.count(".") + 1 else None
            if package is None:
                return None
            dotted = ".".join([*package, *[p for p in module.split(".") if p]])
            if source.in_repo:
                return self.sources.get(dotted)
            return transformers_source(dotted)
        if module.split(".")[0] == "transformers":
            return transformers_source(module)
        return self.sources.get(module)

    def chain(self, ref: ClassRef | None) -> list[ClassRef]:
        """The class and its ancestors (in the repo and in transformers), nearest first, each once."""
        out: list[ClassRef] = []
        queue = [ref] if ref else []
        seen: set[tuple[str, str]] = set()
        while queue and len(out) < MAX_CHAIN:
            current = queue.pop(0)
            key = (current.source.name, current.name)
            if key in seen:
                continue
            seen.add(key)
            out.append(current)
            for base in current.node.bases:
                parent = self.resolve(current.source, base)
                if parent is not None:
                    queue.append(parent)
        return out

    def base_names(self, ref: ClassRef | None) -> set[str]:
        """Names of every base class in the chain, resolved or not (`PreTrainedModel`, `nn.Module`...)."""
        names = set()
        for current in self.chain(ref):
            names.add(current.name)
            names.update(astutil.call_name(b) or "" for b in current.node.bases)
        return names

    def class_attr(self, ref: ClassRef | None, attr: str) -> tuple[ast.AST | None, ClassRef | None]:
        """The value a class attribute gets, searching the chain (transformers parents included)."""
        for current in self.chain(ref):
            value = astutil.class_assignments(current.node).get(attr)
            if value is not None:
                return value, current
        return None, None

    def method(self, ref: ClassRef | None, name: str) -> tuple[ast.FunctionDef | None, ClassRef | None]:
        """The method a class runs: its own, or the nearest one up its chain."""
        for current in self.chain(ref):
            if (found := astutil.method(current.node, name)) is not None:
                return found, current
        return None, None

    def implemented(self, ref: ClassRef | None, name: str) -> ast.FunctionDef | None:
        """The method a class runs, unless the nearest definition only raises NotImplementedError (a parent's
        placeholder, like `ProcessorMixin.replace_image_token`)."""
        found, _ = self.method(ref, name)
        if found is None:
            return None
        body = [n for n in found.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        if (
            len(body) == 1
            and isinstance(body[0], ast.Raise)
            and astutil.call_name(body[0].exc) == "NotImplementedError"
        ):
            return None
        return found

    def init_attrs(self, ref: ClassRef | None) -> dict[str, tuple[ast.AST, ClassRef]]:
        """{attr: (value, class)} of every `self.attr = ...` in the __init__ of the class and its ancestors."""
        out: dict[str, tuple[ast.AST, ClassRef]] = {}
        for current in reversed(self.chain(ref)):
            for attr, value in astutil.self_assignments(astutil.method(current.node, "__init__")).items():
                out[attr] = (value, current)
        return out

    def children(self, ref: ClassRef | None) -> dict[str, ClassRef | str]:
        """{attr: class} of the submodules `self.attr = SomeClass(...)` (a name when the class is not readable)."""
        out: dict[str, ClassRef | str] = {}
        for attr, (value, owner) in self.init_attrs(ref).items():
            if isinstance(value, ast.Call) and (name := astutil.call_name(value)):
                out[attr] = next(iter(self.constructed(owner, value.func)), name)
        return out

    def constructed(self, owner: ClassRef, func: ast.AST, scope: dict | None = None) -> list[ClassRef]:
        """The classes a constructor call in `owner`'s __init__ may build: the class it names, or, for a local
        variable (`attention_class = A if cross else B; self.x = attention_class(...)`), the classes assigned to it,
        the branch chosen where `scope` (else the __init__'s defaults) decides the condition."""
        ref = self.resolve(owner.source, func)
        if ref is not None:
            return [ref]
        init = astutil.method(owner.node, "__init__")
        if not isinstance(func, ast.Name) or init is None:
            return []
        scope = self.defaults(init) if scope is None else scope
        out: list[ClassRef] = []
        for node in ast.walk(init):
            if any(isinstance(t, ast.Name) and t.id == func.id for t in astutil.assigned(node)):
                pending = [node.value]
                while pending:
                    value = pending.pop()
                    if isinstance(value, ast.IfExp):
                        test = self.evaluate(value.test, scope)
                        pending += (
                            [value.body, value.orelse] if test is UNKNOWN else [value.body if test else value.orelse]
                        )
                    elif (found := self.resolve(owner.source, value)) is not None and found not in out:
                        out.append(found)
        return out

    def members(self, ref: ClassRef | None) -> dict[str, list[ClassRef | str]]:
        """{attr: [what it may be]} over every branch of the __init__ of the class and its ancestors: a class, the
        name of a class that is not readable, or "Parameter" for `nn.Parameter(...)`."""
        out: dict[str, list[ClassRef | str]] = {}
        for current in reversed(self.chain(ref)):
            for attr, values in astutil.all_self_assignments(astutil.method(current.node, "__init__")).items():
                kinds = [
                    kind
                    for value in values
                    if isinstance(value, ast.Call) and (name := astutil.call_name(value))
                    for kind in (self.constructed(current, value.func) or [name])
                ]
                if kinds:
                    out[attr] = kinds
        return out

    def module_lists(self, ref: ClassRef | None) -> dict[str, list[ClassRef]]:
        """{attr: [element classes]} of the nn.ModuleList submodules of a class."""
        out: dict[str, list[ClassRef]] = {}
        for attr, (value, owner) in self.init_attrs(ref).items():
            if isinstance(value, ast.Call) and astutil.call_name(value) == "ModuleList":
                elements = []
                for node in ast.walk(value):
                    if isinstance(node, ast.Call) and node is not value:
                        element = self.resolve(owner.source, node.func)
                        if element is not None and element not in elements:
                            elements.append(element)
                out[attr] = elements
        return out

    def is_pretrained_model(self, ref: ClassRef | None) -> bool:
        return ref is not None and any(n.endswith("PreTrainedModel") for n in self.base_names(ref))

    # -- the pieces the engines use --

    @cached_property
    def config_class(self) -> ClassRef | None:
        name = self.auto_class("AutoConfig")
        return self.find(name) if name else None

    @cached_property
    def sub_config_classes(self) -> dict[str, ClassRef]:
        """{"text_config": class, ...} from the composite config class's `sub_configs` literal."""
        node, owner = self.class_attr(self.config_class, "sub_configs")
        out = {}
        if isinstance(node, ast.Dict) and owner is not None:
            for key, value in zip(node.keys, node.values, strict=False):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    ref = self.resolve(owner.source, value)
                    if ref is not None:
                        out[key.value] = ref
        return out

    @cached_property
    def text_config_class(self) -> ClassRef | None:
        return self.sub_config_classes.get("text_config") or self.config_class

    @cached_property
    def head(self) -> ClassRef | None:
        """The head class (`*ForCausalLM` ...): from auto_map's head entry, else architectures[0]. An architecture that
        is auto_map's AutoModel is the base model itself (an embedding model's), not a head."""
        base = self.auto_class("AutoModel")
        architectures = [a for a in self.architectures if a != base]
        for name in [*(self.auto_class(k) for k in HEAD_AUTO_CLASSES), *architectures]:
            if name and (ref := self.find(name)) is not None:
                return ref
        return None

    def _inner_model(self, ref: ClassRef | None) -> ClassRef | None:
        """What a head class wraps: its `self.<base_model_prefix>` (default `model`) submodule."""
        prefix_node, _ = self.class_attr(ref, "base_model_prefix")
        prefix = astutil.literal(prefix_node) if prefix_node is not None else "model"
        child = self.children(ref).get(prefix if isinstance(prefix, str) else "model")
        return child if isinstance(child, ClassRef) else None

    @cached_property
    def auto_model(self) -> ClassRef | None:
        """The class `auto_map["AutoModel"]` names, when the repo defines it."""
        name = self.auto_class("AutoModel")
        return self.find(name) if name else None

    @cached_property
    def base_model(self) -> ClassRef | None:
        """The class the engines build: `AutoModel`'s, or, when that is missing or names the head, what the head
        wraps."""
        if self.auto_model is not None and self.auto_model != self.head:
            return self.auto_model
        inner = self._inner_model(self.head)
        if inner is not None:
            return inner
        return self.auto_model

    @cached_property
    def decoder(self) -> ClassRef | None:
        """The decoder stack: the base model itself, or its `language_model` in a composite model."""
        child = self.children(self.base_model).get("language_model")
        return child if isinstance(child, ClassRef) else self.base_model

    def _layers_in(self, ref: ClassRef | None) -> tuple[str, ClassRef] | None:
        """(attribute, layer class) of a class's ModuleList of layers: the list whose elements hold attention."""
        lists = self.module_lists(ref)
        for attr, elements in lists.items():
            for element in elements:
                if self.attention_children(element):
                    return attr, element
        for attr, elements in lists.items():
            if elements:
                return attr, elements[0]
        return None

    @cached_property
    def _layers(self) -> tuple[ClassRef, str, ClassRef] | None:
        """(the class holding the list, its path from the decoder, layer class). A decoder holds its list itself; an
        encoder may keep it one module down (BERT's `encoder.layer`)."""
        found = self._layers_in(self.decoder)
        if found is not None:
            return self.decoder, *found
        if self.encoder:
            for attr, child in self.children(self.decoder).items():
                if isinstance(child, ClassRef) and (found := self._layers_in(child)) is not None:
                    return child, f"{attr}.{found[0]}", found[1]
        return None

    @cached_property
    def layer_list(self) -> tuple[str, ClassRef] | None:
        """(path from the decoder, layer class) of the ModuleList of layers (`layers`, or an encoder's
        `encoder.layer`)."""
        return self._layers[1:] if self._layers else None

    @cached_property
    def layer_owner(self) -> ClassRef | None:
        """The class whose nn.ModuleList holds the layers: the decoder, or the module under it that holds them."""
        return self._layers[0] if self._layers else None

    @cached_property
    def layer(self) -> ClassRef | None:
        return self.layer_list[1] if self.layer_list else None

    def dispatches(self, ref: ClassRef | None) -> bool:
        """Whether a class's forward looks attention up in the interface (any name it is known by)."""
        forward, owner = self.method(ref, "forward")
        return forward is not None and bool(interface_lookups(owner.source, forward))

    def attention_children(self, ref: ClassRef | None) -> dict[str, ClassRef]:
        """{attr: class} of a layer's attention submodules (dispatching through the interface, or named
        `*Attention`), one level down too (`self.attention.self`)."""
        out = {}
        for attr, child in self.children(ref).items():
            if not isinstance(child, ClassRef):
                continue
            if self.dispatches(child):
                out[attr] = child
                continue
            subs = {a: s for a, s in self.children(child).items() if isinstance(s, ClassRef)}
            # a wrapper named *Attention around the module that dispatches (BERT's `attention.self`): the inner one
            inner = {f"{attr}.{a}": s for a, s in subs.items() if self.dispatches(s)}
            if inner:
                out.update(inner)
            elif child.name.endswith(("Attention", "SelfAttention")):
                out[attr] = child
            else:
                out.update({f"{attr}.{a}": s for a, s in subs.items() if s.name.endswith("Attention")})
        return out

    @cached_property
    def decoder_attention(self) -> list[ClassRef]:
        """The attention classes of the decoder layers: the modules the engines route to their paged attention."""
        return list(dict.fromkeys(self.attention_children(self.layer).values())) if self.layer else []

    @cached_property
    def other_attention(self) -> list[ClassRef]:
        """Attention classes of the repo outside the decoder (a vision or audio tower's)."""
        out = []
        for source in self.sources.values():
            for name in source.class_lines:
                ref = self.find(name)
                if ref is None or ref in self.decoder_attention:
                    continue
                if name.endswith("Attention") or self.dispatches(ref):
                    if astutil.method(ref.node, "forward") is not None:
                        out.append(ref)
        return out

    @cached_property
    def processor_class(self) -> ClassRef | None:
        auto_map = as_dict((self.processor_config or {}).get("auto_map")) or self.auto_map
        target = auto_map_target(auto_map.get("AutoProcessor"))
        parts = split_target(target) if target else None
        return self.find(parts[1]) if parts else None

    # -- what the model computes, as far as its source shows: the module tree, is_causal, the kind --

    def config_value(self, key: str):
        """A field of the (text) config as the modeling code reads it: config.json's, else the default of the config
        class (its parents' too); UNKNOWN when neither says."""
        for section in (self.section("text_config"), self.config or {}):
            if key in section:
                return section[key]
        node, _ = self.class_attr(self.text_config_class, key)
        if isinstance(node, ast.Constant):
            return node.value
        for current in self.chain(self.text_config_class):  # an __init__ parameter's default (configs before v5)
            init = astutil.method(current.node, "__init__")
            if init is not None and key in (defaults := self.defaults(init)):
                return defaults[key]
        return UNKNOWN

    def evaluate(self, node: ast.AST | None, scope: dict, depth: int = 0):
        """The value of an expression of an __init__ where `scope` holds its arguments, locals and `self.<attr>`
        values, and `config.<field>` is read from the repo's config; UNKNOWN where the source does not tell."""
        if node is None or depth > MAX_EVAL_DEPTH:
            return UNKNOWN
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return scope.get(node.id, UNKNOWN)
        if isinstance(node, ast.Attribute):
            name = astutil.dotted(node)
            if name in scope:
                return scope[name]
            if name in (f"config.{node.attr}", f"self.config.{node.attr}"):
                return self.config_value(node.attr)
            return UNKNOWN
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            value = self.evaluate(node.operand, scope, depth + 1)
            return UNKNOWN if value is UNKNOWN else not value
        if isinstance(node, ast.BoolOp):
            values = [self.evaluate(v, scope, depth + 1) for v in node.values]
            is_and = isinstance(node.op, ast.And)
            if any(v is not UNKNOWN and bool(v) != is_and for v in values):
                return not is_and  # `x and False`, `x or True`: decided whatever x is
            return UNKNOWN if any(v is UNKNOWN for v in values) else is_and
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = (
                self.evaluate(node.left, scope, depth + 1),
                self.evaluate(node.comparators[0], scope, depth + 1),
            )
            ops = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Is: lambda a, b: a is b}
            ops[ast.IsNot] = lambda a, b: a is not b
            op = ops.get(type(node.ops[0]))
            if op is None or left is UNKNOWN or right is UNKNOWN:
                return UNKNOWN
            return op(left, right)
        if isinstance(node, ast.IfExp):
            test = self.evaluate(node.test, scope, depth + 1)
            if test is not UNKNOWN:
                return self.evaluate(node.body if test else node.orelse, scope, depth + 1)
            body, orelse = self.evaluate(node.body, scope, depth + 1), self.evaluate(node.orelse, scope, depth + 1)
            return body if body is not UNKNOWN and orelse is not UNKNOWN and body == orelse else UNKNOWN
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
            if len(node.args) in (2, 3) and astutil.dotted(node.args[0]) in ("config", "self.config"):
                key = node.args[1]
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    value = self.config_value(key.value)
                    if value is UNKNOWN and len(node.args) == 3:
                        return self.evaluate(node.args[2], scope, depth + 1)
                    return value
        return UNKNOWN

    def defaults(self, init: ast.FunctionDef) -> dict:
        """{parameter: default value} of a function (UNKNOWN for a parameter without one)."""
        args = init.args
        positional = [*args.posonlyargs, *args.args]
        out = {a.arg: UNKNOWN for a in [*positional, *args.kwonlyargs]}
        for arg, default in zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=False):
            out[arg.arg] = self.evaluate(default, {})
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=False):
            if default is not None:
                out[arg.arg] = self.evaluate(default, {})
        out.pop("self", None)
        return out

    def _bind(self, ref: ClassRef, call: ast.Call | None, env: dict) -> dict:
        """The arguments `ref.__init__` receives from `call`, evaluated where the call is made."""
        init, _ = self.method(ref, "__init__")
        if init is None:
            return {}
        scope = self.defaults(init)
        if call is None:
            return scope
        params = [a.arg for a in [*init.args.posonlyargs, *init.args.args]][1:]
        given: set[str] = set()
        for i, (name, arg) in enumerate(zip(params, call.args, strict=False)):
            if isinstance(arg, ast.Starred):  # `*args`: whatever it holds, from here on
                scope.update({p: UNKNOWN for p in params[i:]})
                break
            scope[name] = self.evaluate(arg, env)
            given.add(name)
        for keyword in call.keywords:
            if keyword.arg is not None:
                scope[keyword.arg] = self.evaluate(keyword.value, env)
                given.add(keyword.arg)
        if any(keyword.arg is None for keyword in call.keywords):  # `**kwargs` may hold any parameter not given
            scope.update({name: UNKNOWN for name in scope if name not in given})
        return scope

    def _run_init(self, ref: ClassRef, scope: dict) -> tuple[dict, list]:
        """Run the __init__s of a class and its parents (parents first) as far as the source shows: the values its
        `self.<attr>`s get, and the submodules it builds as (attr, class, the arguments they receive). An `if` the
        config decides runs one branch; one it does not decide runs both."""
        attrs: dict = {}
        built: list[tuple[str, ClassRef, dict]] = []
        for current in reversed(self.chain(ref)):
            init = astutil.method(current.node, "__init__")
            if init is None:
                continue
            env = {**self.defaults(init), **scope, **{f"self.{k}": v for k, v in attrs.items()}}
            self._run_block(current, init.body, env, attrs, built, 0)
        return attrs, built

    def _run_block(self, owner: ClassRef, body: list[ast.stmt], env: dict, attrs: dict, built: list, depth: int):
        if depth > MAX_EVAL_DEPTH:
            return
        for stmt in body:
            if isinstance(stmt, ast.If):
                test = self.evaluate(stmt.test, env)
                if test is UNKNOWN:
                    branches = []
                    for block in (stmt.body, stmt.orelse):
                        branch_env, branch_attrs = dict(env), dict(attrs)
                        self._run_block(owner, block, branch_env, branch_attrs, built, depth + 1)
                        branches.append((branch_env, branch_attrs))
                    for target, (a, b) in (
                        (env, (branches[0][0], branches[1][0])),
                        (attrs, (branches[0][1], branches[1][1])),
                    ):
                        for key in set(a) | set(b):
                            target[key] = a[key] if key in a and key in b and a[key] == b[key] else UNKNOWN
                else:
                    self._run_block(owner, stmt.body if test else stmt.orelse, env, attrs, built, depth + 1)
            elif isinstance(stmt, ast.For | ast.AsyncFor | ast.While | ast.With | ast.AsyncWith | ast.Try):
                if isinstance(stmt, ast.For | ast.AsyncFor):
                    for node in ast.walk(stmt.target):
                        if isinstance(node, ast.Name):
                            env[node.id] = UNKNOWN
                for block in ("body", "orelse", "finalbody"):
                    self._run_block(owner, getattr(stmt, block, []) or [], env, attrs, built, depth + 1)
                for handler in getattr(stmt, "handlers", []):
                    self._run_block(owner, handler.body, env, attrs, built, depth + 1)
            else:
                for target in astutil.assigned(stmt):
                    value = self.evaluate(stmt.value, env)
                    if isinstance(target, ast.Name):
                        env[target.id] = value
                    elif isinstance(target, ast.Tuple | ast.List):
                        env.update({n.id: UNKNOWN for n in ast.walk(target) if isinstance(n, ast.Name)})
                    elif astutil.dotted(target) == f"self.{getattr(target, 'attr', '')}":
                        attrs[target.attr] = env[f"self.{target.attr}"] = value
                        built += self._submodules(owner, target.attr, stmt.value, env)

    def _submodules(self, owner: ClassRef, attr: str, value: ast.AST, env: dict) -> list:
        """(attr, class, arguments) of what `self.<attr> = value` builds: a class, a branch of `a if c else b`, the
        elements of an nn.ModuleList (`attr.*`)."""
        pending, out = [value], []
        while pending:
            node = pending.pop()
            if isinstance(node, ast.IfExp):
                test = self.evaluate(node.test, env)
                pending += [node.body, node.orelse] if test is UNKNOWN else [node.body if test else node.orelse]
            elif isinstance(node, ast.Call) and astutil.call_name(node) in ("ModuleList", "Sequential", "ModuleDict"):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Call) and inner is not node:
                        out += [
                            (f"{attr}.*", ref, self._bind(ref, inner, env))
                            for ref in self.constructed(owner, inner.func, env)
                        ]
            elif isinstance(node, ast.Call):
                out += [(attr, ref, self._bind(ref, node, env)) for ref in self.constructed(owner, node.func, env)]
        return out

    @cached_property
    def modules(self) -> list[Module]:
        """The base model's module tree as its __init__s build it for this config, breadth first, each kind of
        submodule once per path (a ModuleList's elements are one `attr.*` path)."""
        if self.base_model is None:
            return []
        out: list[Module] = []
        queue = [("", self.base_model, self._bind(self.base_model, None, {}), 0)]
        while queue and len(out) < MAX_TREE_MODULES:
            path, ref, scope, depth = queue.pop(0)
            attrs, built = self._run_init(ref, scope)
            out.append(Module(path, ref, attrs))
            if depth < MAX_TREE_DEPTH:
                queue += [(f"{path}.{attr}" if path else attr, child, args, depth + 1) for attr, child, args in built]
        return out

    @cached_property
    def noncausal_modules(self) -> list[Module]:
        """The modules whose `is_causal` is False. One is enough: vLLM (`_get_attn_cls`) then gives every layer of a
        text-only model its encoder-only attention, SGLang (`_create_attention_instances`) its encoder attention."""
        return [m for m in self.modules if m.is_causal(self) is False]

    @cached_property
    def attention_modules(self) -> list[Module]:
        """The modules of the tree that call the attention interface: those the engines give their attention."""
        return [m for m in self.modules if self.dispatches(m.ref)]

    @cached_property
    def bidirectional_mask_only(self) -> bool:
        """Whether the base model builds a padding mask and no causal one (in its forward or its submodules')."""
        refs = list(self.chain(self.base_model))
        for child in self.children(self.base_model).values():
            if isinstance(child, ClassRef):
                refs += self.chain(child)
        called: set[str] = set()
        for ref in refs:
            forward = astutil.method(ref.node, "forward")
            if forward is not None:
                called |= {astutil.call_name(n) or "" for n in ast.walk(forward) if isinstance(n, ast.Call)}
        return bool(called & set(BIDIRECTIONAL_MASKS)) and not called & set(CAUSAL_MASKS)

    @cached_property
    def encoder(self) -> bool:
        """A text-only repo the engines run (or should run) with bidirectional attention: no nested text_config, a base
        model that takes input_ids, and a module of it that sets `is_causal` False (what both engines read), or a
        padding mask and no causal one built (what an encoder does, whatever its attention says)."""
        if self.multimodal or self.composite or not self.takes_text:
            return False
        return bool(self.noncausal_modules) or self.bidirectional_mask_only

    @cached_property
    def composite(self) -> bool:
        """Whether config.json nests a text_config: both engines then never take the model for an encoder (vLLM's
        `config != config.get_text_config()`, SGLang's `self.config != self.text_config`)."""
        return bool(as_dict((self.config or {}).get("text_config")))

    @cached_property
    def takes_text(self) -> bool:
        """Whether the base model's forward takes `input_ids`: the engines' Transformers backend serves text (a vision,
        audio or time-series encoder without a vision_config is no text encoder)."""
        forward, _ = self.method(self.base_model, "forward")
        return forward is not None and "input_ids" in astutil.param_names(forward)

    @cached_property
    def embedding(self) -> bool:
        """Whether vLLM serves the repo as an embedding model: architectures[0] ends with `Model` (vLLM's
        `_SUFFIX_TO_DEFAULTS`, where `...LMHeadModel` and the like generate or classify)."""
        arch = self.architectures[0] if self.architectures else ""
        if arch.endswith(("ForTextEncoding", "EmbeddingModel")):
            return True
        return arch.endswith("Model") and not arch.endswith(NOT_EMBEDDING_SUFFIXES)

    @cached_property
    def classifier_head(self) -> ClassRef | None:
        """The sequence classifier of the repo: auto_map's AutoModelForSequenceClassification class, else
        architectures[0] when it is a `...ForSequenceClassification` of the repo."""
        names = [self.auto_class(SEQUENCE_CLASSIFICATION_AUTO_CLASS)]
        names += [a for a in self.architectures[:1] if a.endswith("ForSequenceClassification")]
        return next((ref for name in names if name and (ref := self.find(name)) is not None), None)

    @cached_property
    def kind(self) -> str:
        """What the rules take the repo for: multimodal, encoder or text (a decoder)."""
        return MULTIMODAL if self.multimodal else ENCODER if self.encoder else TEXT


def interface_lookups(source: Source, func: ast.FunctionDef) -> dict[str, ast.AST]:
    """{local variable: assignment} of the variables a function assigns from the attention interface:
    `ALL_ATTENTION_FUNCTIONS.get_interface(...)` or `[...]`, under whatever name the module imports it."""
    names = interface_names(source)
    out: dict[str, ast.AST] = {}
    for node in ast.walk(func):
        targets = astutil.assigned(node)
        if targets and is_interface_lookup(node.value, names):
            for target in targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node
    return out


def interface_names(source: Source) -> set[str]:
    """Local names that are `ALL_ATTENTION_FUNCTIONS` in a module (imported under another name, or aliased)."""
    names = {n for n, (_, attr, _) in source.imports.items() if attr in INTERFACE_NAMES} | set(INTERFACE_NAMES)
    names |= {a for a, b in source.aliases.items() if b in names}
    return names


def is_interface_lookup(node: ast.AST | None, names: set[str]) -> bool:
    """`X.get_interface(...)`, `X[...]` or `X.get(...)` where X is the interface (or `module.X`)."""
    if isinstance(node, ast.Call):
        node = node.func
    if not isinstance(node, ast.Attribute | ast.Subscript):
        return False
    base = node.value
    if isinstance(base, ast.Name):
        return base.id in names
    return isinstance(base, ast.Attribute) and base.attr in INTERFACE_NAMES


def literal_interface_name(node: ast.AST | None) -> bool:
    """vLLM's own test: the lookup's base is the bare name `ALL_ATTENTION_FUNCTIONS` (no alias, no module)."""
    if isinstance(node, ast.Call):
        node = node.func
    return (
        isinstance(node, ast.Attribute | ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id in INTERFACE_NAMES
    )
