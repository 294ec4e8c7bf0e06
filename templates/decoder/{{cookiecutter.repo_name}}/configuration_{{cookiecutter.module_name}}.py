{%- if cookiecutter.multimodal %}
{%- include "configuration_multimodal.py" %}
{%- else %}
"""{{ cookiecutter.class_prefix }} model configuration."""

from typing import ClassVar

from transformers import PreTrainedConfig


{% include "text_config.py" %}

__all__ = ["{{ cookiecutter.config_class }}"]
{%- endif %}
