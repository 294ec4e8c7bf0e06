"""Names transformers already owns (read from its source with `ast`, no import): `new` refuses them, because vLLM
and SGLang would run their native implementation of that model and never import the repo's code."""

from __future__ import annotations

from tf_scaffold.conformance.native import native_names


def transformers_names() -> tuple[frozenset[str], frozenset[str]]:
    """(model types, class names) known to the installed transformers; empty sets if it is not installed."""
    return native_names()
