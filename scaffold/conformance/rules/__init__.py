"""The static rules, one module per topic; importing this package registers them."""

from scaffold.conformance.rules import attention, config, head, kwargs, multimodal, parallel, record

__all__ = ["attention", "config", "head", "kwargs", "multimodal", "parallel", "record"]
