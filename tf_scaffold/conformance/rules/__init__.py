"""The static rules, one module per topic; importing this package registers them."""

from tf_scaffold.conformance.rules import (
    attention,
    config,
    encoder,
    experts,
    head,
    kwargs,
    multimodal,
    parallel,
    record,
    window,
)

__all__ = ["attention", "config", "encoder", "experts", "head", "kwargs", "multimodal", "parallel", "record", "window"]
