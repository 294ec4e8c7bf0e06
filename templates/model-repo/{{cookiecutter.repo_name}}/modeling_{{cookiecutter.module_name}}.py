{%- if cookiecutter.encoder %}
{%- include "encoder/modeling.py" %}
{%- elif cookiecutter.multimodal %}
{%- include "multimodal/modeling.py" %}
{%- else %}
{%- include "common/license_header.py" %}
"""{{ cookiecutter.class_prefix }}: a {{ cookiecutter.decoder_summary }}.

vLLM and SGLang serve it through their Transformers backend. How they use this file (read this before changing it):

- They import `{{ cookiecutter.base_model_class }}` through `auto_map["AutoModel"]` and build it with
  `AutoModel.from_config(config)` on the meta device. `{{ cookiecutter.architecture }}` never runs inside an engine:
  it adds its own LM head. All customisation therefore lives in the base model.
- They call the base model as `model(input_ids=..., position_ids=..., use_cache=False, return_dict=False, **kwargs)`
  with every request of a batch packed into one row. Positions come from `position_ids`, masking is done by the
  engine's attention function, and `**kwargs` carries the engine's attention metadata down to the attention call.
- vLLM reads `{{ cookiecutter.class_prefix }}Attention.forward` with `ast`: it must make exactly one call through a
  local variable assigned from `ALL_ATTENTION_FUNCTIONS.get_interface(...)`, with `scaling=self.scaling`.
{%- if cookiecutter.moe %}
- They replace every `experts` module (3-D `gate_up_proj` / `down_proj`) with their fused MoE kernel, configured from
  `num_experts`, `num_experts_per_tok`, `moe_intermediate_size` and `norm_topk_prob`, and route with the same
  softmax top-k as `{{ cookiecutter.class_prefix }}TopKRouter`.
{%- endif %}
{%- if cookiecutter.sliding %}
- They give layer i a window of `config.sliding_window` tokens when `config.layer_types[i]` is "sliding_attention".
{%- endif %}
"""

from collections.abc import Callable

import torch
{%- if cookiecutter.moe %}
import torch.nn.functional as F
{%- endif %}
from torch import nn
{%- if cookiecutter.moe %}
from transformers import initialization as init
from transformers.conversion_mapping import register_checkpoint_conversion_mapping
from transformers.core_model_loading import Concatenate, MergeModulelist, WeightConverter
{%- endif %}
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.masking_utils import create_causal_mask{% if cookiecutter.sliding %}, create_sliding_window_causal_mask{% endif %}
{%- if cookiecutter.moe %}
from transformers.integrations import use_experts_implementation
{%- endif %}
from transformers.modeling_layers import GradientCheckpointingLayer
{%- if cookiecutter.moe %}
from transformers.modeling_outputs import BaseModelOutputWithPast, MoeCausalLMOutputWithPast, MoeModelOutputWithPast
{%- else %}
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
{%- endif %}
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS, dynamic_rope_update
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, auto_docstring, can_return_tuple
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import {% if cookiecutter.moe %}OutputRecorder, {% endif %}capture_outputs

from .{{ cookiecutter.configuration_module }} import {{ cookiecutter.config_class }}


{% include "decoder/cache_name.py" %}
{%- if cookiecutter.moe %}

# The checkpoint stores each expert's projections apart (`mlp.experts.<e>.gate_proj.weight`, `up_proj`, `down_proj`),
# as Qwen3-MoE checkpoints on the Hub do. SGLang's and vLLM's weight loaders map these names onto their fused MoE
# kernels (SGLang maps no other layout); transformers packs them into `gate_up_proj` / `down_proj` when loading and
# unpacks them when saving, through this conversion (the one it registers for its own Qwen2/Qwen3-MoE models).
register_checkpoint_conversion_mapping(
    "{{ cookiecutter.text_model_type }}",
    [
        WeightConverter(
            source_patterns=["mlp.experts.*.gate_proj.weight", "mlp.experts.*.up_proj.weight"],
            target_patterns="mlp.experts.gate_up_proj",
            operations=[MergeModulelist(dim=0), Concatenate(dim=1)],
        ),
        WeightConverter(
            source_patterns="mlp.experts.*.down_proj.weight",
            target_patterns="mlp.experts.down_proj",
            operations=[MergeModulelist(dim=0)],
        ),
    ],
    overwrite=True,  # the module is imported again for every copy of the repo transformers loads
)
{%- endif %}


{% include "decoder/layers.py" %}

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
{%- if cookiecutter.moe %}
        "router_logits": OutputRecorder({{ cookiecutter.class_prefix }}TopKRouter, index=0),
{%- endif %}
        "hidden_states": {{ cookiecutter.class_prefix }}DecoderLayer,
        "attentions": {{ cookiecutter.class_prefix }}Attention,
    }
{%- if cookiecutter.moe %}

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        # the expert and router weights are plain Parameters, which `PreTrainedModel._init_weights` does not know
        std = self.config.initializer_range
        if isinstance(module, {{ cookiecutter.class_prefix }}Experts):
            init.normal_(module.gate_up_proj, mean=0.0, std=std)
            init.normal_(module.down_proj, mean=0.0, std=std)
        elif isinstance(module, {{ cookiecutter.class_prefix }}TopKRouter):
            init.normal_(module.weight, mean=0.0, std=std)
{%- endif %}


{% include "decoder/model.py" %}
{%- if cookiecutter.moe %}

