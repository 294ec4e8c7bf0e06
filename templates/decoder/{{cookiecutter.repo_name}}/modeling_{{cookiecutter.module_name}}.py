{%- if cookiecutter.multimodal %}
{%- include "modeling_multimodal.py" %}
{%- else %}
{%- include "license_header.py" %}
"""{{ cookiecutter.class_prefix }}: a Llama-class decoder that vLLM and SGLang serve through their Transformers backend.

How the engines use this file (read this before changing it):

- They import `{{ cookiecutter.base_model_class }}` through `auto_map["AutoModel"]` and build it with
  `AutoModel.from_config(config)` on the meta device. `{{ cookiecutter.architecture }}` never runs inside an engine:
  it adds its own LM head. All customisation therefore lives in the base model.
- They call the base model as `model(input_ids=..., position_ids=..., use_cache=False, return_dict=False, **kwargs)`
  with every request of a batch packed into one row. Positions come from `position_ids`, masking is done by the
  engine's attention function, and `**kwargs` carries the engine's attention metadata down to the attention call.
- vLLM reads `{{ cookiecutter.class_prefix }}Attention.forward` with `ast`: it must make exactly one call through a
  local variable assigned from `ALL_ATTENTION_FUNCTIONS.get_interface(...)`, with `scaling=self.scaling`.
"""

from collections.abc import Callable

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS, dynamic_rope_update
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, auto_docstring, can_return_tuple
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .{{ cookiecutter.configuration_module }} import {{ cookiecutter.config_class }}


{% include "cache_name.py" %}


{% include "text_layers.py" %}

@auto_docstring
class {{ cookiecutter.class_prefix }}PreTrainedModel(PreTrainedModel):
    config: {{ cookiecutter.config_class }}
    base_model_prefix = "model"  # checkpoint keys are `model.*` (+ `lm_head.weight`): the engines load by these names
    supports_gradient_checkpointing = True
    _no_split_modules = ["{{ cookiecutter.class_prefix }}DecoderLayer"]
    _skip_keys_device_placement = [CACHE_NAME]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    # The gate both engines check before running this model with their own attention.
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    # What `output_hidden_states` / `output_attentions` collect (transformers' `capture_outputs` hooks these classes).
    _can_record_outputs = {
        "hidden_states": {{ cookiecutter.class_prefix }}DecoderLayer,
        "attentions": {{ cookiecutter.class_prefix }}Attention,
    }


{% include "text_model.py" %}

@auto_docstring
class {{ cookiecutter.architecture }}({{ cookiecutter.class_prefix }}PreTrainedModel, GenerationMixin):
    # Base model + LM head, for transformers users. The engines use their own head and never run this class, so it
    # must hold nothing but `model` and `lm_head`.

    # v5 form: `lm_head.weight` is tied to the input embeddings when `config.tie_word_embeddings` is True.
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    _tp_plan = {"lm_head": "colwise_gather_output"}
    _pp_plan = {"lm_head": (["hidden_states"], ["logits"])}

    def __init__(self, config: {{ cookiecutter.config_class }}):
        super().__init__(config)
        self.model = {{ cookiecutter.base_model_class }}(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

        self.post_init()

    @can_return_tuple
    @auto_docstring
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        past_key_values: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> CausalLMOutputWithPast:
        r"""
        cache (`Cache`, *optional*):
            The KV cache of earlier steps, updated in place (`DynamicCache` when `use_cache` and none is given).
        past_key_values (`Cache`, *optional*):
            The KV cache under its name before transformers 5.24, which `generate()` of those releases passes.
        """
        outputs: BaseModelOutputWithPast = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache if cache is not None else past_key_values,  # the name `generate()` uses before 5.24
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )

        hidden_states = outputs.last_hidden_state
        # Only compute logits for the positions asked for (0 means all): `generate()` asks for the last one.
        slice_indices = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, slice_indices, :])

        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)

        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            **{CACHE_NAME: getattr(outputs, CACHE_NAME)},
        )


__all__ = [
    "{{ cookiecutter.architecture }}",
    "{{ cookiecutter.base_model_class }}",
    "{{ cookiecutter.class_prefix }}PreTrainedModel",
]
{%- endif %}
