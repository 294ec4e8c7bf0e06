"""The Spec: the answers of `tf-scaffold new`, validated once.

`presets` the named sizes, `choices` the answers with a fixed set of values, `parts` the optional sub-models (vision
tower, experts, encoder), `rope` RoPE scaling, `validate` the rules across fields, `schema` the Spec itself and its
derived values, `build` answers -> Spec. Names derived from the model name live in `tf_scaffold.names`, what each kind
of repo is made of (files, plans, parameter count) in `tf_scaffold.variants`, constant facts in `tf_scaffold.facts`.
Templates never decide anything.

The names below load their module when first used, so that the command line can read `presets` and `choices` for its
help without importing pydantic and the transformers name index.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tf_scaffold.names import normalise_name
    from tf_scaffold.spec.build import build_spec
    from tf_scaffold.spec.parts import EncoderSpec, MoeSpec, VisionSpec
    from tf_scaffold.spec.presets import DEFAULT_PRESET, PRESETS
    from tf_scaffold.spec.rope import ROPE_TYPES, rope_scaling_answer
    from tf_scaffold.spec.schema import Spec

_EXPORTS = {
    "DEFAULT_PRESET": "tf_scaffold.spec.presets",
    "PRESETS": "tf_scaffold.spec.presets",
    "ROPE_TYPES": "tf_scaffold.spec.rope",
    "EncoderSpec": "tf_scaffold.spec.parts",
    "MoeSpec": "tf_scaffold.spec.parts",
    "Spec": "tf_scaffold.spec.schema",
    "VisionSpec": "tf_scaffold.spec.parts",
    "build_spec": "tf_scaffold.spec.build",
    "normalise_name": "tf_scaffold.names",
    "rope_scaling_answer": "tf_scaffold.spec.rope",
}
__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "ROPE_TYPES",
    "EncoderSpec",
    "MoeSpec",
    "Spec",
    "VisionSpec",
    "build_spec",
    "normalise_name",
    "rope_scaling_answer",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
