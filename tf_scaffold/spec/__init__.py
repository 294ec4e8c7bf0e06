"""The Spec: the answers of `tf-scaffold new`, validated once.

`presets` the named sizes, `parts` the optional sub-models (vision tower, experts, encoder), `rope` RoPE scaling,
`validate` the rules across fields, `schema` the Spec itself and its derived values, `build` answers -> Spec.
Names derived from the model name live in `tf_scaffold.names`, what each kind of repo is made of (files, plans,
parameter count) in `tf_scaffold.variants`, constant facts in `tf_scaffold.facts`. Templates never decide anything.
"""

from tf_scaffold.names import normalise_name
from tf_scaffold.spec.build import build_spec
from tf_scaffold.spec.parts import EncoderSpec, MoeSpec, VisionSpec
from tf_scaffold.spec.presets import DEFAULT_PRESET, PRESETS
from tf_scaffold.spec.rope import ROPE_TYPES, rope_scaling_answer
from tf_scaffold.spec.schema import Spec

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
