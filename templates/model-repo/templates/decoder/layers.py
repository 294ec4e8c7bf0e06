{#- The decoder's building blocks, shared by the text-only and the multimodal modeling files. #}
class {{ cookiecutter.class_prefix }}RMSNorm(nn.Module):
    # vLLM fuses this forward into its RMSNorm kernel when it matches `x * torch.rsqrt(x.pow(2).mean(-1) + eps)`
    # times `weight`; SGLang swaps every class whose name ends in "RMSNorm". Keep the name and the shape of the math.
    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.variance_epsilon}"


class {{ cookiecutter.class_prefix }}RotaryEmbedding(nn.Module):
    inv_freq: torch.Tensor

    def __init__(self, config: {{ cookiecutter.text_config_class }}):
        super().__init__()
        self.max_seq_len_cached = config.max_position_embeddings
        self.original_max_seq_len = config.max_position_embeddings
        self.config = config

        # transformers' own RoPE functions, so every `rope_type` it knows (linear, dynamic, yarn, longrope, llama3)
        # computes what its in-library models compute.
        self.rope_type = self.config.rope_parameters["rope_type"]
        rope_init_fn: Callable = self.compute_default_rope_parameters
        if self.rope_type != "default":
            rope_init_fn = ROPE_INIT_FUNCTIONS[self.rope_type]
        inv_freq, self.attention_scaling = rope_init_fn(self.config)

        # Non-persistent: not in the checkpoint. Models are built on the meta device; `PreTrainedModel._init_weights`
        # recomputes both buffers of a `*RotaryEmbedding` module with `original_inv_freq` after loading.
        self.inv_freq = nn.Buffer(inv_freq, persistent=False)
        self.original_inv_freq = nn.Buffer(inv_freq.clone(), persistent=False)

    @staticmethod
    def compute_default_rope_parameters(
        config: {{ cookiecutter.text_config_class }}, **kwargs
    ) -> tuple[torch.Tensor, float]:
        """The inverse frequencies of the original RoPE, and the factor cos/sin are scaled by (1.0: none)."""
        base = config.rope_parameters["rope_theta"]
        dim = config.head_dim
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
        return inv_freq, 1.0

    @dynamic_rope_update  # "dynamic" and "longrope" recompute the frequencies for long sequences
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # (B, T) positions -> (B, T, head_dim) cos/sin. Positions restart at 0 for each request the engines pack.
        freqs = position_ids[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos() * self.attention_scaling
        sin = emb.sin() * self.attention_scaling
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Rotates half the hidden dims of the input."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, unsqueeze_dim: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Applies rotary position embeddings to (B, heads, T, head_dim) query and key tensors."""
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed
{%- if cookiecutter.moe %}
@use_experts_implementation
class {{ cookiecutter.class_prefix }}Experts(nn.Module):
    """The experts of one layer, stored as 3-D tensors (one slice per expert).

    vLLM and SGLang replace this module, found by its name `experts` under the MoE block, with their fused MoE kernel:
    they load each expert's weights into it (the checkpoint stores them one expert at a time, see the conversion
    registered above) and call it as `experts(hidden_states, top_k_index, top_k_weights)`, so this signature is the
    contract. transformers' `@use_experts_implementation` swaps in its batched kernels on request
    (`experts_implementation=...`).
    """

    def __init__(self, config: {{ cookiecutter.text_config_class }}):
        super().__init__()
        self.num_experts = config.num_experts
        self.hidden_dim = config.hidden_size
        self.intermediate_dim = config.moe_intermediate_size
        self.gate_up_proj = nn.Parameter(torch.empty(self.num_experts, 2 * self.intermediate_dim, self.hidden_dim))
        self.down_proj = nn.Parameter(torch.empty(self.num_experts, self.hidden_dim, self.intermediate_dim))
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(
        self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
    ) -> torch.Tensor:
        """(tokens, hidden) states, (tokens, top_k) expert ids and weights -> (tokens, hidden) weighted sum."""
        final_hidden_states = torch.zeros_like(hidden_states)
        with torch.no_grad():
            expert_mask = torch.nn.functional.one_hot(top_k_index, num_classes=self.num_experts + 1)
            expert_mask = expert_mask.permute(2, 1, 0)  # (experts + 1, top_k, tokens)
            expert_hit = torch.greater(expert_mask.sum(dim=(-1, -2)), 0).nonzero()

        for expert_idx in expert_hit:
            expert_idx = expert_idx[0]
            if expert_idx == self.num_experts:  # id `num_experts` marks a dropped slot (expert parallelism)
                continue
            top_k_pos, token_idx = torch.where(expert_mask[expert_idx])
            current_state = hidden_states[token_idx]
            gate, up = nn.functional.linear(current_state, self.gate_up_proj[expert_idx]).chunk(2, dim=-1)
            current_hidden_states = self.act_fn(gate) * up
            current_hidden_states = nn.functional.linear(current_hidden_states, self.down_proj[expert_idx])
            current_hidden_states = current_hidden_states * top_k_weights[token_idx, top_k_pos, None]
            final_hidden_states.index_add_(0, token_idx, current_hidden_states.to(final_hidden_states.dtype))
        return final_hidden_states


class {{ cookiecutter.class_prefix }}TopKRouter(nn.Module):
    """Softmax over the experts, then the top `num_experts_per_tok` (renormalised when `norm_topk_prob`).

    The engines keep this routing: vLLM traces it to pick its fused top-k (softmax, renormalise) and SGLang reads
    `num_experts_per_tok` and `norm_topk_prob` from the config, so the math must stay softmax -> top-k -> renormalise.
    """

    def __init__(self, config: {{ cookiecutter.text_config_class }}):
        super().__init__()
        self.top_k = config.num_experts_per_tok
        self.num_experts = config.num_experts
        self.norm_topk_prob = config.norm_topk_prob
        self.hidden_dim = config.hidden_size
        self.weight = nn.Parameter(torch.zeros(self.num_experts, self.hidden_dim))

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden_states = hidden_states.reshape(-1, self.hidden_dim)
        router_logits = F.linear(hidden_states, self.weight)  # (tokens, num_experts)
        router_probs = torch.nn.functional.softmax(router_logits, dtype=torch.float, dim=-1)
        router_top_value, router_indices = torch.topk(router_probs, self.top_k, dim=-1)  # (tokens, top_k)
        if self.norm_topk_prob:
            router_top_value /= router_top_value.sum(dim=-1, keepdim=True)
        router_top_value = router_top_value.to(router_logits.dtype)
        return router_logits, router_top_value, router_indices


class {{ cookiecutter.class_prefix }}SparseMoeBlock(nn.Module):
    # The engines look for a child named `experts` with 3-D parameters and replace it; `gate` stays theirs to trace.
    def __init__(self, config: {{ cookiecutter.text_config_class }}):
        super().__init__()
        self.experts = {{ cookiecutter.class_prefix }}Experts(config)
        self.gate = {{ cookiecutter.class_prefix }}TopKRouter(config)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch_size, sequence_length, hidden_dim = hidden_states.shape
        hidden_states_reshaped = hidden_states.view(-1, hidden_dim)
        _, routing_weights, selected_experts = self.gate(hidden_states_reshaped)
        final_hidden_states = self.experts(hidden_states_reshaped, selected_experts, routing_weights)
        return final_hidden_states.reshape(batch_size, sequence_length, hidden_dim)
{%- else %}
class {{ cookiecutter.class_prefix }}MLP(nn.Module):
    def __init__(self, config: {{ cookiecutter.text_config_class }}):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # vLLM fuses gate/up into one MergedColumnParallelLinear when the forward has exactly this shape.
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))
{%- endif %}


