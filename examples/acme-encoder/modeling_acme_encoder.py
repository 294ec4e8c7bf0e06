# Copyright The AcmeEncoder Authors. All rights reserved.
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

"""AcmeEncoder: a BERT-class bidirectional encoder for embeddings and sequence classification.

vLLM and SGLang serve it through their Transformers backend. How they use this file (read this before changing it):

- They import `AcmeEncoderModel` through `auto_map["AutoModel"]`, build it with `AutoModel.from_config(config)` on the
  meta device and call it as `model(input_ids=..., position_ids=..., use_cache=False, return_dict=False, **kwargs)`,
  every request of a batch packed into one row with its positions restarting at 0. Positions come from `position_ids`,
  token types are never passed (they default to 0 here), masking is done by the engine's attention function, and
  `**kwargs` carries the engine's attention metadata down to the attention call.
- `is_causal = False` on the attention modules is how both engines know this is an encoder: vLLM then uses its
  encoder-only attention, SGLang its non-causal attention. Without it they would run causal attention. (SGLang 0.5.23
  builds that attention as cross-attention and fails at the first request: nothing in this file can change that.)
- vLLM reads `AcmeEncoderSelfAttention.forward` with `ast`: it must make exactly one call through a local variable
  assigned from `ALL_ATTENTION_FUNCTIONS.get_interface(...)`, with `scaling=self.scaling`.
- Embeddings: the engines pool `last_hidden_state` themselves, vLLM as `modules.json` and `1_Pooling/config.json` say,
  SGLang as `config.pooling_type` and `config.normalize` say. The pooler of `AcmeEncoderModel` is never applied there.
- Classification: vLLM builds `AcmeEncoderForSequenceClassification` on the meta device, takes its `classifier` module
  and applies it to the pooled first token, shaped `(num_sequences, 1, hidden_size)`. So the whole computation after
  the encoder lives in `classifier`, which reads the first position of what it is given, and the encoder inside the
  classifier has no pooler (vLLM drops a base model's pooler when the classifier's is None).
"""

from collections.abc import Callable

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.conversion_mapping import register_checkpoint_conversion_mapping
from transformers.core_model_loading import WeightRenaming
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, auto_docstring, can_return_tuple
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .configuration_acme_encoder import AcmeEncoderConfig


class AcmeEncoderPoolerRenaming(WeightRenaming):
    """BERT's pooler under the other checkpoint's name, for loading only.

    The embedding model keeps the pooler as `pooler.dense`, the classifier as `classifier.dense` (the start of the one
    module vLLM applies after the encoder). Each class loads the other's checkpoint through this renaming, so a
    classifier fine-tuned from the embedding model starts from its pretrained pooler, and each saves its own names: the
    reverse of a plain renaming would save the other checkpoint's, which vLLM cannot load.
    """

    __slots__ = ()

    def rename_source_key(self, source_key: str) -> tuple[str, str | None]:
        # Registered for one class; transformers also applies it inside a larger model holding that class (the
        # classifier's encoder), whose own names stay.
        if self.scope_prefix is not None:
            return source_key, None
        return super().rename_source_key(source_key)

    def reverse_transform(self) -> WeightRenaming:
        return WeightRenaming(self._original_target_patterns, self._original_target_patterns)


register_checkpoint_conversion_mapping(
    "AcmeEncoderForSequenceClassification",
    [AcmeEncoderPoolerRenaming(r"^pooler\.dense\.", "classifier.dense.")],
    overwrite=True,  # the module is imported again for every copy of the repo transformers loads
)
register_checkpoint_conversion_mapping(
    "AcmeEncoderModel",
    [AcmeEncoderPoolerRenaming(r"^classifier\.dense\.", "pooler.dense.")],
    overwrite=True,
)


