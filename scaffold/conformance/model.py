"""A repo as the rules see it: its files loaded as data (`repo.py`), its classes resolved the way Python resolves
them (through the repo's imports, into the installed transformers' sources, read with `ast` and never imported),
and the pieces the engines care about found from `auto_map`, `architectures` and the class structure: the config
class, the head, the base model, the decoder, its layer class and its attention classes.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from scaffold.conformance import astutil
from scaffold.conformance.registry import Issue
from scaffold.conformance.repo import (
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
from scaffold.facts import ANY_HEAD_AUTO_CLASSES as HEAD_AUTO_CLASSES  # what repos in the wild use

SOURCE_PATTERNS = ("modeling_*.py", "configuration_*.py", "processing_*.py", "image_processing_*.py")
# Base classes of transformers past which nothing a rule reads is defined.
ROOTS = {"PreTrainedModel", "PreTrainedConfig", "PretrainedConfig", "GenerationMixin", "Module", "object"}
INTERFACE_NAMES = ("ALL_ATTENTION_FUNCTIONS",)
MAX_CHAIN = 16


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
def transformers_root() -> Path | None:
    """The installed transformers package folder, found without importing it."""
    try:
        spec = importlib.util.find_spec("transformers")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


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
                out[attr] = self.resolve(owner.source, value.func) or name
        return out

    def members(self, ref: ClassRef | None) -> dict[str, list[ClassRef | str]]:
        """{attr: [what it may be]} over every branch of the __init__ of the class and its ancestors: a class, the
        name of a class that is not readable, or "Parameter" for `nn.Parameter(...)`."""
        out: dict[str, list[ClassRef | str]] = {}
        for current in reversed(self.chain(ref)):
            for attr, values in astutil.all_self_assignments(astutil.method(current.node, "__init__")).items():
                kinds = [
                    self.resolve(current.source, value.func) or name
                    for value in values
                    if isinstance(value, ast.Call) and (name := astutil.call_name(value))
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
        """The head class (`*ForCausalLM` ...): from auto_map's head entry, else architectures[0]."""
        for name in [*(self.auto_class(k) for k in HEAD_AUTO_CLASSES), *self.architectures]:
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

    @cached_property
    def layer_list(self) -> tuple[str, ClassRef] | None:
        """(attribute, layer class) of the decoder's ModuleList of layers: the list whose elements hold attention."""
        lists = self.module_lists(self.decoder)
        for attr, elements in lists.items():
            for element in elements:
                if self.attention_children(element):
                    return attr, element
        for attr, elements in lists.items():
            if elements:
                return attr, elements[0]
        return None

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
            if self.dispatches(child) or child.name.endswith(("Attention", "SelfAttention")):
                out[attr] = child
            else:
                for sub_attr, sub in self.children(child).items():
                    if isinstance(sub, ClassRef) and (self.dispatches(sub) or sub.name.endswith("Attention")):
                        out[f"{attr}.{sub_attr}"] = sub
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
