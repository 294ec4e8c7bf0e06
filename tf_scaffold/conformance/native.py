"""Names transformers already owns, read from its source with `ast` (no import, so it stays fast)."""

from __future__ import annotations

import ast
from functools import cache

from tf_scaffold.conformance.model import transformers_root
from tf_scaffold.conformance.repo import parse


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
        try:
            tree, _, _ = parse(path.read_text(encoding="utf-8"), str(path))
        except OSError:
            continue
        if tree is None:
            continue
        mapping_file = path.name in ("configuration_auto.py", "auto_mappings.py")
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
