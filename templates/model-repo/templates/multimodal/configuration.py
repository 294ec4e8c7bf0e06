{%- include "common/license_header.py" %}
"""{{ cookiecutter.class_prefix }} configuration: a vision-language model made of a text decoder, a ViT vision tower and a
projector between them."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.modeling_rope_utils import RopeParameters
from transformers.utils import auto_docstring


{% include "decoder/configuration.py" %}


@auto_docstring(
    checkpoint="{{ cookiecutter.hub_id }}",
    custom_intro="""
    Configuration of a [`{{ cookiecutter.vision_model_class }}`]: a ViT that cuts an `image_size` x `image_size` image
    into `patch_size` patches and encodes them with bidirectional attention. Each patch becomes one image token.
    """,
)
@strict
class {{ cookiecutter.vision_config_class }}(PreTrainedConfig):
    r"""
    num_channels (`int`, *optional*, defaults to 3):
        Colour channels of the input images.
    image_size (`int`, *optional*, defaults to {{ cookiecutter.image_size }}):
        Side, in pixels, of the square image the tower sees: the image processor resizes every image to it.
    patch_size (`int`, *optional*, defaults to {{ cookiecutter.patch_size }}):
        Side, in pixels, of a patch: one image token per patch.
    """

    model_type = "{{ cookiecutter.vision_model_type }}"
    base_config_key = "vision_config"
    # Tensor-parallel plan of the vision tower, keys relative to it. The composite model prefixes them with
    # `vision_tower.`, and the engines shard these Linear layers like the decoder's.
    base_model_tp_plan = {
{%- for key, style in cookiecutter.vision_tp_plan.items() %}
        "{{ key }}": "{{ style }}",
{%- endfor %}
    }

    hidden_size: int = {{ cookiecutter.vision_hidden_size }}
    intermediate_size: int = {{ cookiecutter.vision_intermediate_size }}
    num_hidden_layers: int = {{ cookiecutter.vision_num_layers }}
    num_attention_heads: int = {{ cookiecutter.vision_num_heads }}
    num_channels: int = 3
    image_size: int = {{ cookiecutter.image_size }}
    patch_size: int = {{ cookiecutter.patch_size }}
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
    checkpoint="{{ cookiecutter.hub_id }}",
    custom_intro="""
    Configuration of a [`{{ cookiecutter.architecture }}`]: the decoder's (`text_config`), the vision tower's
    (`vision_config`) and the image placeholder. vLLM and SGLang read the decoder's fields from `text_config` (through
    `get_text_config()`), and a nested config is how vLLM tells a multimodal model from a text-only one.
    """,
)
@strict
class {{ cookiecutter.config_class }}(PreTrainedConfig):
    r"""
    text_config (`dict` or [`{{ cookiecutter.text_config_class }}`], *optional*):
        The text decoder's configuration (its defaults when not given).
    vision_config (`dict` or [`{{ cookiecutter.vision_config_class }}`], *optional*):
        The vision tower's configuration (its defaults when not given).
    image_token_id (`int`, *optional*, defaults to {{ cookiecutter.image_token_id }}):
        The placeholder token the processor repeats once per image token; the model writes image features there.

    ```python
    >>> from transformers import AutoConfig

    >>> config = AutoConfig.from_pretrained("{{ cookiecutter.hub_id }}", trust_remote_code=True)
    >>> config.get_text_config() is config.text_config
    True
    ```
    """

    model_type = "{{ cookiecutter.model_type }}"
    sub_configs = {
        "text_config": {{ cookiecutter.text_config_class }},
        "vision_config": {{ cookiecutter.vision_config_class }},
    }

    text_config: dict | {{ cookiecutter.text_config_class }} | None = None
    vision_config: dict | {{ cookiecutter.vision_config_class }} | None = None
    image_token_id: int = {{ cookiecutter.image_token_id }}
    projector_hidden_act: str = "gelu"
    tie_word_embeddings: bool = {{ cookiecutter.tie_word_embeddings }}

    def __post_init__(self, **kwargs):
        if isinstance(self.text_config, dict):
            self.text_config = {{ cookiecutter.text_config_class }}(**self.text_config)
        elif self.text_config is None:
            self.text_config = {{ cookiecutter.text_config_class }}()
        if isinstance(self.vision_config, dict):
            self.vision_config = {{ cookiecutter.vision_config_class }}(**self.vision_config)
        elif self.vision_config is None:
            self.vision_config = {{ cookiecutter.vision_config_class }}()
        # Kept equal to the decoder's: vLLM reads `tie_word_embeddings` from either level.
        self.text_config.tie_word_embeddings = self.tie_word_embeddings
        super().__post_init__(**kwargs)


__all__ = ["{{ cookiecutter.config_class }}", "{{ cookiecutter.text_config_class }}", "{{ cookiecutter.vision_config_class }}"]
