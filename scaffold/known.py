"""Names transformers already owns, read from its source with `ast` (no torch import, so it stays fast).

If `architectures[0]` or `model_type` is one of these, vLLM and SGLang run their native implementation of that
model and never import the repo's custom code.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path

_CLASS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*[A-Z][A-Za-z0-9_]*$")


def _transformers_root() -> Path | None:
    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@functools.lru_cache(maxsize=1)
def transformers_names() -> tuple[frozenset[str], frozenset[str]]:
    """(model types, class names) known to the installed transformers; empty sets if it is not installed."""
    root = _transformers_root()
    if root is None:
        return frozenset(), frozenset()
    model_types: set[str] = set()
    classes: set[str] = set()
    models = root / "models"
    for child in models.iterdir():
        if child.is_dir() and not child.name.startswith("_") and child.name != "auto":
            model_types.add(child.name)
    for path in sorted((models / "auto").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple) and len(node.elts) == 2 and isinstance(node.elts[0], ast.Constant):
                key = node.elts[0].value
                if isinstance(key, str) and path.name in ("configuration_auto.py", "auto_mappings.py"):
                    model_types.add(key)
            elif isinstance(node, ast.Dict) and path.name in ("configuration_auto.py", "auto_mappings.py"):
                model_types.update(
                    k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)
                )
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _CLASS_RE.match(node.value):
                classes.add(node.value)
    return frozenset(model_types), frozenset(classes)
