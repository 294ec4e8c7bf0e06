# Copyright The AcmeVl Authors. All rights reserved.
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

"""AcmeVl configuration: a vision-language model made of a text decoder, a ViT vision tower and a projector between
them."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.modeling_rope_utils import RopeParameters
from transformers.utils import auto_docstring


# transformers names its own models in their docs from their folder: Hub code gives its intro itself.
@auto_docstring(
    checkpoint="your-org/acme-vl",
    custom_intro="""
    Configuration of a [`AcmeVlTextModel`]: a Llama-class decoder (RMSNorm, RoPE, grouped-query attention, gated SiLU
    MLP).

    Every field vLLM and SGLang read is declared here with its value: transformers v5 no longer defaults
    `pad_token_id`, `bos_token_id`, `eos_token_id`, `tie_word_embeddings` or `head_dim` for you.
    """,
)
@strict
class AcmeVlTextConfig(PreTrainedConfig):
    r"""
    ```python
    >>> from transformers import AutoConfig

    >>> config = AutoConfig.from_pretrained("your-org/acme-vl", trust_remote_code=True)
    ```
    """

    model_type = "acme_vl_text"
    base_config_key = "text_config"  # `from_pretrained` on the composite checkpoint reads this part of it
    # The RoPE base: `rope_parameters` without a `rope_theta` get this one.
    default_theta = 10000.0
    # Tensor-parallel plan, keys relative to the base model. transformers applies it with `tp_plan="auto"`; vLLM and
    # SGLang read it to shard the Linear layers: q/k/v and gate/up split their outputs (colwise), o and down split
    # their inputs and all-reduce (rowwise).
    base_model_tp_plan = {
        "layers.*.self_attn.q_proj": "colwise",
        "layers.*.self_attn.k_proj": "colwise",
        "layers.*.self_attn.v_proj": "colwise",
        "layers.*.self_attn.o_proj": "rowwise",
        "layers.*.mlp.gate_proj": "colwise",
        "layers.*.mlp.up_proj": "colwise",
        "layers.*.mlp.down_proj": "rowwise",
    }
    # Pipeline-parallel plan: which tensors enter and leave each top-level module of the base model.
    base_model_pp_plan = {
        "embed_tokens": (["input_ids"], ["inputs_embeds"]),
        "layers": (["hidden_states", "attention_mask"], ["hidden_states"]),
        "norm": (["hidden_states"], ["hidden_states"]),
    }

    vocab_size: int = 1024
    hidden_size: int = 128
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 64
    hidden_act: str = "silu"
    max_position_embeddings: int = 2048
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-06
    use_cache: bool = True
    # v5 form: the engines read `rope_parameters` (type, theta and scaling factors), never a bare `rope_theta`.
    rope_parameters: RopeParameters | dict | None = None
    attention_dropout: float = 0.0
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    tie_word_embeddings: bool = True

    def validate_architecture(self):
        """Part of `@strict` validation: the attention shapes must be buildable. `head_dim` is explicit, so the hidden
        size need not be a multiple of the heads (q_proj maps it to `num_attention_heads * head_dim`)."""
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads {self.num_attention_heads} is not divisible by num_key_value_heads"
                f" {self.num_key_value_heads}"
            )


@auto_docstring(
    checkpoint="your-org/acme-vl",
    custom_intro="""
    Configuration of a [`AcmeVlVisionModel`]: a ViT that cuts an `image_size` x `image_size` image into `patch_size`
    patches and encodes them with bidirectional attention. Each patch becomes one image token.
    """,
)
@strict
class AcmeVlVisionConfig(PreTrainedConfig):
    r"""
    num_channels (`int`, *optional*, defaults to 3):
        Colour channels of the input images.
    image_size (`int`, *optional*, defaults to 64):
        Side, in pixels, of the square image the tower sees: the image processor resizes every image to it.
    patch_size (`int`, *optional*, defaults to 16):
        Side, in pixels, of a patch: one image token per patch.
    """

    model_type = "acme_vl_vision"
    base_config_key = "vision_config"
    # Tensor-parallel plan of the vision tower, keys relative to it. The composite model prefixes them with
    # `vision_tower.`, and the engines shard these Linear layers like the decoder's.
    base_model_tp_plan = {
        "layers.*.self_attn.q_proj": "colwise",
        "layers.*.self_attn.k_proj": "colwise",
        "layers.*.self_attn.v_proj": "colwise",
        "layers.*.self_attn.out_proj": "rowwise",
        "layers.*.mlp.fc1": "colwise",
        "layers.*.mlp.fc2": "rowwise",
    }

    hidden_size: int = 64
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    num_channels: int = 3
    image_size: int = 64
    patch_size: int = 16
    hidden_act: str = "gelu_pytorch_tanh"
    layer_norm_eps: float = 1e-6
    attention_dropout: float = 0.0
    initializer_range: float = 0.02

    def validate_architecture(self):
        """Part of `@strict` validation: whole patches, whole heads."""
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not divisible by patch_size {self.patch_size}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}"
            )

    @property
    def num_patches(self) -> int:
        """Patches per image, which is also the number of image tokens per image."""
        return (self.image_size // self.patch_size) ** 2


@auto_docstring(
    checkpoint="your-org/acme-vl",
    custom_intro="""
    Configuration of a [`AcmeVlForConditionalGeneration`]: the decoder's (`text_config`), the vision tower's
    (`vision_config`) and the image placeholder. vLLM and SGLang read the decoder's fields from `text_config` (through
    `get_text_config()`), and a nested config is how vLLM tells a multimodal model from a text-only one.
    """,
)
@strict
class AcmeVlConfig(PreTrainedConfig):
    r"""
    text_config (`dict` or [`AcmeVlTextConfig`], *optional*):
        The text decoder's configuration (its defaults when not given).
    vision_config (`dict` or [`AcmeVlVisionConfig`], *optional*):
        The vision tower's configuration (its defaults when not given).
    image_token_id (`int`, *optional*, defaults to 4):
        The placeholder token the processor repeats once per image token; the model writes image features there.

    ```python
    >>> from transformers import AutoConfig

    >>> config = AutoConfig.from_pretrained("your-org/acme-vl", trust_remote_code=True)
    >>> config.get_text_config() is config.text_config
    True
    ```
    """

    model_type = "acme_vl"
    sub_configs = {
        "text_config": AcmeVlTextConfig,
        "vision_config": AcmeVlVisionConfig,
    }

    text_config: dict | AcmeVlTextConfig | None = None
    vision_config: dict | AcmeVlVisionConfig | None = None
    image_token_id: int = 4
    projector_hidden_act: str = "gelu"
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs):
        if isinstance(self.text_config, dict):
            self.text_config = AcmeVlTextConfig(**self.text_config)
        elif self.text_config is None:
            self.text_config = AcmeVlTextConfig()
        if isinstance(self.vision_config, dict):
            self.vision_config = AcmeVlVisionConfig(**self.vision_config)
        elif self.vision_config is None:
            self.vision_config = AcmeVlVisionConfig()
        # Kept equal to the decoder's: vLLM reads `tie_word_embeddings` from either level.
        self.text_config.tie_word_embeddings = self.tie_word_embeddings
        super().__post_init__(**kwargs)


__all__ = ["AcmeVlConfig", "AcmeVlTextConfig", "AcmeVlVisionConfig"]
