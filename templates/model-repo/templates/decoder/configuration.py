{#- The decoder's configuration, shared by the text-only and the multimodal configuration files. #}
# transformers names its own models in their docs from their folder: Hub code gives its intro itself.
@auto_docstring(
    checkpoint="{{ cookiecutter.hub_id }}",
    custom_intro="""
    Configuration of a [`{{ cookiecutter.text_model_class }}`]: a {{ cookiecutter.decoder_summary }}
    ({{ cookiecutter.decoder_parts }}).

    Every field vLLM and SGLang read is declared here with its value: transformers v5 no longer defaults
    `pad_token_id`, `bos_token_id`, `eos_token_id`, `tie_word_embeddings` or `head_dim` for you.
    """,
)
@strict
class {{ cookiecutter.text_config_class }}(PreTrainedConfig):
    r"""
    ```python
    >>> from transformers import AutoConfig

    >>> config = AutoConfig.from_pretrained("{{ cookiecutter.hub_id }}", trust_remote_code=True)
    ```
    """

    model_type = "{{ cookiecutter.text_model_type }}"
{%- if cookiecutter.multimodal %}
    base_config_key = "text_config"  # `from_pretrained` on the composite checkpoint reads this part of it
{%- endif %}
    # The RoPE base: `rope_parameters` without a `rope_theta` get this one.
    default_theta = {{ cookiecutter.rope_theta }}
    # Tensor-parallel plan, keys relative to the base model. transformers applies it with `tp_plan="auto"`; vLLM and
    # SGLang read it to shard the Linear layers: q/k/v and gate/up split their outputs (colwise), o and down split
    # their inputs and all-reduce (rowwise).
{%- if cookiecutter.qk_norm %}
    # The per-head q/k norms are replicated on every rank.
{%- endif %}
{%- if cookiecutter.moe %}
    # The experts' packed gate/up splits its outputs; SGLang replicates what it does not shard itself, and both
    # engines shard the experts inside their fused MoE kernel.
{%- endif %}
    base_model_tp_plan = {{ cookiecutter.tp_plan }}
    # Pipeline-parallel plan: which tensors enter and leave each top-level module of the base model.
    base_model_pp_plan = {
{%- for key, io in cookiecutter.pp_plan.items() %}
        "{{ key }}": ({{ io[0] | tojson }}, {{ io[1] | tojson }}),
{%- endfor %}
    }

    vocab_size: int = {{ cookiecutter.vocab_size }}
    hidden_size: int = {{ cookiecutter.hidden_size }}
{%- if not cookiecutter.moe %}
    intermediate_size: int = {{ cookiecutter.intermediate_size }}
{%- endif %}
    num_hidden_layers: int = {{ cookiecutter.num_layers }}
    num_attention_heads: int = {{ cookiecutter.num_heads }}
    num_key_value_heads: int = {{ cookiecutter.num_kv_heads }}
    head_dim: int = {{ cookiecutter.head_dim }}
    hidden_act: str = "silu"
    max_position_embeddings: int = {{ cookiecutter.max_position_embeddings }}
    initializer_range: float = 0.02
    rms_norm_eps: float = {{ cookiecutter.rms_norm_eps }}
    use_cache: bool = True
    # v5 form: the engines read `rope_parameters` (type, theta and scaling factors), never a bare `rope_theta`.
    rope_parameters: RopeParameters | dict | None = None
    attention_dropout: float = 0.0
    pad_token_id: int | None = {{ cookiecutter.pad_token_id }}
    bos_token_id: int | None = {{ cookiecutter.bos_token_id }}
    eos_token_id: int | list[int] | None = {{ cookiecutter.eos_token_id }}
    tie_word_embeddings: bool = {{ cookiecutter.tie_word_embeddings }}
{%- if cookiecutter.sliding %}
    # Sliding-window attention: vLLM and SGLang give layer i a window of `sliding_window` tokens when `layer_types[i]`
    # is "sliding_attention" (the rest see every earlier token); transformers builds that layer's mask with
    # `create_sliding_window_causal_mask`.
    sliding_window: int | None = {{ cookiecutter.sliding_window }}
    layer_types: list[str] | None = None
{%- endif %}
{%- if cookiecutter.moe %}
    # Mixture of experts. The engines build their fused MoE layer from these four: expert count, top-k, expert width,
    # and whether the top-k weights are renormalised.
    num_experts: int = {{ cookiecutter.num_experts }}
    num_experts_per_tok: int = {{ cookiecutter.num_experts_per_tok }}
    moe_intermediate_size: int = {{ cookiecutter.moe_intermediate_size }}
    norm_topk_prob: bool = {{ cookiecutter.norm_topk_prob }}
    # Training only: the load-balancing loss (`output_router_logits=True`) and its weight in the total loss.
    output_router_logits: bool = False
    router_aux_loss_coef: float = {{ cookiecutter.router_aux_loss_coef }}
{%- endif %}

{%- if cookiecutter.rope_scaling_parameters or cookiecutter.sliding %}

    def __post_init__(self, **kwargs):
{%- if cookiecutter.rope_scaling_parameters %}
        if self.rope_parameters is None:
            self.rope_parameters = {{ cookiecutter.rope_scaling_parameters }}
{%- endif %}
{%- if cookiecutter.sliding %}
        if self.layer_types is None:
            self.layer_types = {{ cookiecutter.layer_types }}
{%- endif %}
        super().__post_init__(**kwargs)
{%- endif %}

    def validate_architecture(self):
        """Part of `@strict` validation: the attention shapes must be buildable. `head_dim` is explicit, so the
        hidden size need not be a multiple of the heads (q_proj maps it to `num_attention_heads * head_dim`)."""
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads {self.num_attention_heads} is not divisible by num_key_value_heads"
                f" {self.num_key_value_heads}"
            )
{%- if cookiecutter.sliding %}
        if len(self.layer_types) != self.num_hidden_layers:
            raise ValueError(
                f"layer_types names {len(self.layer_types)} layers, num_hidden_layers is {self.num_hidden_layers}"
            )
        if not set(self.layer_types) <= {"full_attention", "sliding_attention"}:
            raise ValueError(f"layer_types may hold only 'full_attention' and 'sliding_attention', got {self.layer_types}")
{%- endif %}
{%- if cookiecutter.moe %}
        if not 0 < self.num_experts_per_tok <= self.num_experts:
            raise ValueError(
                f"num_experts_per_tok {self.num_experts_per_tok} must be between 1 and num_experts {self.num_experts}"
            )
{%- endif %}
