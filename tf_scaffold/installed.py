"""What the installed transformers holds, read from its files with `ast` and never imported (importing transformers
takes seconds; reading a few of its files, milliseconds).

`new` refuses names transformers already owns and `check` flags repos that reuse them: vLLM and SGLang would run
their native implementation of that model and never import the repo's code.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

# the files of `transformers/models/auto/` that map model types to their config classes
MAPPING_FILES = ("configuration_auto.py", "auto_mappings.py")


@cache
def transformers_root() -> Path | None:
    """The installed transformers package folder, found without importing it; None when it is not installed."""
    try:
        spec = importlib.util.find_spec("transformers")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None


@cache
def native_names() -> tuple[frozenset[str], frozenset[str]]:
    """(model types, class names) known to the installed transformers; empty sets if it is not installed.

    If `architectures[0]` or `model_type` is one of these, vLLM and SGLang may run their native implementation of
    that model and never import the repo's custom code.
    """
    root = transformers_root()
    if root is None or not (root / "models").is_dir():
        return frozenset(), frozenset()
    models = root / "models"
    model_types = {p.name for p in models.iterdir() if p.is_dir() and not p.name.startswith("_") and p.name != "auto"}
    classes: set[str] = set()
    for path in sorted((models / "auto").glob("*.py")):
        tree = _parse(path)
        if tree is None:
            continue
        mapping_file = path.name in MAPPING_FILES
        for node in ast.walk(tree):
            if (
                mapping_file
                and isinstance(node, ast.Tuple)
                and len(node.elts) == 2
                and isinstance(node.elts[0], ast.Constant)
                and isinstance(node.elts[0].value, str)
            ):
                model_types.add(node.elts[0].value)
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.isidentifier()
                and any(ch.isupper() for ch in node.value)
            ):
                classes.add(node.value)
    return frozenset(model_types), frozenset(classes)