class AcmeEncoderEmbeddings(nn.Module):
    """Word, position and token type embeddings, summed and normalised."""

    def __init__(self, config: AcmeEncoderConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        if position_ids is None:
            position_ids = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device).unsqueeze(0)
        embeddings = inputs_embeds
        # The engines never pass token types: every token is of type 0 then, as in a single-segment input.
        if token_type_ids is None:
            token_type_ids = torch.zeros(inputs_embeds.shape[:-1], dtype=torch.long, device=inputs_embeds.device)
        embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        embeddings = self.LayerNorm(embeddings)
        embeddings = self.dropout(embeddings)
        return embeddings


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
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask

    attn_weights = nn.functional.softmax(attn_weights, dim=-1)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value)
    attn_output = attn_output.transpose(1, 2).contiguous()
    return attn_output, attn_weights


class AcmeEncoderSelfAttention(nn.Module):
    """Multi-headed bidirectional self-attention."""

    def __init__(self, config: AcmeEncoderConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx  # the engines key their attention instances by it
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.scaling = self.attention_head_size**-0.5
        self.attention_dropout = config.attention_probs_dropout_prob
        # Every token sees every other: this is how both engines recognise an encoder.
        self.is_causal = False

        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.attention_head_size)

        query_states = self.query(hidden_states).view(hidden_shape).transpose(1, 2)
        key_states = self.key(hidden_states).view(hidden_shape).transpose(1, 2)
        value_states = self.value(hidden_states).view(hidden_shape).transpose(1, 2)

        # vLLM and SGLang register their own attention under `config._attn_implementation`: this one call is what
        # they replace, and `**kwargs` carries their attention metadata to it.
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
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        return attn_output, attn_weights


