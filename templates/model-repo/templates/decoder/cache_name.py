{#- The one place the generated decoder adapts to the installed transformers. #}
# transformers 5.24 renamed the KV cache from `past_key_values` to `cache`: in model signatures, in what `generate()`
# passes, in `create_causal_mask` and in model outputs (the old name goes in 5.40). The engines pin transformers 5.19
# and users run the newest release, so this file works on both sides of the rename: it calls the cache `cache`, takes
# `past_key_values` from an older `generate()`, and hands the cache to transformers under the installed name.
CACHE_NAME = "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"
