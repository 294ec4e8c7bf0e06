{%- include "common/license_header.py" %}
"""{{ cookiecutter.class_prefix }}: a vision-language model that vLLM and SGLang serve through their Transformers backend.

How the engines use this file (read this before changing it):

- They import `{{ cookiecutter.base_model_class }}` through `auto_map["AutoModel"]` and build it with
  `AutoModel.from_config(config)` on the meta device. `{{ cookiecutter.architecture }}` never runs inside an
  engine: it adds its own LM head. All customisation therefore lives in the base model.
- vLLM encodes images itself: it calls `get_image_features(pixel_values)`, splits `pooler_output` into one entry per
  image and writes them into `inputs_embeds` at the placeholder tokens, then calls the base model with
  `inputs_embeds`. SGLang instead passes `pixel_values` to the base model's `forward`, which merges them itself.
- The decoder is called with every request of a batch packed into one row, `position_ids` given, and `**kwargs`
  carrying the engine's attention metadata down to `{{ cookiecutter.class_prefix }}Attention`, whose `forward` vLLM reads
  with `ast` (exactly one call through `ALL_ATTENTION_FUNCTIONS.get_interface(...)`, `scaling=self.scaling`).
- vLLM routes to its paged attention only the modules whose `self.config` is the text config; the vision tower's
  attention keeps the transformers implementation (sdpa or eager).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, BaseModelOutputWithPooling, CausalLMOutputWithPast
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS, dynamic_rope_update
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, auto_docstring, can_return_tuple, torch_compilable_check
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .{{ cookiecutter.configuration_module }} import (
    {{ cookiecutter.config_class }},
    {{ cookiecutter.text_config_class }},
    {{ cookiecutter.vision_config_class }},
)


{% include "decoder/cache_name.py" %}


{% include "decoder/layers.py" %}


@auto_docstring(
    custom_intro="""
    The outputs of [`{{ cookiecutter.base_model_class }}`]: the text decoder's, and the image features written at the placeholder
    tokens.
    """
)
@dataclass
class {{ cookiecutter.class_prefix }}ModelOutputWithPast(BaseModelOutputWithPast):
    r"""
    image_hidden_states (`torch.FloatTensor` of shape `(num_images, {{ cookiecutter.num_image_tokens }}, hidden_size)`, *optional*):
        The projected image features, one row per image token, as the model wrote them at the placeholder tokens
        (`None` without images).
    """

    image_hidden_states: torch.FloatTensor | None = None


@auto_docstring(
    custom_intro="""
    The outputs of [`{{ cookiecutter.architecture }}`]: the language model's, and the image features written at the
    placeholder tokens.
    """
)
@dataclass
class {{ cookiecutter.class_prefix }}CausalLMOutputWithPast(CausalLMOutputWithPast):
    r"""
    image_hidden_states (`torch.FloatTensor` of shape `(num_images, {{ cookiecutter.num_image_tokens }}, hidden_size)`, *optional*):
        The projected image features, one row per image token, as the model wrote them at the placeholder tokens
        (`None` without images).
    """

    image_hidden_states: torch.FloatTensor | None = None


class {{ cookiecutter.class_prefix }}VisionEmbeddings(nn.Module):
    """Non-overlapping patches -> one embedding per patch, plus a learned position embedding."""

    def __init__(self, config: {{ cookiecutter.vision_config_class }}):
        super().__init__()
        self.patch_embedding = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.position_embedding = nn.Embedding(config.num_patches, config.hidden_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # (N, C, H, W) -> (N, hidden, H/p, W/p) -> (N, patches, hidden)
        patches = self.patch_embedding(pixel_values.to(self.patch_embedding.weight.dtype))
        embeddings = patches.flatten(2).transpose(1, 2)
        return embeddings + self.position_embedding.weight.unsqueeze(0)


class {{ cookiecutter.class_prefix }}VisionAttention(nn.Module):
    """Bidirectional multi-head attention over the patches of one image."""

    def __init__(self, config: {{ cookiecutter.vision_config_class }}):
        super().__init__()
        # The vision config, never the text config: vLLM only hands modules holding the text config to its paged
        # attention, so this one keeps transformers' sdpa/eager attention inside the engines too.
        self.config = config
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.num_key_value_groups = 1  # read by eager_attention_forward
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        self.is_causal = False  # every patch sees every other patch of its image

        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)

        query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)  # (N, heads, patches, head_dim)
        key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        # Dispatched through the interface like the decoder's, so `attn_implementation` switches it too.
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
            **kwargs,
        )

        # `-1`: under tensor parallelism each rank holds only its share of the heads.
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        return self.out_proj(attn_output), attn_weights


class {{ cookiecutter.class_prefix }}VisionMLP(nn.Module):
    def __init__(self, config: {{ cookiecutter.vision_config_class }}):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act_fn(self.fc1(hidden_states)))


class {{ cookiecutter.class_prefix }}VisionEncoderLayer(GradientCheckpointingLayer):
    def __init__(self, config: {{ cookiecutter.vision_config_class }}):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = {{ cookiecutter.class_prefix }}VisionAttention(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = {{ cookiecutter.class_prefix }}VisionMLP(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        residual = hidden_states
        hidden_states, _ = self.self_attn(self.layer_norm1(hidden_states), attention_mask=attention_mask, **kwargs)
        hidden_states = residual + hidden_states
        return hidden_states + self.mlp(self.layer_norm2(hidden_states))


class {{ cookiecutter.class_prefix }}MultiModalProjector(nn.Module):
    """Vision hidden size -> text hidden size: each patch becomes one token embedding of the decoder."""

    def __init__(self, config: {{ cookiecutter.config_class }}):
        super().__init__()
        self.linear_1 = nn.Linear(config.vision_config.hidden_size, config.text_config.hidden_size)
        self.act = ACT2FN[config.projector_hidden_act]
        self.linear_2 = nn.Linear(config.text_config.hidden_size, config.text_config.hidden_size)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(image_features)))


@auto_docstring
class {{ cookiecutter.class_prefix }}PreTrainedModel(PreTrainedModel):
    config: {{ cookiecutter.config_class }}
    base_model_prefix = "model"  # checkpoint keys are `model.*` (+ `lm_head.weight`): the engines load by these names
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = [
        "{{ cookiecutter.class_prefix }}DecoderLayer",
        "{{ cookiecutter.class_prefix }}VisionEncoderLayer",
    ]
    _skip_keys_device_placement = [CACHE_NAME]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    # The gate both engines check before running this model with their own attention.
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    # What `output_hidden_states` / `output_attentions` collect in the decoder (transformers' `capture_outputs` hooks
    # these classes); the vision tower declares its own.
    _can_record_outputs = {
        "hidden_states": {{ cookiecutter.class_prefix }}DecoderLayer,
        "attentions": {{ cookiecutter.class_prefix }}Attention,
    }


{% include "decoder/model.py" %}


@auto_docstring(
    custom_intro="""
    The vision tower of [`{{ cookiecutter.architecture }}`]: a ViT that turns each image into one feature per
    {{ cookiecutter.patch_size }}x{{ cookiecutter.patch_size }} patch ({{ cookiecutter.num_image_tokens }} per image).
    """
)
class {{ cookiecutter.vision_model_class }}({{ cookiecutter.class_prefix }}PreTrainedModel):
    # The vision tower: (N, C, H, W) pixels -> (N, patches, vision hidden) features.
    config: {{ cookiecutter.vision_config_class }}
    main_input_name = "pixel_values"
    _can_record_outputs = {
        "hidden_states": {{ cookiecutter.class_prefix }}VisionEncoderLayer,
        "attentions": {{ cookiecutter.class_prefix }}VisionAttention,
    }

    def __init__(self, config: {{ cookiecutter.vision_config_class }}):
        super().__init__(config)
        self.embeddings = {{ cookiecutter.class_prefix }}VisionEmbeddings(config)
        self.layers = nn.ModuleList(
            [{{ cookiecutter.class_prefix }}VisionEncoderLayer(config) for _ in range(config.num_hidden_layers)]
        )
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    @capture_outputs(tie_last_hidden_states=False)  # the last hidden state is the one before `post_layernorm`
    @auto_docstring
    def forward(self, pixel_values: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> BaseModelOutputWithPooling:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(num_images, 3, {{ cookiecutter.image_size }}, {{ cookiecutter.image_size }})`):
            The images as [`{{ cookiecutter.processor_class }}`] returns them: one row per image, resized to {{ cookiecutter.image_size }}x{{ cookiecutter.image_size }}.

        Returns:
            [`~modeling_outputs.BaseModelOutputWithPooling`]: `last_hidden_state` (after the final LayerNorm, one row
            per patch), and `hidden_states` / `attentions` when asked for.
        """
        hidden_states = self.embeddings(pixel_values)
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask=None, **kwargs)  # one image per row: nothing to mask
        return BaseModelOutputWithPooling(last_hidden_state=self.post_layernorm(hidden_states))


@auto_docstring(
    custom_intro="""
    The vision tower, the projector and the text decoder of [`{{ cookiecutter.architecture }}`], without a language
    modeling head: the model vLLM and SGLang build and serve with their own head.
    """
)
class {{ cookiecutter.base_model_class }}({{ cookiecutter.class_prefix }}PreTrainedModel):
    # The base model: the only class vLLM and SGLang instantiate (`auto_map["AutoModel"]`). The attribute names are
    # part of the contract: transformers' `get_decoder()` and vLLM find the decoder as `language_model` (vLLM applies
    # LoRA and the pipeline split there), `get_encoder(modality="image")` finds `vision_tower`.

    def __init__(self, config: {{ cookiecutter.config_class }}):
        super().__init__(config)
        self.vision_tower = {{ cookiecutter.vision_model_class }}(config.vision_config)
        self.multi_modal_projector = {{ cookiecutter.class_prefix }}MultiModalProjector(config)
        self.language_model = {{ cookiecutter.text_model_class }}(config.text_config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        # The text embeddings: vLLM embeds the text tokens with them before writing the image features in.
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    @can_return_tuple
    @auto_docstring
    def get_image_features(
        self, pixel_values: torch.FloatTensor, **kwargs: Unpack[TransformersKwargs]
    ) -> BaseModelOutputWithPooling:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(num_images, 3, {{ cookiecutter.image_size }}, {{ cookiecutter.image_size }})`):
            The images as [`{{ cookiecutter.processor_class }}`] returns them: one row per image, resized to {{ cookiecutter.image_size }}x{{ cookiecutter.image_size }}.

        Returns:
            [`~modeling_outputs.BaseModelOutputWithPooling`]: the vision tower's outputs, with `pooler_output` holding
            one `(patches, text hidden size)` tensor per image, the projected features of its placeholder tokens.
        """
        # vLLM takes the rows of each `pooler_output` tensor as the embeddings of that image's placeholder tokens.
        image_outputs = self.vision_tower(pixel_values, **kwargs)
        image_features = self.multi_modal_projector(image_outputs.last_hidden_state)  # (N, patches, text hidden)
        image_outputs.pooler_output = list(image_features)
        return image_outputs

    def get_placeholder_mask(
        self, input_ids: torch.LongTensor | None, inputs_embeds: torch.Tensor, image_features: torch.Tensor
    ) -> torch.Tensor:
        """(B, T) True where an image token sits: by id, or by its embedding when only `inputs_embeds` is given. There
        must be one per row of `image_features` (num_images, tokens per image, hidden)."""
        if input_ids is not None:
            image_mask = input_ids == self.config.image_token_id
        else:
            image_token_embedding = self.get_input_embeddings()(
                torch.full((), self.config.image_token_id, dtype=torch.long, device=inputs_embeds.device)
            )
            image_mask = (inputs_embeds == image_token_embedding).all(-1)
        n_image_tokens, n_image_features = image_mask.sum(), image_features.shape[0] * image_features.shape[1]
        # A check `torch.compile` can trace (`int(n_image_tokens)` would read it back to the host: a graph break).
        torch_compilable_check(
            n_image_tokens == n_image_features,
            lambda: f"Image features and image tokens do not match: {int(n_image_tokens)} image tokens in the text,"
            f" {n_image_features} image feature rows",
        )
        return image_mask

    @can_return_tuple  # the engines pass `return_dict=False` and take element 0
    @auto_docstring
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> {{ cookiecutter.class_prefix }}ModelOutputWithPast:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(num_images, 3, {{ cookiecutter.image_size }}, {{ cookiecutter.image_size }})`, *optional*):
            The images as [`{{ cookiecutter.processor_class }}`] returns them: one row per image, resized to {{ cookiecutter.image_size }}x{{ cookiecutter.image_size }}. SGLang passes them here; vLLM writes the image features into `inputs_embeds` itself.
        cache (`Cache`, *optional*):
            The KV cache of earlier steps, updated in place (`DynamicCache` when `use_cache` and none is given).
        past_key_values (`Cache`, *optional*):
            The KV cache under its name before transformers 5.24, which `generate()` of those releases passes.

        Returns:
            [`{{ cookiecutter.class_prefix }}ModelOutputWithPast`], or a tuple with `return_dict=False` (how the engines call it): the
            text decoder's `last_hidden_state`, the cache when `use_cache`, `image_hidden_states` when images are
            given, and `hidden_states` / `attentions` when asked for.
        """
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        image_hidden_states = None
        if pixel_values is not None:
            # SGLang's path (and transformers'): merge the image features here. The engine's attention metadata in
            # `kwargs` belongs to the decoder, so the vision tower does not get it.
            image_hidden_states = torch.stack(self.get_image_features(pixel_values).pooler_output)
            image_hidden_states = image_hidden_states.to(inputs_embeds.device, inputs_embeds.dtype)
            image_mask = self.get_placeholder_mask(input_ids, inputs_embeds, image_hidden_states)
            inputs_embeds = inputs_embeds.masked_scatter(image_mask.unsqueeze(-1), image_hidden_states)

        outputs: BaseModelOutputWithPast = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache if cache is not None else past_key_values,  # the name `generate()` uses before 5.24
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,  # carried on to the attention call
        )
        return {{ cookiecutter.class_prefix }}ModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            image_hidden_states=image_hidden_states,
            **{CACHE_NAME: getattr(outputs, CACHE_NAME)},
        )


@auto_docstring(
    custom_intro="""
    [`{{ cookiecutter.base_model_class }}`] with a language modeling head: text generation from text and images, for
    transformers users (`generate()`, training). The engines never run this class: they add their own head to the base
    model.
    """
)
class {{ cookiecutter.architecture }}({{ cookiecutter.class_prefix }}PreTrainedModel, GenerationMixin):
    # Base model + LM head, for transformers users. The engines use their own head and never run this class, so it
    # must hold nothing but `model` and `lm_head`.

    # v5 form: `lm_head.weight` is tied to the text embeddings when `config.tie_word_embeddings` is True.
    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}
    _tp_plan = {"lm_head": "colwise_gather_output"}
    _pp_plan = {"lm_head": (["hidden_states"], ["logits"])}

    def __init__(self, config: {{ cookiecutter.config_class }}):
        super().__init__(config)
        self.model = {{ cookiecutter.base_model_class }}(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    @auto_docstring
    def get_image_features(
        self, pixel_values: torch.FloatTensor, **kwargs: Unpack[TransformersKwargs]
    ) -> BaseModelOutputWithPooling:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(num_images, 3, {{ cookiecutter.image_size }}, {{ cookiecutter.image_size }})`):
            The images as [`{{ cookiecutter.processor_class }}`] returns them: one row per image, resized to {{ cookiecutter.image_size }}x{{ cookiecutter.image_size }}.

        Returns:
            [`~modeling_outputs.BaseModelOutputWithPooling`]: the base model's [`{{ cookiecutter.base_model_class }}.get_image_features`].
        """
        return self.model.get_image_features(pixel_values, **kwargs)

    def prepare_inputs_for_generation(self, *args, pixel_values=None, is_first_iteration=False, **kwargs):
        model_inputs = super().prepare_inputs_for_generation(*args, is_first_iteration=is_first_iteration, **kwargs)
        # Pixels only on the first step: later steps read the image from the KV cache.
        if is_first_iteration or not kwargs.get("use_cache", True):
            model_inputs["pixel_values"] = pixel_values
        return model_inputs

    @can_return_tuple
    @auto_docstring
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        past_key_values: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> {{ cookiecutter.class_prefix }}CausalLMOutputWithPast:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(num_images, 3, {{ cookiecutter.image_size }}, {{ cookiecutter.image_size }})`, *optional*):
            The images as [`{{ cookiecutter.processor_class }}`] returns them: one row per image, resized to {{ cookiecutter.image_size }}x{{ cookiecutter.image_size }}. `generate()` passes them on the first step only.
        cache (`Cache`, *optional*):
            The KV cache of earlier steps, updated in place (`DynamicCache` when `use_cache` and none is given).
        past_key_values (`Cache`, *optional*):
            The KV cache under its name before transformers 5.24, which `generate()` of those releases passes.

        Returns:
            [`{{ cookiecutter.class_prefix }}CausalLMOutputWithPast`], or a tuple with `return_dict=False`: `logits`, `loss` when
            `labels` are given, the cache when `use_cache`, `image_hidden_states` when images are given, and
            `hidden_states` / `attentions` when asked for.
        """
        outputs: {{ cookiecutter.class_prefix }}ModelOutputWithPast = self.model(
            input_ids=input_ids,
            pixel_values=pixel_values,
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
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size, **kwargs
            )

        return {{ cookiecutter.class_prefix }}CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            image_hidden_states=outputs.image_hidden_states,
            **{CACHE_NAME: getattr(outputs, CACHE_NAME)},
        )


__all__ = [
    "{{ cookiecutter.architecture }}",
    "{{ cookiecutter.base_model_class }}",
    "{{ cookiecutter.class_prefix }}PreTrainedModel",
    "{{ cookiecutter.text_model_class }}",
    "{{ cookiecutter.vision_model_class }}",
]
