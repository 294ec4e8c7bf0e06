"""An engine's OpenAI-compatible server for the length of a test or a bench: its command line with this machine's
settings, its environment, and a process group that is always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tf_scaffold.engines import machine
from tf_scaffold.engines.build import sglang_impl_keyword
from tf_scaffold.engines.machine import Platform


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def engine_env(repo: Path, platform: Platform, workdir: Path, tp: int = 1, offline: bool = False) -> dict:
    """Environment for an engine process: offline, caches inside `workdir`, the platform's engine settings.

    `offline` (an `LLM` in the runner, not a server) at `tp` 1 runs vLLM's engine core inside the runner's process
    rather than in a process of its own: the same model code and backend, half the start-up time on a small CPU.
    """
    env = dict(os.environ)
    env.update(platform.engine_env)
    if offline and tp == 1:
        env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    if platform.device == "cpu" and tp > 1:
        # Both engines bind each rank's OpenMP threads to its own cores on CPU; vLLM's default ("auto") leaves ranks
        # without cores on a small machine, SGLang needs the binding to start ranks at all.
        env["VLLM_CPU_OMP_THREADS_BIND"] = env["SGLANG_CPU_OMP_THREADS_BIND"] = machine.cpu_threads_bind(tp)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "VLLM_CACHE_ROOT": str(workdir / "vllm-cache"),
            "TORCHINDUCTOR_CACHE_DIR": str(workdir / "inductor-cache"),
            "HF_MODULES_CACHE": str(workdir / "hf-modules"),
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    return env


class ServerError(RuntimeError):
    pass


@dataclass
class Server:
    """A server subprocess started in its own process group; `stop()` ends the whole group."""

    cmd: list[str]
    url: str
    env: dict
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> Server:
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        return self

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def wait_ready(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"server exited with code {self.proc.returncode} before it was ready:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.5)
        raise ServerError(f"server not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, grace: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=grace)
        # children may outlive the leader: make sure the group is gone
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()
        return self.proc.returncode


@contextlib.contextmanager
def running_server(
    cmd: list[str],
    url: str,
    env: dict,
    ready_path: str,
    timeout: float,
    log_dir: Path | None = None,
):
    """Start a server, wait until `ready_path` answers 200, yield it, and always stop it."""
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="engine-server-"))
    server = Server(cmd=cmd, url=url, env=env, log_path=log_dir / "server.log").start()
    try:
        server.wait_ready(ready_path, timeout)
        yield server
    finally:
        server.stop()


def vllm_server_cmd(repo: Path, port: int, platform: Platform, tp: int = 1, extra: tuple[str, ...] = ()) -> list[str]:
    # The CPU build has no `vllm` console script (its distribution is `vllm-cpu`): use the module entry point.
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(repo),
        "--model-impl",
        "transformers",
        "--trust-remote-code",
        "--dtype",
        platform.dtype,
        "--max-model-len",
        "256",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--served-model-name",
        "model",
        "--seed",
        "0",
    ]
    if platform.device == "cpu":
        cmd.append("--enforce-eager")
    if tp > 1:
        cmd += ["--tensor-parallel-size", str(tp)]
    return cmd + list(extra)


def sglang_server_cmd(repo: Path, port: int, platform: Platform, tp: int = 1) -> list[str]:
    keyword = sglang_impl_keyword().replace("_", "-")
    cmd = [
        sys.executable,
        "-m",
        "sglang.launch_server",
        "--model-path",
        str(repo),
        f"--{keyword}",
        "transformers",
        "--trust-remote-code",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--served-model-name",
        "model",
        "--context-length",
        "256",
        "--random-seed",
        "0",
    ]
    for key, value in platform.sglang_args.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    if tp > 1:
        cmd += ["--tp-size", str(tp)]
    return cmd
