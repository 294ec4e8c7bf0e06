"""RoPE: the scaling types a Llama-class decoder can use, the `rope_scaling` answer `new`'s options make, and the
checks of a scaling table against the model's sizes."""

from __future__ import annotations

import json
from typing import Any

from tf_scaffold.errors import SpecError

# RoPE scaling: the `rope_type`s of transformers' `ROPE_INIT_FUNCTIONS` a Llama-class decoder can use, with the keys
# each one requires and allows besides `rope_type` and `rope_theta` (as transformers' own rope validation has them).
ROPE_TYPES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "default": (frozenset(), frozenset()),
    "linear": (frozenset({"factor"}), frozenset()),
    "dynamic": (frozenset({"factor"}), frozenset()),
    "yarn": (
        frozenset({"factor", "original_max_position_embeddings"}),
        frozenset({"attention_factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "truncate"}),
    ),
    "longrope": (
        frozenset({"short_factor", "long_factor", "original_max_position_embeddings"}),
        frozenset({"attention_factor", "factor"}),
    ),
    "llama3": (
        frozenset({"factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor"}),
        frozenset(),
    ),
}
# Filled in when not given: Llama 3.1's frequency bands for llama3.
ROPE_DEFAULTS: dict[str, dict[str, float]] = {"llama3": {"low_freq_factor": 1.0, "high_freq_factor": 4.0}}


def rope_scaling_answer(
    rope_type: str | None, factor: float | None, original: int | None, extra_json: str | None
) -> dict[str, Any] | None:
    """The `rope_scaling` answer from `new`'s RoPE options (None when none was given). Raises SpecError."""
    scaling: dict[str, Any] = {}
    if extra_json is not None:
        try:
            scaling = json.loads(extra_json)
        except json.JSONDecodeError as err:
            raise SpecError(f"--rope-parameters is not valid JSON: {err}") from None
        if not isinstance(scaling, dict):
            raise SpecError("--rope-parameters must be a JSON object, e.g. '{\"factor\": 4}'")
    for key, value in (("rope_type", rope_type), ("factor", factor), ("original_max_position_embeddings", original)):
        if value is not None:
            scaling[key] = value
    if scaling and "rope_type" not in scaling:
        raise SpecError("RoPE scaling options need a type: add --rope-scaling linear|dynamic|yarn|longrope|llama3")
    return scaling or None


def rope_parameters(scaling: dict[str, Any] | None, rope_theta: float) -> dict[str, Any]:
    """The config's `rope_parameters`: type, base and scaling factors, as transformers' RoPE functions read them."""
    scaling = dict(scaling or {})
    rope_type = scaling.pop("rope_type", "default")
    return {"rope_type": rope_type, "rope_theta": rope_theta, **ROPE_DEFAULTS.get(rope_type, {}), **scaling}


def check_rope(scaling: dict[str, Any] | None, rope_theta: float, max_position_embeddings: int, head_dim: int) -> None:
    """A scaling table transformers' RoPE functions accept for these sizes. Raises SpecError."""
    scaling = scaling or {}
    rope_type = scaling.get("rope_type", "default")
    if rope_type not in ROPE_TYPES:
        raise SpecError(f"unknown rope scaling {rope_type!r}: choose one of {', '.join(ROPE_TYPES)}")
    required, optional = ROPE_TYPES[rope_type]
    given = set(scaling) - {"rope_type"}
    if "rope_theta" in given:
        raise SpecError("give the RoPE base with --rope-theta, not inside --rope-parameters")
    missing = sorted(required - given - set(ROPE_DEFAULTS.get(rope_type, {})))
    if missing:
        raise SpecError(
            f"rope scaling {rope_type!r} needs {', '.join(missing)}: give it with --rope-factor,"
            " --rope-original-max-position-embeddings or --rope-parameters '{...}'"
        )
    unknown = sorted(given - required - optional)
    if unknown:
        raise SpecError(
            f"rope scaling {rope_type!r} takes no {unknown[0]!r}: it takes {', '.join(sorted(required | optional))}"
        )
    params = rope_parameters(scaling, rope_theta)
    factor = params.get("factor")
    if factor is not None and (isinstance(factor, bool) or not isinstance(factor, int | float) or factor < 1):
        raise SpecError(f"rope factor must be a number >= 1, got {factor!r}")
    original = params.get("original_max_position_embeddings")
    if original is not None and (
        isinstance(original, bool) or not isinstance(original, int) or not 0 < original < max_position_embeddings
    ):
        raise SpecError(
            f"rope original-max-position-embeddings must be a whole number below max-position-embeddings"
            f" {max_position_embeddings}, got {original!r}"
        )
    for key in ("short_factor", "long_factor"):
        value = params.get(key)
        if value is not None and (
            not isinstance(value, list)
            or len(value) != head_dim // 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            raise SpecError(f"rope {key} must be a list of {head_dim // 2} numbers (head-dim / 2), got {value!r}")
    for key in ("low_freq_factor", "high_freq_factor", "attention_factor", "beta_fast", "beta_slow"):
        value = params.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise SpecError(f"rope {key} must be a number, got {value!r}")
    if rope_type == "llama3" and params["high_freq_factor"] <= params["low_freq_factor"]:
        raise SpecError("rope high_freq_factor must be larger than low_freq_factor")
