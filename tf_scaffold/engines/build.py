"""The one way tf-scaffold builds an engine on a repo: vLLM's `LLM` or SGLang's `Engine`, through its Transformers
backend or its native implementation of the repo's architecture, eager or compiled, with this machine's settings.
The harness's runner (`engines/runner.py`) and the bench's worker (`bench/worker.py`) both build theirs here.

`compiled=None` is the machine's default: eager on CPU (compiling takes minutes on a small CPU and serves the same
tokens), the engine's own default (torch.compile, CUDA graphs) on a GPU.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from tf_scaffold.engines.machine import Platform


def sglang_impl_keyword(server_args_cls=None) -> str:
    """`model_impl` in current SGLang releases, `impl` in early ones: read it off ServerArgs."""
    if server_args_cls is None:
        from sglang.srt.server_args import ServerArgs as server_args_cls
    names = set(getattr(server_args_cls, "__dataclass_fields__", {}) or {})
    if not names:
        names = set(inspect.signature(server_args_cls).parameters)
    for keyword in ("model_impl", "impl"):
        if keyword in names:
            return keyword
    raise RuntimeError(
        "this SGLang version takes neither `model_impl` nor `impl`: it cannot select the Transformers backend"
    )


def vllm_llm(
    repo: str | Path,
    platform: Platform,
    *,
    backend: bool = True,
    compiled: bool | None = None,
    tp: int = 1,
    max_model_len: int = 256,
    **extra,
):
    """vLLM's `LLM` on the repo: its Transformers backend (`backend`), else its native model for the repo's
    architecture; `extra` are further `LLM` keywords (`runner="pooling"`, `limit_mm_per_prompt`, `max_num_seqs`)."""
    from vllm import LLM

    kwargs = {
        "model": str(repo),
        "trust_remote_code": True,
        "dtype": platform.dtype,
        "max_model_len": max_model_len,
        "seed": 0,
        "tensor_parallel_size": tp,
        **extra,
    }
    if backend:
        kwargs["model_impl"] = "transformers"
    if compiled is False or (compiled is None and platform.device == "cpu"):
        kwargs["enforce_eager"] = True
    if platform.device == "cpu" and tp > 1:
        # One process per rank: vLLM's CPU build runs tensor parallelism with its multiprocessing executor.
        kwargs["distributed_executor_backend"] = "mp"
    return LLM(**kwargs)


def sglang_engine(
    repo: str | Path,
    platform: Platform,
    *,
    backend: bool = True,
    compiled: bool | None = None,
    tp: int = 1,
    context_length: int = 256,
    **extra,
):
    """SGLang's `Engine` on the repo: its Transformers backend (`backend`), else its own choice for the repo's
    architecture (`auto`: the native model where it has one); `extra` are further `Engine` keywords
    (`is_embedding=True`, `skip_tokenizer_init=True`)."""
    import sglang as sgl

    kwargs = {
        "model_path": str(repo),
        "trust_remote_code": True,
        "tp_size": tp,
        "context_length": context_length,
        "random_seed": 0,
        "log_level": "info",  # its "Using Transformers backend." line is how the caller knows which class ran
        **platform.sglang_args,  # device, dtype, attention backend and KV budget for this machine
        sglang_impl_keyword(): "transformers" if backend else "auto",
        **extra,
    }
    if compiled is not None:
        kwargs["disable_cuda_graph"] = not compiled
    return sgl.Engine(**kwargs)
