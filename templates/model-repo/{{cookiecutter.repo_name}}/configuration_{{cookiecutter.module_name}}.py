{%- if cookiecutter.encoder %}
{%- include "encoder/configuration.py" %}
{%- elif cookiecutter.multimodal %}
{%- include "multimodal/configuration.py" %}
{%- else %}
{%- include "common/license_header.py" %}
"""{{ cookiecutter.class_prefix }} model configuration."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.modeling_rope_utils import RopeParameters
from transformers.utils import auto_docstring


{% include "decoder/configuration.py" %}

__all__ = ["{{ cookiecutter.config_class }}"]
{%- endif %}
