{%- if cookiecutter.encoder %}
{%- include "encoder_config.py" %}
{%- elif cookiecutter.multimodal %}
{%- include "configuration_multimodal.py" %}
{%- else %}
{%- include "license_header.py" %}
"""{{ cookiecutter.class_prefix }} model configuration."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.modeling_rope_utils import RopeParameters
from transformers.utils import auto_docstring


{% include "text_config.py" %}

__all__ = ["{{ cookiecutter.config_class }}"]
{%- endif %}
