{#- The configuration of an `--arch encoder` repo: BertConfig's fields, plus the pooling SGLang reads. #}
{%- include "common/license_header.py" %}
"""{{ cookiecutter.class_prefix }} model configuration."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.utils import auto_docstring


# transformers names its own models in their docs from their folder: Hub code gives its intro itself.
@auto_docstring(
    checkpoint="{{ cookiecutter.hub_id }}",
    custom_intro="""
    Configuration of a [`{{ cookiecutter.base_model_class }}`] and its [`{{ cookiecutter.class_prefix }}ForSequenceClassification`]: a BERT-class
    bidirectional encoder (absolute position embeddings{% if cookiecutter.token_types %}, token type embeddings{% endif %}, post-LayerNorm layers, GELU MLP).
    With the same values in a `BertConfig`, `BertModel` computes the same hidden states from the same weights.
    """,
)
@strict
class {{ cookiecutter.config_class }}(PreTrainedConfig):
    r"""
    pooling_type (`str`, *optional*, defaults to `"{{ cookiecutter.pooling_type }}"`):
        How SGLang pools `last_hidden_state` into one embedding per sequence ("CLS" or "LAST"; SGLang reads no other).
        vLLM and sentence-transformers read `modules.json` and `1_Pooling/config.json` instead: keep them in agreement.
    normalize (`bool`, *optional*, defaults to `{{ cookiecutter.normalize }}`):
        Whether SGLang L2-normalises the pooled embedding (vLLM: the `Normalize` entry of `modules.json`).

    ```python
    >>> from transformers import AutoConfig

    >>> config = AutoConfig.from_pretrained("{{ cookiecutter.hub_id }}", trust_remote_code=True)
    ```
    """

    model_type = "{{ cookiecutter.model_type }}"
    # Tensor-parallel plan, keys relative to the base model. transformers applies it with `tp_plan="auto"`; vLLM and
    # SGLang read it to shard the Linear layers: query/key/value and the MLP's first projection split their outputs
    # (colwise), the projections after them split their inputs and all-reduce (rowwise).
    base_model_tp_plan = {{ cookiecutter.tp_plan }}

    vocab_size: int = {{ cookiecutter.vocab_size }}
    hidden_size: int = {{ cookiecutter.hidden_size }}
    num_hidden_layers: int = {{ cookiecutter.num_layers }}
    num_attention_heads: int = {{ cookiecutter.num_heads }}
    intermediate_size: int = {{ cookiecutter.intermediate_size }}
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = {{ cookiecutter.max_position_embeddings }}
    type_vocab_size: int = {{ cookiecutter.type_vocab_size }}
    initializer_range: float = 0.02
    layer_norm_eps: float = {{ cookiecutter.layer_norm_eps }}
    pad_token_id: int | None = {{ cookiecutter.pad_token_id }}
    classifier_dropout: float | None = None
    pooling_type: str = "{{ cookiecutter.pooling_type }}"
    normalize: bool = {{ cookiecutter.normalize }}

    def validate_architecture(self):
        """Part of `@strict` validation: the attention shapes must be buildable."""
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}"
            )


__all__ = ["{{ cookiecutter.config_class }}"]
