"""Classes as Python resolves them, read from source and never imported: through a repo's imports and aliases, up
the inheritance chain, into the installed transformers' own model files. `ClassResolution` is the part of `Repo` that
does it (`find`, `resolve`, `chain`, `class_attr`, `method`, `children`, ...)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tf_scaffold.conformance import astutil
from tf_scaffold.conformance.files import Source, load_source, regular_file
from tf_scaffold.installed import transformers_root

# Base classes of transformers past which nothing a rule reads is defined.
ROOTS = {"PreTrainedModel", "PreTrainedConfig", "PretrainedConfig", "GenerationMixin", "Module", "object"}
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


class ClassResolution:
    """Finding and reading classes: the repo's (`self.sources`) and, through its imports, transformers' own."""

    sources: dict[str, Source]

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
