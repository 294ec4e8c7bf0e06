"""A repo as the rules see it: its files loaded as data (`files.py`, never imported), its classes resolved as Python
resolves them (`classes.py`), its `__init__`s evaluated for the config (`evaluate.py`), the pieces the engines use
found (`roles.py`) and its family told (`family.py`). Loading never raises: what could not be read is a problem the
rules report.
"""

from __future__ import annotations

import ast
from functools import cached_property
from pathlib import Path

from tf_scaffold.conformance.classes import ClassRef, ClassResolution
from tf_scaffold.conformance.evaluate import Evaluation
from tf_scaffold.conformance.family import FamilyDetection
from tf_scaffold.conformance.files import (
    Source,
    as_dict,
    auto_map_target,
    confined,
    load_source,
    read_json,
    split_target,
    type_name,
)
from tf_scaffold.conformance.registry import Issue
from tf_scaffold.conformance.roles import Roles

SOURCE_PATTERNS = ("modeling_*.py", "configuration_*.py", "processing_*.py", "image_processing_*.py")


class Repo(ClassResolution, Evaluation, Roles, FamilyDetection):
    """Everything the static rules read. Loading never raises; what could not be read is in `problems`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.problems: list[tuple[str, Issue]] = []  # (rule id, issue) found while loading
        self.config: dict | None = None
        self.config_problem: str | None = None
        self.processor_config: dict | None = None
        self.sources: dict[str, Source] = {}
        self._load()

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