def load_balancing_loss_func(
    gate_logits: tuple[torch.Tensor, ...] | None,
    num_experts: int,
    top_k: int = 2,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor | int:
    r"""
    The auxiliary load-balancing loss of Switch Transformer (https://huggingface.co/papers/2101.03961), equations (4)
    to (6): the share of tokens routed to each expert times its mean routing probability, summed, times the number of
    experts. Padding tokens (0 in `attention_mask`) are left out. Returns 0 when no router logits were recorded.
    """
    if gate_logits is None or not isinstance(gate_logits, tuple):
        return 0
    compute_device = gate_logits[0].device
    # histc avoids bincount's device-to-host sync; GPUs count in integers, CPU and MPS in floats
    histc_dtype = torch.float32 if compute_device.type in ("cpu", "mps") else torch.int32
    tokens_per_expert_sum = torch.zeros(num_experts, dtype=torch.float32, device=compute_device)
    router_prob_sum = torch.zeros(num_experts, dtype=torch.float32, device=compute_device)
    total_rows = 0.0
    if attention_mask is not None:
        flat_mask = attention_mask.reshape(-1).to(device=compute_device, dtype=torch.float32)

    for layer_gate in gate_logits:  # one (batch * sequence, num_experts) tensor per MoE layer
        routing_weights = torch.nn.functional.softmax(layer_gate.to(compute_device), dim=-1)
        _, selected_experts = torch.topk(routing_weights, top_k, dim=-1)
        if attention_mask is None:
            tokens_per_expert_sum = tokens_per_expert_sum + torch.histc(
                selected_experts.reshape(-1).to(histc_dtype), bins=num_experts, min=0, max=num_experts
            )
            router_prob_sum = router_prob_sum + routing_weights.float().sum(dim=0)
            total_rows = total_rows + routing_weights.shape[0]
        else:
            tokens_per_expert_sum = tokens_per_expert_sum + torch.zeros(
                num_experts, dtype=torch.float32, device=compute_device
            ).scatter_add_(0, selected_experts.reshape(-1), flat_mask.repeat_interleave(top_k))
            router_prob_sum = router_prob_sum + (routing_weights.float() * flat_mask.unsqueeze(-1)).sum(dim=0)
            total_rows = total_rows + flat_mask.sum()

    tokens_per_expert = tokens_per_expert_sum / total_rows
    router_prob_per_expert = router_prob_sum / total_rows
    overall_loss = torch.sum(tokens_per_expert * router_prob_per_expert.unsqueeze(0))
    return overall_loss * num_experts
{%- endif %}

@auto_docstring(
    custom_intro="""
    [`{{ cookiecutter.base_model_class }}`] with a language modeling head, for transformers users (`generate()`, training). The
    engines never run this class: they add their own head to the base model.
    """
)
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
{%- if cookiecutter.moe %}
        self.router_aux_loss_coef = config.router_aux_loss_coef
        self.num_experts = config.num_experts
        self.num_experts_per_tok = config.num_experts_per_tok
{%- endif %}

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
{%- if cookiecutter.moe %}
        output_router_logits: bool | None = None,
{%- endif %}
        logits_to_keep: int | torch.Tensor = 0,
        past_key_values: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> {{ "MoeCausalLMOutputWithPast" if cookiecutter.moe else "CausalLMOutputWithPast" }}:
        r"""
        cache (`Cache`, *optional*):
            The KV cache of earlier steps, updated in place (`DynamicCache` when `use_cache` and none is given).
{%- if cookiecutter.moe %}
        output_router_logits (`bool`, *optional*):
            Whether to return every layer's router logits and the auxiliary load-balancing loss (added to `loss`,
            times `config.router_aux_loss_coef`, when `labels` are given).
{%- endif %}
        past_key_values (`Cache`, *optional*):
            The KV cache under its name before transformers 5.24, which `generate()` of those releases passes.

        Returns:
{%- if cookiecutter.moe %}
            [`~modeling_outputs.MoeCausalLMOutputWithPast`], or a tuple with `return_dict=False`: `logits`, `loss`
            when `labels` are given, `aux_loss` and `router_logits` when `output_router_logits`, the cache when
            `use_cache`, and `hidden_states` / `attentions` when asked for.
{%- else %}
            [`~modeling_outputs.CausalLMOutputWithPast`], or a tuple with `return_dict=False`: `logits`, `loss` when
            `labels` are given, the cache when `use_cache`, and `hidden_states` / `attentions` when asked for.
{%- endif %}
        """
{%- if cookiecutter.moe %}
        output_router_logits = (
            output_router_logits if output_router_logits is not None else self.config.output_router_logits
        )
        outputs: MoeModelOutputWithPast = self.model(
{%- else %}
        outputs: BaseModelOutputWithPast = self.model(
{%- endif %}
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache if cache is not None else past_key_values,  # the name `generate()` uses before 5.24
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
{%- if cookiecutter.moe %}
            output_router_logits=output_router_logits,
{%- endif %}
            **kwargs,
        )

        hidden_states = outputs.last_hidden_state
        # Only compute logits for the positions asked for (0 means all): `generate()` asks for the last one.
        slice_indices = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, slice_indices, :])

        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
{%- if cookiecutter.moe %}

        aux_loss = None
        if output_router_logits:
            aux_loss = load_balancing_loss_func(
                outputs.router_logits, self.num_experts, self.num_experts_per_tok, attention_mask
            )
            if labels is not None:
                loss += self.router_aux_loss_coef * aux_loss.to(loss.device)

        return MoeCausalLMOutputWithPast(
            loss=loss,
            aux_loss=aux_loss,
            logits=logits,
            router_logits=outputs.router_logits,
{%- else %}

        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
{%- endif %}
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
