"""Names transformers already owns, read from its source with `ast` (no torch import, so it stays fast).

If `architectures[0]` or `model_type` is one of these, vLLM and SGLang run their native implementation of that
model and never import the repo's custom code.
"""

from __future__ import annotations

import functools

from scaffold.conformance.checks import native_names


@functools.lru_cache(maxsize=1)
def transformers_names() -> tuple[frozenset[str], frozenset[str]]:
    """(model types, class names) known to the installed transformers; empty sets if it is not installed."""
    model_types, classes = native_names()
    return frozenset(model_types), frozenset(classes)
