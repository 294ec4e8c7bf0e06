"""What a bench run is asked to do (`Settings`), what it can fail with (`BenchError`), and the names it shows."""

from __future__ import annotations

from dataclasses import dataclass

from tf_scaffold.errors import ScaffoldError

ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang"}


class BenchError(ScaffoldError):
    exit_code = 1


@dataclass
class Settings:
    batch_sizes: list[int]
    new_tokens: int
    prompt_len: int
    budget: float  # seconds of measuring per engine
    precision: float  # half-width asked of the backend/native interval (or relative, of the speedup's)
    min_rounds: int
    max_rounds: int
    compiled: bool
    threads: int
    cores: list[int]
    dtype: str
    device: str
    profile: bool = False
    transformers: bool = True  # time transformers' generate() too (False: the engines' sides only)
    twin_backend: bool = False  # time the twin through the Transformers backend too (transformers' in-library class)
