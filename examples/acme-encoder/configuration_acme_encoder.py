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

"""AcmeEncoder model configuration."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.utils import auto_docstring


# transformers names its own models in their docs from their folder: Hub code gives its intro itself.
@auto_docstring(
    checkpoint="your-org/acme-encoder",
    custom_intro="""
    Configuration of a [`AcmeEncoderModel`] and its [`AcmeEncoderForSequenceClassification`]: a BERT-class
    bidirectional encoder (absolute position embeddings, token type embeddings, post-LayerNorm layers, GELU MLP). With
    the same values in a `BertConfig`, `BertModel` computes the same hidden states from the same weights.
    """,
)
@strict
class AcmeEncoderConfig(PreTrainedConfig):
    r"""
    pooling_type (`str`, *optional*, defaults to `"CLS"`):
        How SGLang pools `last_hidden_state` into one embedding per sequence ("CLS" or "LAST"; SGLang reads no other).
        vLLM and sentence-transformers read `modules.json` and `1_Pooling/config.json` instead: keep them in agreement.
    normalize (`bool`, *optional*, defaults to `True`):
        Whether SGLang L2-normalises the pooled embedding (vLLM: the `Normalize` entry of `modules.json`).

    ```python
    >>> from transformers import AutoConfig

    >>> config = AutoConfig.from_pretrained("your-org/acme-encoder", trust_remote_code=True)
    ```
    """

    model_type = "acme_encoder"
    # Tensor-parallel plan, keys relative to the base model. transformers applies it with `tp_plan="auto"`; vLLM and
    # SGLang read it to shard the Linear layers: query/key/value and the MLP's first projection split their outputs
    # (colwise), the projections after them split their inputs and all-reduce (rowwise).
    base_model_tp_plan = {
        "encoder.layer.*.attention.self.query": "colwise",
        "encoder.layer.*.attention.self.key": "colwise",
        "encoder.layer.*.attention.self.value": "colwise",
        "encoder.layer.*.attention.output.dense": "rowwise",
        "encoder.layer.*.intermediate.dense": "colwise",
        "encoder.layer.*.output.dense": "rowwise",
    }

    vocab_size: int = 1024
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 256
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    classifier_dropout: float | None = None
    pooling_type: str = "CLS"
    normalize: bool = True

    def validate_architecture(self):
        """Part of `@strict` validation: the attention shapes must be buildable."""
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}"
            )


__all__ = ["AcmeEncoderConfig"]
