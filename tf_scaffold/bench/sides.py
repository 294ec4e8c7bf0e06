"""The worker client: each side of a bench (transformers, an engine's backend, its native twin) is a process of
`bench/worker.py`, started once on the same cores and thread count as the others, spoken to one JSON line at a time."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tf_scaffold.bench.settings import BenchError, Settings

START_TIMEOUT = 900  # seconds for a side to load (a compiled vLLM on 2 CPU cores takes minutes)


RUN_TIMEOUT = 900


@dataclass
class SideSpec:
    name: str  # "transformers", "vllm", "vllm-native", ...
    worker: str  # which worker class runs it: transformers | vllm | sglang
    engine: str
    python: str
    repo: Path
    backend: bool


@dataclass
class Side:
    spec: SideSpec
    proc: subprocess.Popen
    log_path: Path
    info: dict = field(default_factory=dict)

    def request(self, obj: dict, timeout: float = RUN_TIMEOUT) -> dict:
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def read(self, timeout: float) -> dict:
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.spec.name} did not answer within {timeout:.0f} s: {self.log_tail()}")
            if selector.select(left):
                line = self.proc.stdout.readline()
                if not line:
                    raise BenchError(f"{self.spec.name} exited: {self.log_tail()}")
                return json.loads(line)

    def log_tail(self) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "(no log)"
        errors = [ln for ln in lines if "Error" in ln or "error" in ln]
        return (errors or lines or ["(empty log)"])[-1][:400]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "exit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(60)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except OSError:
                pass
            self.proc.wait()


def side_env(settings: Settings, workdir: Path) -> dict:
    """The same cores and thread count for every side, caches in `workdir`, no network, one process per engine."""
    from tf_scaffold.engines.machine import detect_platform
    from tf_scaffold.engines.server import engine_env

    platform = detect_platform()
    env = engine_env(Path("."), platform, workdir, tp=1, offline=True)  # offline: vLLM's engine core in-process
    cores = settings.cores
    bind = ",".join(map(str, cores))
    env.update(
        OMP_NUM_THREADS=str(settings.threads),
        MKL_NUM_THREADS=str(settings.threads),
        VLLM_CPU_OMP_THREADS_BIND=bind,
        SGLANG_CPU_OMP_THREADS_BIND=bind,
    )
    return env


def start_side(spec: SideSpec, settings: Settings, workdir: Path) -> Side:
    args = {
        "side": spec.worker,
        "repo": str(spec.repo),
        "backend": spec.backend,
        "dtype": settings.dtype,
        "device": settings.device,
        "threads": settings.threads,
        "compiled": settings.compiled,
        "max_model_len": settings.prompt_len + settings.new_tokens + 16,
        "max_batch": max(settings.batch_sizes),
    }
    log_path = workdir / f"{spec.name}.log"
    cores = set(settings.cores)
    with open(log_path, "w") as log:  # the child writes to its own copy of the descriptor
        proc = subprocess.Popen(
            [spec.python, "-m", "tf_scaffold.bench.worker", json.dumps(args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=side_env(settings, workdir),
            cwd=workdir,
            start_new_session=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if hasattr(os, "sched_setaffinity") else None,  # noqa: PLW1509
        )
    side = Side(spec=spec, proc=proc, log_path=log_path)
    ready = side.read(START_TIMEOUT)
    if not ready.get("ready"):
        side.close()
        raise BenchError(f"{spec.name} could not load the model: {ready.get('error')}")
    side.info = ready
    if spec.worker == "sglang":  # SGLang's own log line, from the process that built the model
        side.info["transformers_backend"] = "Using Transformers backend" in log_path.read_text(errors="replace")
    return side