def repeat_kv(hidden_states: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, kv_heads, T, head_dim) -> (B, kv_heads * n_rep, T, head_dim), as torch.repeat_interleave on dim 1."""
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, num_key_value_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


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
    key_states = repeat_kv(key, module.num_key_value_groups)
    value_states = repeat_kv(value, module.num_key_value_groups)

    attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask

    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value_states)
    attn_output = attn_output.transpose(1, 2).contiguous()  # (B, T, heads, head_dim)
    return attn_output, attn_weights


class {{ cookiecutter.class_prefix }}Attention(nn.Module):
    """Grouped-query attention. The engines replace only the attention function, never this module."""

    def __init__(self, config: {{ cookiecutter.text_config_class }}, layer_idx: int):
        super().__init__()
        self.config = config  # the engines read the (text) config from the attention module
        self.layer_idx = layer_idx  # one module per index 0..num_hidden_layers-1: the engines key their KV cache on it
        self.head_dim = config.head_dim
        self.num_key_value_groups = config.num_attention_heads // config.num_key_value_heads
        self.scaling = self.head_dim**-0.5  # an attribute: vLLM resolves `scaling=self.scaling` from the source
        self.attention_dropout = config.attention_dropout
        # vLLM serves the model as an encoder if any attention module says False.
        self.is_causal = True
{%- if cookiecutter.sliding %}
        # CODEPATH: the layers `config.layer_types` names "sliding_attention" see the last `config.sliding_window`
        # tokens, the others every earlier token (None). The engines read the window from the config, transformers'
        # attention functions from this argument and the sliding mask.
        self.sliding_window = config.sliding_window if config.layer_types[layer_idx] == "sliding_attention" else None
{%- endif %}

        # Three separate Linear layers called once each on the same input: vLLM fuses them into one QKV projection.
{%- if cookiecutter.attention_bias %}
        # Their biases are fused along with the weights.
{%- endif %}
        self.q_proj = nn.Linear(config.hidden_size, config.num_attention_heads * self.head_dim, bias={{ cookiecutter.attention_bias }})
        self.k_proj = nn.Linear(config.hidden_size, config.num_key_value_heads * self.head_dim, bias={{ cookiecutter.attention_bias }})
        self.v_proj = nn.Linear(config.hidden_size, config.num_key_value_heads * self.head_dim, bias={{ cookiecutter.attention_bias }})
        self.o_proj = nn.Linear(config.num_attention_heads * self.head_dim, config.hidden_size, bias=False)
{%- if cookiecutter.qk_norm %}
        # RMSNorm over each head of the queries and keys, before RoPE. Per head (weight of size head_dim), so tensor
        # parallelism replicates it instead of splitting it.
        self.q_norm = {{ cookiecutter.class_prefix }}RMSNorm(self.head_dim, eps=config.rms_norm_eps)
        self.k_norm = {{ cookiecutter.class_prefix }}RMSNorm(self.head_dim, eps=config.rms_norm_eps)
{%- endif %}

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
{%- if cookiecutter.qk_norm %}

        # (B, heads, T, head_dim) and (B, kv_heads, T, head_dim), every head RMS-normalised before RoPE
        query_states = self.q_norm(self.q_proj(hidden_states).view(hidden_shape)).transpose(1, 2)
        key_states = self.k_norm(self.k_proj(hidden_states).view(hidden_shape)).transpose(1, 2)
{%- else %}

        query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)  # (B, heads, T, head_dim)
        key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)  # (B, kv_heads, T, head_dim)
{%- endif %}
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        cos, sin = position_embeddings
        query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)

        if cache is not None:
            key_states, value_states = cache.update(key_states, value_states, self.layer_idx)

        # The one dispatch through the attention interface. vLLM and SGLang register their paged attention here;
        # transformers switches eager/sdpa/flash/flex here (`set_attn_implementation` looks for `get_interface(`).
        # vLLM parses this source: keep exactly one call through this variable.
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
{%- if cookiecutter.sliding %}
            sliding_window=self.sliding_window,
{%- endif %}
            **kwargs,  # the engines' attention metadata rides in here
        )

        # `-1`, not heads * head_dim: under tensor parallelism each rank holds only its share of the heads.
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        attn_output = self.o_proj(attn_output)
        return attn_output, attn_weights


class {{ cookiecutter.class_prefix }}DecoderLayer(GradientCheckpointingLayer):
    def __init__(self, config: {{ cookiecutter.text_config_class }}, layer_idx: int):
        super().__init__()
        self.self_attn = {{ cookiecutter.class_prefix }}Attention(config=config, layer_idx=layer_idx)
{%- if cookiecutter.moe %}
        self.mlp = {{ cookiecutter.class_prefix }}SparseMoeBlock(config)
{%- else %}
        self.mlp = {{ cookiecutter.class_prefix }}MLP(config)
{%- endif %}
        self.input_layernorm = {{ cookiecutter.class_prefix }}RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = {{ cookiecutter.class_prefix }}RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        residual = hidden_states
        hidden_states = self.input_layernorm(hidden_states)
        hidden_states, _ = self.self_attn(
            hidden_states=hidden_states,
            position_embeddings=position_embeddings,
            attention_mask=attention_mask,
            # Both reach the attention function, as in transformers' own decoders: its flash attention finds the
            # sequences packed into one row (padding-free training) by where `position_ids` restart.
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            **kwargs,  # carried on to the attention call
        )
        hidden_states = residual + hidden_states

        residual = hidden_states
        hidden_states = self.post_attention_layernorm(hidden_states)
        hidden_states = self.mlp(hidden_states)
        return residual + hidden_states
