# Copyright The AcmeLm Authors. All rights reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""AcmeLm: a Llama-class decoder.

vLLM and SGLang serve it through their Transformers backend. How they use this file (read this before changing it):

- They import `AcmeLmModel` through `auto_map["AutoModel"]` and build it with `AutoModel.from_config(config)` on the
  meta device. `AcmeLmForCausalLM` never runs inside an engine: it adds its own LM head. All customisation therefore
  lives in the base model.
- They call the base model as `model(input_ids=..., position_ids=..., use_cache=False, return_dict=False, **kwargs)`
  with every request of a batch packed into one row. Positions come from `position_ids`, masking is done by the
  engine's attention function, and `**kwargs` carries the engine's attention metadata down to the attention call.
- vLLM reads `AcmeLmAttention.forward` with `ast`: it must make exactly one call through a local variable assigned from
  `ALL_ATTENTION_FUNCTIONS.get_interface(...)`, with `scaling=self.scaling`.
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

from .configuration_acme_lm import AcmeLmConfig


# transformers 5.24 renamed the KV cache from `past_key_values` to `cache`: in model signatures, in what `generate()`
# passes, in `create_causal_mask` and in model outputs (the old name goes in 5.40). The engines pin transformers 5.19
# and users run the newest release, so this file works on both sides of the rename: it calls the cache `cache`, takes
# `past_key_values` from an older `generate()`, and hands the cache to transformers under the installed name.
CACHE_NAME = "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"


class AcmeLmRMSNorm(nn.Module):
    # vLLM fuses this forward into its RMSNorm kernel when it matches `x * torch.rsqrt(x.pow(2).mean(-1) + eps)`
    # times `weight`; SGLang swaps every class whose name ends in "RMSNorm". Keep the name and the shape of the math.
    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.variance_epsilon}"


