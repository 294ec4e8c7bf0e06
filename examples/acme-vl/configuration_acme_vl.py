"""AcmeVl configuration: a vision-language model made of a text decoder, a ViT vision tower and a
projector between them."""

from typing import ClassVar

from transformers import PreTrainedConfig


class AcmeVlTextConfig(PreTrainedConfig):
    r"""
    Configuration of a [`AcmeVlTextModel`]: a Llama-class decoder (RMSNorm, RoPE, grouped-query
    attention, gated SiLU MLP).

    Every field vLLM and SGLang read is set explicitly: transformers v5 no longer defaults `pad_token_id`,
    `bos_token_id`, `eos_token_id`, `tie_word_embeddings` or `head_dim` for you.

    ```python
    >>> from transformers import AutoConfig

    >>> config = AutoConfig.from_pretrained("path/to/acme-vl", trust_remote_code=True)
    ```
    """

    model_type = "acme_vl_text"
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["past_key_values"]

    # Tensor-parallel plan, keys relative to the base model. transformers applies it with `tp_plan="auto"`;
    # vLLM and SGLang read it to shard the Linear layers: q/k/v and gate/up split their outputs (colwise),
    # o and down split their inputs and all-reduce (rowwise).
    base_model_tp_plan: ClassVar[dict[str, str]] = {
        "layers.*.self_attn.q_proj": "colwise",
        "layers.*.self_attn.k_proj": "colwise",
        "layers.*.self_attn.v_proj": "colwise",
        "layers.*.self_attn.o_proj": "rowwise",
        "layers.*.mlp.gate_proj": "colwise",
        "layers.*.mlp.up_proj": "colwise",
        "layers.*.mlp.down_proj": "rowwise",
    }
    # Pipeline-parallel plan: which tensors enter and leave each top-level module of the base model.
    base_model_pp_plan: ClassVar[dict[str, tuple[list[str], list[str]]]] = {
        "embed_tokens": (["input_ids"], ["inputs_embeds"]),
        "layers": (["hidden_states", "attention_mask"], ["hidden_states"]),
        "norm": (["hidden_states"], ["hidden_states"]),
    }

    def __init__(
        self,
        vocab_size: int = 1024,
        hidden_size: int = 128,
        intermediate_size: int = 256,
        num_hidden_layers: int = 2,
        num_attention_heads: int = 2,
        num_key_value_heads: int = 1,
        head_dim: int = 64,
        hidden_act: str = "silu",
        max_position_embeddings: int = 2048,
        initializer_range: float = 0.02,
        rms_norm_eps: float = 1e-06,
        use_cache: bool = True,
        rope_parameters: dict | None = None,
        attention_dropout: float = 0.0,
        pad_token_id: int | None = 0,
        bos_token_id: int | None = 1,
        eos_token_id: int | list[int] | None = 2,
        tie_word_embeddings: bool = True,
        **kwargs,
    ):
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_attention_heads}"
            )
        if num_attention_heads % num_key_value_heads:
            raise ValueError(
                f"num_attention_heads {num_attention_heads} is not divisible by num_key_value_heads {num_key_value_heads}"
            )
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.head_dim = head_dim
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.rms_norm_eps = rms_norm_eps
        self.use_cache = use_cache
        self.attention_dropout = attention_dropout
        # v5 form: the engines build their rotary embedding from `rope_parameters`, not from a bare `rope_theta`.
        if rope_parameters is None:
            rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}
        self.rope_parameters = rope_parameters
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )


class AcmeVlVisionConfig(PreTrainedConfig):
    r"""
    Configuration of a [`AcmeVlVisionModel`]: a ViT that cuts an `image_size` x `image_size` image into
    `patch_size` patches and encodes them with bidirectional attention. Each patch becomes one image token.
    """

    model_type = "acme_vl_vision"
    base_config_key = "vision_config"

    # Tensor-parallel plan of the vision tower, keys relative to it. The composite model prefixes them with
    # `vision_tower.`, and the engines shard these Linear layers like the decoder's.
    base_model_tp_plan: ClassVar[dict[str, str]] = {
        "layers.*.self_attn.q_proj": "colwise",
        "layers.*.self_attn.k_proj": "colwise",
        "layers.*.self_attn.v_proj": "colwise",
        "layers.*.self_attn.out_proj": "rowwise",
        "layers.*.mlp.fc1": "colwise",
        "layers.*.mlp.fc2": "rowwise",
    }

    def __init__(
        self,
        hidden_size: int = 64,
        intermediate_size: int = 256,
        num_hidden_layers: int = 2,
        num_attention_heads: int = 2,
        num_channels: int = 3,
        image_size: int = 64,
        patch_size: int = 16,
        hidden_act: str = "gelu_pytorch_tanh",
        layer_norm_eps: float = 1e-6,
        attention_dropout: float = 0.0,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        if image_size % patch_size:
            raise ValueError(
                f"image_size {image_size} is not divisible by patch_size {patch_size}"
            )
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_attention_heads}"
            )
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_channels = num_channels
        self.image_size = image_size
        self.patch_size = patch_size
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        super().__init__(**kwargs)

    @property
    def num_patches(self) -> int:
        """Patches per image, which is also the number of image tokens per image."""
        return (self.image_size // self.patch_size) ** 2


class AcmeVlConfig(PreTrainedConfig):
    r"""
    Configuration of a [`AcmeVlForConditionalGeneration`]. vLLM and SGLang read the decoder's fields from
    `text_config` (through `get_text_config()`), and a nested config is how vLLM tells a multimodal model from a
    text-only one.

    ```python
    >>> from transformers import AutoConfig

    >>> config = AutoConfig.from_pretrained("path/to/acme-vl", trust_remote_code=True)
    >>> config.get_text_config() is config.text_config
    True
    ```
    """

    model_type = "acme_vl"
    sub_configs: ClassVar[dict[str, type[PreTrainedConfig]]] = {
        "text_config": AcmeVlTextConfig,
        "vision_config": AcmeVlVisionConfig,
    }

    def __init__(
        self,
        text_config: dict | AcmeVlTextConfig | None = None,
        vision_config: dict | AcmeVlVisionConfig | None = None,
        image_token_id: int = 4,
        projector_hidden_act: str = "gelu",
        tie_word_embeddings: bool = True,
        **kwargs,
    ):
        if isinstance(text_config, dict):
            text_config = AcmeVlTextConfig(**text_config)
        self.text_config = (
            text_config if text_config is not None else AcmeVlTextConfig()
        )
        if isinstance(vision_config, dict):
            vision_config = AcmeVlVisionConfig(**vision_config)
        self.vision_config = (
            vision_config if vision_config is not None else AcmeVlVisionConfig()
        )
        # The placeholder token the processor repeats once per image token; the model writes image features there.
        self.image_token_id = image_token_id
        self.projector_hidden_act = projector_hidden_act
        # Kept equal to the decoder's: vLLM reads `tie_word_embeddings` from either level.
        self.text_config.tie_word_embeddings = tie_word_embeddings
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)


__all__ = ["AcmeVlConfig", "AcmeVlTextConfig", "AcmeVlVisionConfig"]
