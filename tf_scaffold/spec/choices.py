"""The answers that take one of a fixed set of values, and those values: what `new --help` lists for each option
and what the Spec accepts. Light on purpose (no pydantic): the command line imports it to build its options."""

from __future__ import annotations

from tf_scaffold.spec.presets import PRESETS
from tf_scaffold.spec.rope import ROPE_TYPES

PRESET_NAMES = tuple(PRESETS)
ROPE_SCALINGS = tuple(ROPE_TYPES)
ARCHES = ("decoder", "encoder")
ENCODER_TASKS = ("embed", "classify")
POOLING_MODES = ("cls", "mean")
