{#- The decoder's configuration, shared by the text-only and the multimodal configuration files. #}
class {{ cookiecutter.text_config_class }}(PreTrainedConfig):
    r"""
    Configuration of a [`{{ cookiecutter.text_model_class }}`]: a Llama-class decoder (RMSNorm, RoPE, grouped-query
    attention, gated SiLU MLP).

    Every field vLLM and SGLang read is set explicitly: transformers v5 no longer defaults `pad_token_id`,
    `bos_token_id`, `eos_token_id`, `tie_word_embeddings` or `head_dim` for you.

    ```python
    >>> from transformers import AutoConfig

    >>> config = AutoConfig.from_pretrained("path/to/{{ cookiecutter.repo_name }}", trust_remote_code=True)
    ```
    """

    model_type = "{{ cookiecutter.text_model_type }}"
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["past_key_values"]

    # Tensor-parallel plan, keys relative to the base model. transformers applies it with `tp_plan="auto"`;
    # vLLM and SGLang read it to shard the Linear layers: q/k/v and gate/up split their outputs (colwise),
    # o and down split their inputs and all-reduce (rowwise).
    base_model_tp_plan: ClassVar[dict[str, str]] = {
{%- for key, style in cookiecutter.tp_plan.items() %}
        "{{ key }}": "{{ style }}",
{%- endfor %}
    }
    # Pipeline-parallel plan: which tensors enter and leave each top-level module of the base model.
    base_model_pp_plan: ClassVar[dict[str, tuple[list[str], list[str]]]] = {
{%- for key, io in cookiecutter.pp_plan.items() %}
        "{{ key }}": ({{ io[0] | tojson }}, {{ io[1] | tojson }}),
{%- endfor %}
    }

    def __init__(
        self,
        vocab_size: int = {{ cookiecutter.vocab_size }},
        hidden_size: int = {{ cookiecutter.hidden_size }},
        intermediate_size: int = {{ cookiecutter.intermediate_size }},
        num_hidden_layers: int = {{ cookiecutter.num_layers }},
        num_attention_heads: int = {{ cookiecutter.num_heads }},
        num_key_value_heads: int = {{ cookiecutter.num_kv_heads }},
        head_dim: int = {{ cookiecutter.head_dim }},
        hidden_act: str = "silu",
        max_position_embeddings: int = {{ cookiecutter.max_position_embeddings }},
        initializer_range: float = 0.02,
        rms_norm_eps: float = {{ cookiecutter.rms_norm_eps }},
        use_cache: bool = True,
        rope_parameters: dict | None = None,
        attention_dropout: float = 0.0,
        pad_token_id: int | None = {{ cookiecutter.pad_token_id }},
        bos_token_id: int | None = {{ cookiecutter.bos_token_id }},
        eos_token_id: int | list[int] | None = {{ cookiecutter.eos_token_id }},
        tie_word_embeddings: bool = {{ cookiecutter.tie_word_embeddings }},
        **kwargs,
    ):
        if hidden_size % num_attention_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_attention_heads}")
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
            rope_parameters = {"rope_type": "default", "rope_theta": {{ cookiecutter.rope_theta }}}
        self.rope_parameters = rope_parameters
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )
