"""The dynamic rules: what `check --trust-remote-code` runs (their code is the session in `dynamic/__init__.py`)."""

from tf_scaffold.conformance.registry import DYNAMIC, GENERATIVE, MULTIMODAL, rule

rule(
    "TFS100",
    "base-model-not-buildable",
    "base model cannot be built the way the engines build it",
    engine="AutoModel.from_config(config) on the meta device fails inside the engines",
    fix="make the base model constructible from its config alone",
    mode=DYNAMIC,
)
rule(
    "TFS101",
    "attention-not-called-once-per-layer",
    "a registered attention function is not called once per layer",
    engine="the engines' attention never runs (hard-coded attention) or runs twice per layer",
    fix="route each layer's attention through one interface call",
    mode=DYNAMIC,
)
rule(
    "TFS102",
    "kwargs-do-not-reach-attention",
    "keyword arguments do not reach the attention function",
    engine="SGLang's forward_batch/attention_instances are lost between the base model and its attention function, which fails on the first request (vLLM, which reads a global forward context, is unaffected)",
    fix="carry **kwargs from the base model's forward through every layer to the interface call",
    mode=DYNAMIC,
    verdicts={"vLLM": "ok", "SGLang": "rejected"},
)
rule(
    "TFS103",
    "packed-sequences-mix",
    "packed sequences are not independent",
    engine="the engines pack every request into one row with position_ids restarting at 0: the model rebuilds positions or mixes tokens outside attention, so requests corrupt each other",
    fix="take positions from position_ids and mix tokens only inside attention",
    mode=DYNAMIC,
)
rule(
    "TFS104",
    "attention-implementations-disagree",
    "attention implementations disagree",
    engine="the engines' attention will not reproduce the model's own outputs",
    fix="make eager_attention_forward match the standard implementations",
    mode=DYNAMIC,
)
rule(
    "TFS105",
    "kv-cache-decoding-differs",
    "KV-cache decoding differs from the full forward",
    engine="generation with transformers is wrong (the engines manage their own cache)",
    fix="update the cache with cache.update(k, v, self.layer_idx) after RoPE",
    mode=DYNAMIC,
    applies_to=GENERATIVE,
    not_applicable="an encoder does not generate: it has no KV cache to decode with",
)
rule(
    "TFS106",
    "buffers-wrong-after-loading",
    "non-persistent buffers are wrong after loading",
    engine="models are built on the meta device: buffers not restored in _init_weights hold garbage",
    fix="recompute non-persistent buffers in _init_weights (init.copy_(module.inv_freq, ...))",
    mode=DYNAMIC,
)
rule(
    "TFS107",
    "save-load-not-exact",
    "save/load round trip is not exact",
    engine="weights saved and reloaded change: the engines load what save_pretrained wrote",
    fix="keep parameter names and tied weights consistent",
    mode=DYNAMIC,
)
rule(
    "TFS108",
    "tp-plan-misses-linear",
    "tensor-parallel plan does not cover the decoder's Linear layers",
    engine="an unsharded Linear next to sharded ones gives wrong shapes under tensor parallelism",
    fix="add a pattern for every nn.Linear in the decoder layers, and remove patterns that match nothing",
    mode=DYNAMIC,
)
rule(
    "TFS109",
    "tp-run-differs",
    "tensor-parallel run differs from the unsharded model",
    engine=(
        "serving with tensor parallelism gives different outputs (compared: the head's logits for a decoder, the "
        "base model's last_hidden_state for an encoder, which is what the engines shard and pool)"
    ),
    fix="fix the tp plan styles (q/k/v/gate/up colwise, o/down rowwise) and the -1 reshape",
    mode=DYNAMIC,
)
rule(
    "TFS110",
    "pipeline-split-differs",
    "stage-by-stage forward differs from the full forward",
    engine="pipeline parallelism gives different outputs: a stage needs a tensor the plan does not pass",
    fix="make base_model_pp_plan list what each stage takes and returns",
    mode=DYNAMIC,
    applies_to=GENERATIVE,
    not_applicable="pipeline parallelism splits a decoder's embed_tokens / layers / norm; an encoder is served whole",
)
rule(
    "TFS111",
    "generate-differs-from-no-cache",
    "generate() with the KV cache differs from greedy decoding without it",
    engine="transformers users get wrong tokens from generate(), with no error: e.g. a forward that knows only `past_key_values` receives None on every step under transformers >= 5.24, which passes the cache as `cache`, and rebuilds it (the engines, which keep their own cache, are unaffected)",
    fix="take the cache under both names (`cache`, and `past_key_values` from transformers < 5.24), return it in the output under the installed version's name, and derive positions and masks from it",
    mode=DYNAMIC,
    applies_to=GENERATIVE,
    verdicts={"vLLM": "ok", "SGLang": "ok"},
    not_applicable="an encoder does not generate",
)
rule(
    "TFS120",
    "processor-does-not-load",
    "AutoProcessor cannot load the repo",
    engine="neither engine can turn an image prompt into model inputs",
    fix="fix the error shown; the processor must load offline with trust_remote_code",
    mode=DYNAMIC,
    applies_to=(MULTIMODAL,),
)
rule(
    "TFS121",
    "token-count-disagrees",
    "_get_num_multimodal_tokens disagrees with the placeholders the processor inserts",
    engine="vLLM sizes each image's placeholder span and its memory profile from this count: a wrong one misplaces the image features or fails the request",
    fix="compute num_image_tokens with the same formula replace_image_token uses, for every image size",
    mode=DYNAMIC,
    applies_to=(MULTIMODAL,),
)
rule(
    "TFS122",
    "pixel-rows-disagree",
    "rows of pixel_values per image differ from num_image_patches",
    engine="vLLM splits pixel_values into images by num_image_patches and refuses rows it cannot attribute",
    fix="return num_image_patches equal to the pixel_values rows each image produces",
    mode=DYNAMIC,
    applies_to=(MULTIMODAL,),
)
rule(
    "TFS123",
    "image-feature-rows-disagree",
    "get_image_features returns a different number of rows than the image's placeholders",
    engine="vLLM writes pooler_output into the placeholder positions: with a mismatch it pads or truncates the features ('embeddings are not trustworthy') or fails",
    fix="return one (num_image_tokens, text hidden) entry per image in pooler_output",
    mode=DYNAMIC,
    applies_to=(MULTIMODAL,),
)
rule(
    "TFS124",
    "mm-token-types-not-contiguous",
    "mm_token_type_ids does not mark each image as one contiguous run",
    engine="engines that locate images by token type find the wrong spans",
    fix="set image_token_id to the id of the placeholder the processor repeats",
    mode=DYNAMIC,
    applies_to=(MULTIMODAL,),
)
rule(
    "TFS125",
    "pixel-merge-differs",
    "forward(pixel_values=...) differs from merging get_image_features into inputs_embeds",
    engine="vLLM (which merges by itself) and SGLang (which calls forward with pixel_values) would give different outputs",
    fix="merge in forward exactly what get_image_features returns, at the image_token_id positions, with masked_scatter",
    mode=DYNAMIC,
    applies_to=(MULTIMODAL,),
)
