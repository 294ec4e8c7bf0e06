"""{{ cookiecutter.class_prefix }} configuration: a vision-language model made of a text decoder, a ViT vision tower and a
projector between them."""

from typing import ClassVar

from transformers import PreTrainedConfig


{% include "text_config.py" %}


class {{ cookiecutter.vision_config_class }}(PreTrainedConfig):
    r"""
    Configuration of a [`{{ cookiecutter.vision_model_class }}`]: a ViT that cuts an `image_size` x `image_size` image into
    `patch_size` patches and encodes them with bidirectional attention. Each patch becomes one image token.
    """

    model_type = "{{ cookiecutter.vision_model_type }}"
    base_config_key = "vision_config"

    # Tensor-parallel plan of the vision tower, keys relative to it. The composite model prefixes them with
    # `vision_tower.`, and the engines shard these Linear layers like the decoder's.
    base_model_tp_plan: ClassVar[dict[str, str]] = {
{%- for key, style in cookiecutter.vision_tp_plan.items() %}
        "{{ key }}": "{{ style }}",
{%- endfor %}
    }

    def __init__(
        self,
        hidden_size: int = {{ cookiecutter.vision_hidden_size }},
        intermediate_size: int = {{ cookiecutter.vision_intermediate_size }},
        num_hidden_layers: int = {{ cookiecutter.vision_num_layers }},
        num_attention_heads: int = {{ cookiecutter.vision_num_heads }},
        num_channels: int = 3,
        image_size: int = {{ cookiecutter.image_size }},
        patch_size: int = {{ cookiecutter.patch_size }},
        hidden_act: str = "gelu_pytorch_tanh",
        layer_norm_eps: float = 1e-6,
        attention_dropout: float = 0.0,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not divisible by patch_size {patch_size}")
        if hidden_size % num_attention_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_attention_heads}")
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


class {{ cookiecutter.config_class }}(PreTrainedConfig):
    r"""
    Configuration of a [`{{ cookiecutter.architecture }}`]. vLLM and SGLang read the decoder's fields from
    `text_config` (through `get_text_config()`), and a nested config is how vLLM tells a multimodal model from a
    text-only one.

    ```python
    >>> from transformers import AutoConfig

    >>> config = AutoConfig.from_pretrained("path/to/{{ cookiecutter.repo_name }}", trust_remote_code=True)
    >>> config.get_text_config() is config.text_config
    True
    ```
    """

    model_type = "{{ cookiecutter.model_type }}"
    sub_configs: ClassVar[dict[str, type[PreTrainedConfig]]] = {
        "text_config": {{ cookiecutter.text_config_class }},
        "vision_config": {{ cookiecutter.vision_config_class }},
    }

    def __init__(
        self,
        text_config: dict | {{ cookiecutter.text_config_class }} | None = None,
        vision_config: dict | {{ cookiecutter.vision_config_class }} | None = None,
        image_token_id: int = {{ cookiecutter.image_token_id }},
        projector_hidden_act: str = "gelu",
        tie_word_embeddings: bool = {{ cookiecutter.tie_word_embeddings }},
        **kwargs,
    ):
        if isinstance(text_config, dict):
            text_config = {{ cookiecutter.text_config_class }}(**text_config)
        self.text_config = text_config if text_config is not None else {{ cookiecutter.text_config_class }}()
        if isinstance(vision_config, dict):
            vision_config = {{ cookiecutter.vision_config_class }}(**vision_config)
        self.vision_config = vision_config if vision_config is not None else {{ cookiecutter.vision_config_class }}()
        # The placeholder token the processor repeats once per image token; the model writes image features there.
        self.image_token_id = image_token_id
        self.projector_hidden_act = projector_hidden_act
        # Kept equal to the decoder's: vLLM reads `tie_word_embeddings` from either level.
        self.text_config.tie_word_embeddings = tie_word_embeddings
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)


__all__ = ["{{ cookiecutter.config_class }}", "{{ cookiecutter.text_config_class }}", "{{ cookiecutter.vision_config_class }}"]