class AcmeLmRotaryEmbedding(nn.Module):
    inv_freq: torch.Tensor

    def __init__(self, config: AcmeLmConfig):
        super().__init__()
        self.max_seq_len_cached = config.max_position_embeddings
        self.original_max_seq_len = config.max_position_embeddings
        self.config = config

        # transformers' own RoPE functions, so every `rope_type` it knows (linear, dynamic, yarn, longrope, llama3)
        # computes what its in-library models compute.
        self.rope_type = self.config.rope_parameters["rope_type"]
        rope_init_fn: Callable = self.compute_default_rope_parameters
        if self.rope_type != "default":
            rope_init_fn = ROPE_INIT_FUNCTIONS[self.rope_type]
        inv_freq, self.attention_scaling = rope_init_fn(self.config)

        # Non-persistent: not in the checkpoint. Models are built on the meta device; `PreTrainedModel._init_weights`
        # recomputes both buffers of a `*RotaryEmbedding` module with `original_inv_freq` after loading.
        self.inv_freq = nn.Buffer(inv_freq, persistent=False)
        self.original_inv_freq = nn.Buffer(inv_freq.clone(), persistent=False)

    @staticmethod
    def compute_default_rope_parameters(config: AcmeLmConfig, **kwargs) -> tuple[torch.Tensor, float]:
        """The inverse frequencies of the original RoPE, and the factor cos/sin are scaled by (1.0: none)."""
        base = config.rope_parameters["rope_theta"]
        dim = config.head_dim
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
        return inv_freq, 1.0

    @dynamic_rope_update  # "dynamic" and "longrope" recompute the frequencies for long sequences
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # (B, T) positions -> (B, T, head_dim) cos/sin. Positions restart at 0 for each request the engines pack.
        freqs = position_ids[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos() * self.attention_scaling
        sin = emb.sin() * self.attention_scaling
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Rotates half the hidden dims of the input."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, unsqueeze_dim: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Applies rotary position embeddings to (B, heads, T, head_dim) query and key tensors."""
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


class AcmeLmMLP(nn.Module):
    def __init__(self, config: AcmeLmConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # vLLM fuses gate/up into one MergedColumnParallelLinear when the forward has exactly this shape.
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


def repeat_kv(hidden_states: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, kv_heads, T, head_dim) -> (B, kv_heads * n_rep, T, head_dim), as torch.repeat_interleave on dim 1."""
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, num_key_value_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Unpack[TransformersKwargs],
) -> tuple[torch.Tensor, torch.Tensor]:
    key_states = repeat_kv(key, module.num_key_value_groups)
    value_states = repeat_kv(value, module.num_key_value_groups)

    attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask

    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value_states)
    attn_output = attn_output.transpose(1, 2).contiguous()  # (B, T, heads, head_dim)
    return attn_output, attn_weights


class AcmeLmAttention(nn.Module):
    """Grouped-query attention. The engines replace only the attention function, never this module."""

    def __init__(self, config: AcmeLmConfig, layer_idx: int):
        super().__init__()
        self.config = config  # the engines read the (text) config from the attention module
        self.layer_idx = layer_idx  # one module per index 0..num_hidden_layers-1: the engines key their KV cache on it
        self.head_dim = config.head_dim
        self.num_key_value_groups = config.num_attention_heads // config.num_key_value_heads
        self.scaling = self.head_dim**-0.5  # an attribute: vLLM resolves `scaling=self.scaling` from the source
        self.attention_dropout = config.attention_dropout
        # vLLM serves the model as an encoder if any attention module says False.
        self.is_causal = True

        # Three separate Linear layers called once each on the same input: vLLM fuses them into one QKV projection.
        self.q_proj = nn.Linear(config.hidden_size, config.num_attention_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, config.num_key_value_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, config.num_key_value_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(config.num_attention_heads * self.head_dim, config.hidden_size, bias=False)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)

        query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)  # (B, heads, T, head_dim)
        key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)  # (B, kv_heads, T, head_dim)
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        cos, sin = position_embeddings
        query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)

        if cache is not None:
            key_states, value_states = cache.update(key_states, value_states, self.layer_idx)

        # The one dispatch through the attention interface. vLLM and SGLang register their paged attention here;
        # transformers switches eager/sdpa/flash/flex here (`set_attn_implementation` looks for `get_interface(`).
        # vLLM parses this source: keep exactly one call through this variable.
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query_states,
            key_states,
            value_states,
            attention_mask,
            dropout=0.0 if not self.training else self.attention_dropout,
            scaling=self.scaling,
            **kwargs,  # the engines' attention metadata rides in here
        )

        # `-1`, not heads * head_dim: under tensor parallelism each rank holds only its share of the heads.
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        attn_output = self.o_proj(attn_output)
        return attn_output, attn_weights


class AcmeLmDecoderLayer(GradientCheckpointingLayer):
    def __init__(self, config: AcmeLmConfig, layer_idx: int):
        super().__init__()
        self.self_attn = AcmeLmAttention(config=config, layer_idx=layer_idx)
        self.mlp = AcmeLmMLP(config)
        self.input_layernorm = AcmeLmRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = AcmeLmRMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        residual = hidden_states
        hidden_states = self.input_layernorm(hidden_states)
        hidden_states, _ = self.self_attn(
            hidden_states=hidden_states,
            position_embeddings=position_embeddings,
            attention_mask=attention_mask,
            # Both reach the attention function, as in transformers' own decoders: its flash attention finds the
            # sequences packed into one row (padding-free training) by where `position_ids` restart.
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            **kwargs,  # carried on to the attention call
        )
        hidden_states = residual + hidden_states

        residual = hidden_states
        hidden_states = self.post_attention_layernorm(hidden_states)
        hidden_states = self.mlp(hidden_states)
        return residual + hidden_states


@auto_docstring
class AcmeLmPreTrainedModel(PreTrainedModel):
    config: AcmeLmConfig
    base_model_prefix = "model"  # checkpoint keys are `model.*` (+ `lm_head.weight`): the engines load by these names
    supports_gradient_checkpointing = True
    _no_split_modules = ["AcmeLmDecoderLayer"]
    _skip_keys_device_placement = [CACHE_NAME]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    # The gate both engines check before running this model with their own attention.
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    # What `output_hidden_states` / `output_attentions` collect (transformers' `capture_outputs` hooks these classes).
    _can_record_outputs = {
        "hidden_states": AcmeLmDecoderLayer,
        "attentions": AcmeLmAttention,
    }


@auto_docstring(
    custom_intro="""
    The bare AcmeLm decoder (Llama-class decoder), outputting hidden states without a head: the model vLLM and SGLang
    build and serve with their own head.
    """
)
class AcmeLmModel(AcmeLmPreTrainedModel):
    # The base model: the only class vLLM and SGLang instantiate (`auto_map["AutoModel"]`).

    def __init__(self, config: AcmeLmConfig):
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.vocab_size = config.vocab_size

        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        # Exactly one ModuleList of layers: pipeline parallelism splits it (`base_model_pp_plan["layers"]`).
        self.layers = nn.ModuleList(
            [AcmeLmDecoderLayer(config, layer_idx) for layer_idx in range(config.num_hidden_layers)]
        )
        self.norm = AcmeLmRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = AcmeLmRotaryEmbedding(config=config)
        self.gradient_checkpointing = False

        self.post_init()

    @merge_with_config_defaults
    @capture_outputs  # `output_hidden_states` / `output_attentions`, and `return_dict=False` (the engines) -> tuple
    @auto_docstring
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPast:
        r"""
        cache (`Cache`, *optional*):
            The KV cache of earlier steps, updated in place (`DynamicCache` when `use_cache` and none is given).
        past_key_values (`Cache`, *optional*):
            The KV cache under its name before transformers 5.24, which `generate()` of those releases passes.

        Returns:
            [`~modeling_outputs.BaseModelOutputWithPast`], or a tuple with `return_dict=False` (how the engines call
            it): `last_hidden_state`, the cache when `use_cache`, and `hidden_states` / `attentions` when asked for.
        """
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")

        # vLLM may pass `inputs_embeds` instead of `input_ids` (e.g. multimodal or prompt embeddings).
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)

        cache = cache if cache is not None else past_key_values  # the name `generate()` uses before transformers 5.24
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)

        if position_ids is None:
            # Only when the caller gives none (plain transformers use). The engines always pass `position_ids`,
            # restarting at 0 for each packed request: never rebuild them when given.
            past_seen_tokens = cache.get_seq_length() if cache is not None else 0
            position_ids = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device) + past_seen_tokens
            position_ids = position_ids.unsqueeze(0)

        # The mask is built for the active attention implementation; an engine-registered one receives None and masks
        # by its own metadata.
        causal_mask = create_causal_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            **{CACHE_NAME: cache},
        )

        hidden_states = inputs_embeds
        position_embeddings = self.rotary_emb(hidden_states, position_ids=position_ids)

        for decoder_layer in self.layers[: self.config.num_hidden_layers]:
            hidden_states = decoder_layer(
                hidden_states,
                position_embeddings=position_embeddings,
                attention_mask=causal_mask,
                position_ids=position_ids,
                cache=cache,
                use_cache=use_cache,
                **kwargs,
            )

        hidden_states = self.norm(hidden_states)
        return BaseModelOutputWithPast(last_hidden_state=hidden_states, **{CACHE_NAME: cache})


@auto_docstring(
    custom_intro="""
    [`AcmeLmModel`] with a language modeling head, for transformers users (`generate()`, training). The engines never
    run this class: they add their own head to the base model.
    """
)
class AcmeLmForCausalLM(AcmeLmPreTrainedModel, GenerationMixin):
    # Base model + LM head, for transformers users. The engines use their own head and never run this class, so it
    # must hold nothing but `model` and `lm_head`.

    # v5 form: `lm_head.weight` is tied to the input embeddings when `config.tie_word_embeddings` is True.
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    _tp_plan = {"lm_head": "colwise_gather_output"}
    _pp_plan = {"lm_head": (["hidden_states"], ["logits"])}

    def __init__(self, config: AcmeLmConfig):
        super().__init__(config)
        self.model = AcmeLmModel(config)
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

        Returns:
            [`~modeling_outputs.CausalLMOutputWithPast`], or a tuple with `return_dict=False`: `logits`, `loss` when
            `labels` are given, the cache when `use_cache`, and `hidden_states` / `attentions` when asked for.
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
    "AcmeLmForCausalLM",
    "AcmeLmModel",
    "AcmeLmPreTrainedModel",
]
