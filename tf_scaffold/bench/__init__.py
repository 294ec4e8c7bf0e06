"""`tf-scaffold bench`: transformers vs each engine's Transformers backend vs the engine's native twin."""
