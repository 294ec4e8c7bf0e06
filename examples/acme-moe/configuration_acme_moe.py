# Copyright The AcmeMoe Authors. All rights reserved.
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

"""AcmeMoe model configuration."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.modeling_rope_utils import RopeParameters
from transformers.utils import auto_docstring


# transformers names its own models in their docs from their folder: Hub code gives its intro itself.
@auto_docstring(
    checkpoint="your-org/acme-moe",
    custom_intro="""
    Configuration of a [`AcmeMoeModel`]: a mixture-of-experts decoder in Qwen3-MoE's design with per-head q/k RMSNorm
    (RMSNorm, RoPE, grouped-query attention, 8 routed SiLU experts per layer).

    Every field vLLM and SGLang read is declared here with its value: transformers v5 no longer defaults
    `pad_token_id`, `bos_token_id`, `eos_token_id`, `tie_word_embeddings` or `head_dim` for you.
    """,
)
@strict
class AcmeMoeConfig(PreTrainedConfig):
    r"""
    ```python
    >>> from transformers import AutoConfig

    >>> config = AutoConfig.from_pretrained("your-org/acme-moe", trust_remote_code=True)
    ```
    """

    model_type = "acme_moe"
    # The RoPE base: `rope_parameters` without a `rope_theta` get this one.
    default_theta = 10000.0
    # Tensor-parallel plan, keys relative to the base model. transformers applies it with `tp_plan="auto"`; vLLM and
    # SGLang read it to shard the Linear layers: q/k/v and gate/up split their outputs (colwise), o and down split
    # their inputs and all-reduce (rowwise).
    # The per-head q/k norms are replicated on every rank.
    # The experts' packed gate/up splits its outputs; SGLang replicates what it does not shard itself, and both
    # engines shard the experts inside their fused MoE kernel.
    base_model_tp_plan = {
        "layers.*.self_attn.q_proj": "colwise",
        "layers.*.self_attn.k_proj": "colwise",
        "layers.*.self_attn.v_proj": "colwise",
        "layers.*.self_attn.o_proj": "rowwise",
        "layers.*.self_attn.q_norm": "replicated_with_grad_allreduce",
        "layers.*.self_attn.k_norm": "replicated_with_grad_allreduce",
        "layers.*.mlp.experts.gate_up_proj": "packed_colwise",
        "layers.*.mlp.experts.down_proj": "rowwise",
        "layers.*.mlp.experts": "moe_tp_experts",
    }
    # Pipeline-parallel plan: which tensors enter and leave each top-level module of the base model.
    base_model_pp_plan = {
        "embed_tokens": (["input_ids"], ["inputs_embeds"]),
        "layers": (["hidden_states", "attention_mask"], ["hidden_states"]),
        "norm": (["hidden_states"], ["hidden_states"]),
    }

    vocab_size: int = 1024
    hidden_size: int = 128
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
    # Mixture of experts. The engines build their fused MoE layer from these four: expert count, top-k, expert width,
    # and whether the top-k weights are renormalised.
    num_experts: int = 8
    num_experts_per_tok: int = 2
    moe_intermediate_size: int = 128
    norm_topk_prob: bool = True
    # Training only: the load-balancing loss (`output_router_logits=True`) and its weight in the total loss.
    output_router_logits: bool = False
    router_aux_loss_coef: float = 0.001

    def validate_architecture(self):
        """Part of `@strict` validation: the attention shapes must be buildable. `head_dim` is explicit, so the hidden
        size need not be a multiple of the heads (q_proj maps it to `num_attention_heads * head_dim`)."""
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads {self.num_attention_heads} is not divisible by num_key_value_heads"
                f" {self.num_key_value_heads}"
            )
        if not 0 < self.num_experts_per_tok <= self.num_experts:
            raise ValueError(
                f"num_experts_per_tok {self.num_experts_per_tok} must be between 1 and num_experts {self.num_experts}"
            )


__all__ = ["AcmeMoeConfig"]