class AcmeEncoderSelfOutput(nn.Module):
    def __init__(self, config: AcmeEncoderConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dense(hidden_states)
        hidden_states = self.dropout(hidden_states)
        hidden_states = self.LayerNorm(hidden_states + input_tensor)
        return hidden_states


class AcmeEncoderAttention(nn.Module):
    def __init__(self, config: AcmeEncoderConfig, layer_idx: int):
        super().__init__()
        self.self = AcmeEncoderSelfAttention(config, layer_idx)
        self.output = AcmeEncoderSelfOutput(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        attention_output, _ = self.self(hidden_states, attention_mask, **kwargs)
        return self.output(attention_output, hidden_states)


class AcmeEncoderIntermediate(nn.Module):
    def __init__(self, config: AcmeEncoderConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class AcmeEncoderOutput(nn.Module):
    def __init__(self, config: AcmeEncoderConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dense(hidden_states)
        hidden_states = self.dropout(hidden_states)
        hidden_states = self.LayerNorm(hidden_states + input_tensor)
        return hidden_states


class AcmeEncoderLayer(GradientCheckpointingLayer):
    def __init__(self, config: AcmeEncoderConfig, layer_idx: int):
        super().__init__()
        self.attention = AcmeEncoderAttention(config, layer_idx)
        self.intermediate = AcmeEncoderIntermediate(config)
        self.output = AcmeEncoderOutput(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        attention_output = self.attention(hidden_states, attention_mask, **kwargs)
        intermediate_output = self.intermediate(attention_output)
        return self.output(intermediate_output, attention_output)


class AcmeEncoderEncoder(nn.Module):
    def __init__(self, config: AcmeEncoderConfig):
        super().__init__()
        self.layer = nn.ModuleList(
            [AcmeEncoderLayer(config, layer_idx) for layer_idx in range(config.num_hidden_layers)]
        )

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        for layer_module in self.layer:
            hidden_states = layer_module(hidden_states, attention_mask, **kwargs)
        return hidden_states


class AcmeEncoderPooler(nn.Module):
    """BERT's pooler: a dense layer and tanh on the first token. The engines never apply it."""

    def __init__(self, config: AcmeEncoderConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden_states[:, 0]))


@auto_docstring
class AcmeEncoderPreTrainedModel(PreTrainedModel):
    config: AcmeEncoderConfig
    base_model_prefix = "model"  # the classifier's checkpoint keys are `model.*` and `classifier.*`
    supports_gradient_checkpointing = True
    _no_split_modules = ["AcmeEncoderEmbeddings", "AcmeEncoderLayer"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    # The gate both engines check before running this model with their own attention.
    _supports_attention_backend = True
    # What `output_hidden_states` / `output_attentions` collect (transformers' `capture_outputs` hooks these classes).
    _can_record_outputs = {
        "hidden_states": AcmeEncoderLayer,
        "attentions": AcmeEncoderSelfAttention,
    }


@auto_docstring(
    custom_intro="""
    The bare AcmeEncoder encoder (BERT-class bidirectional encoder, served as an embedding model), outputting hidden
    states and BERT's pooler output: the embedding model vLLM and SGLang build and pool themselves.
    """
)
class AcmeEncoderModel(AcmeEncoderPreTrainedModel):
    def __init__(self, config: AcmeEncoderConfig, add_pooling_layer: bool = True):
        r"""
        add_pooling_layer (`bool`, *optional*, defaults to `True`):
            Whether to build BERT's pooler (`pooler_output`). The classifier builds the encoder without it.
        """
        super().__init__(config)
        self.embeddings = AcmeEncoderEmbeddings(config)
        self.encoder = AcmeEncoderEncoder(config)
        self.pooler = AcmeEncoderPooler(config) if add_pooling_layer else None

        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    @merge_with_config_defaults
    @capture_outputs
    @auto_docstring
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling:
        r"""
        Returns:
            [`~modeling_outputs.BaseModelOutputWithPooling`], or a tuple with `return_dict=False` (how the engines call
            it): `last_hidden_state`, BERT's `pooler_output` (the dense and tanh of the first token; None without the
            pooler), and `hidden_states` / `attentions` when asked for.
        """
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")

        embedding_output = self.embeddings(
            input_ids=input_ids,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
        )
        # Padding only: every token attends to every other token of its sequence.
        attention_mask = create_bidirectional_mask(
            config=self.config, inputs_embeds=embedding_output, attention_mask=attention_mask
        )
        sequence_output = self.encoder(embedding_output, attention_mask, position_ids=position_ids, **kwargs)
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None

        return BaseModelOutputWithPooling(last_hidden_state=sequence_output, pooler_output=pooled_output)


class AcmeEncoderClassificationHead(nn.Module):
    """Everything the classifier computes after the encoder: BERT's pooler (dense and tanh on the first token),
    dropout, and the projection to the labels. vLLM applies exactly this module to the pooled first token."""

    def __init__(self, config: AcmeEncoderConfig):
        super().__init__()
        classifier_dropout = (
            config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        )
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()
        self.dropout = nn.Dropout(classifier_dropout)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        # The first token of each sequence: transformers passes the whole `last_hidden_state`, vLLM its pooled first
        # token as a sequence of length 1.
        pooled_output = self.activation(self.dense(hidden_states[:, 0]))
        return self.out_proj(self.dropout(pooled_output))


@auto_docstring(
    custom_intro="""
    [`AcmeEncoderModel`] with a sequence classification (or regression) head on its first token: BERT's pooler and the
    projection to the labels, together in `classifier`, the one module vLLM applies after the encoder.
    """
)
class AcmeEncoderForSequenceClassification(AcmeEncoderPreTrainedModel):
    def __init__(self, config: AcmeEncoderConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        # No pooler here: its computation is the start of `classifier`, the one module vLLM applies after the encoder.
        self.model = AcmeEncoderModel(config, add_pooling_layer=False)
        self.classifier = AcmeEncoderClassificationHead(config)

        self.post_init()

    @can_return_tuple
    @auto_docstring
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SequenceClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Labels for computing the sequence classification/regression loss. Indices should be in
            `[0, ..., config.num_labels - 1]`. If `config.num_labels == 1` a regression loss is computed (mean-square
            loss); if `config.num_labels > 1` a classification loss is computed (cross-entropy).

        Returns:
            [`~modeling_outputs.SequenceClassifierOutput`], or a tuple with `return_dict=False`: `logits`, `loss` when
            `labels` are given, and `hidden_states` / `attentions` when asked for.
        """
        outputs = self.model(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            **kwargs,
        )
        logits = self.classifier(outputs.last_hidden_state)

        loss = None
        if labels is not None:
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)

        return SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


__all__ = [
    "AcmeEncoderForSequenceClassification",
    "AcmeEncoderModel",
    "AcmeEncoderPreTrainedModel",
]
