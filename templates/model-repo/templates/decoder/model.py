{#- The decoder stack, shared by the text-only (`AutoModel`) and the multimodal (`language_model`) modeling files. #}
{%- if cookiecutter.multimodal %}
@auto_docstring(
    custom_intro="""
    The text decoder of [`{{ cookiecutter.architecture }}`] (its `language_model`): a {{ cookiecutter.decoder_summary }}, outputting
    hidden states without a head.
    """
)
{%- else %}
@auto_docstring(
    custom_intro="""
    The bare {{ cookiecutter.class_prefix }} decoder ({{ cookiecutter.decoder_summary }}), outputting hidden states without a head: the
    model vLLM and SGLang build and serve with their own head.
    """
)
{%- endif %}
class {{ cookiecutter.text_model_class }}({{ cookiecutter.class_prefix }}PreTrainedModel):
{%- if cookiecutter.multimodal %}
    # The text decoder (`language_model`). Its attention modules hold the text config, which is how vLLM picks them
    # for its paged attention.
    config: {{ cookiecutter.text_config_class }}
{%- else %}
    # The base model: the only class vLLM and SGLang instantiate (`auto_map["AutoModel"]`).
{%- endif %}

    def __init__(self, config: {{ cookiecutter.text_config_class }}):
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.vocab_size = config.vocab_size

        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        # Exactly one ModuleList of layers: pipeline parallelism splits it (`base_model_pp_plan["layers"]`).
        self.layers = nn.ModuleList(
            [{{ cookiecutter.class_prefix }}DecoderLayer(config, layer_idx) for layer_idx in range(config.num_hidden_layers)]
        )
        self.norm = {{ cookiecutter.class_prefix }}RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = {{ cookiecutter.class_prefix }}RotaryEmbedding(config=config)
        self.gradient_checkpointing = False
{%- if cookiecutter.sliding %}
        self.has_sliding_layers = "sliding_attention" in config.layer_types
{%- endif %}

        self.post_init()

    @merge_with_config_defaults
    @capture_outputs  # `output_hidden_states` / `output_attentions`, and `return_dict=False` (the engines) -> tuple
    @auto_docstring
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> {{ "MoeModelOutputWithPast" if cookiecutter.moe else "BaseModelOutputWithPast" }}:
        r"""
        cache (`Cache`, *optional*):
            The KV cache of earlier steps, updated in place (`DynamicCache` when `use_cache` and none is given).
        past_key_values (`Cache`, *optional*):
            The KV cache under its name before transformers 5.24, which `generate()` of those releases passes.

        Returns:
{%- if cookiecutter.moe %}
            [`~modeling_outputs.MoeModelOutputWithPast`], or a tuple with `return_dict=False` (how the engines call
            it): `last_hidden_state`, the cache when `use_cache`, `router_logits` when `output_router_logits`, and
            `hidden_states` / `attentions` when asked for.
{%- else %}
            [`~modeling_outputs.BaseModelOutputWithPast`], or a tuple with `return_dict=False` (how the engines call
            it): `last_hidden_state`, the cache when `use_cache`, and `hidden_states` / `attentions` when asked for.
{%- endif %}
        """
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")

        # vLLM may pass `inputs_embeds` instead of `input_ids` (e.g. multimodal or prompt embeddings).
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)

        cache = cache if cache is not None else past_key_values  # the name `generate()` uses before transformers 5.24
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)

        if position_ids is None:
            # Only when the caller gives none (plain transformers use). The engines always pass `position_ids`,
            # restarting at 0 for each packed request: never rebuild them when given.
            past_seen_tokens = cache.get_seq_length() if cache is not None else 0
            position_ids = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device) + past_seen_tokens
            position_ids = position_ids.unsqueeze(0)
{%- if cookiecutter.sliding %}

        # One mask per kind of layer, each built by transformers' mask function for the active attention
        # implementation (the sliding one hides tokens older than `config.sliding_window`). An engine-registered
        # attention function receives None and applies the window it read from `config.layer_types`.
        mask_kwargs = {
            "config": self.config,
            "inputs_embeds": inputs_embeds,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            CACHE_NAME: cache,
        }
        causal_masks = {"full_attention": create_causal_mask(**mask_kwargs)}
        if self.has_sliding_layers:
            causal_masks["sliding_attention"] = create_sliding_window_causal_mask(**mask_kwargs)
{%- else %}

        # The mask is built for the active attention implementation; an engine-registered one receives None and masks
        # by its own metadata.
        causal_mask = create_causal_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            **{CACHE_NAME: cache},
        )
{%- endif %}

        hidden_states = inputs_embeds
        position_embeddings = self.rotary_emb(hidden_states, position_ids=position_ids)
{%- if cookiecutter.sliding %}

        for layer_idx, decoder_layer in enumerate(self.layers[: self.config.num_hidden_layers]):
            hidden_states = decoder_layer(
                hidden_states,
                position_embeddings=position_embeddings,
                attention_mask=causal_masks[self.config.layer_types[layer_idx]],
{%- else %}

        for decoder_layer in self.layers[: self.config.num_hidden_layers]:
            hidden_states = decoder_layer(
                hidden_states,
                position_embeddings=position_embeddings,
                attention_mask=causal_mask,
{%- endif %}
                position_ids=position_ids,
                cache=cache,
                use_cache=use_cache,
                **kwargs,
            )

        hidden_states = self.norm(hidden_states)
{%- if cookiecutter.moe %}
        # `router_logits` is filled in by `capture_outputs` when `output_router_logits` is asked for
        return MoeModelOutputWithPast(last_hidden_state=hidden_states, **{CACHE_NAME: cache})
{%- else %}
        return BaseModelOutputWithPast(last_hidden_state=hidden_states, **{CACHE_NAME: cache})
{%- endif %}
