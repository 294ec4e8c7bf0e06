"""`tf-scaffold bench`: transformers' `generate()` against each engine's Transformers backend on the same prompts,
and the engine's native implementation of the repo's in-library twin on the same weights.

Each side runs in a process of its own, started once (start-up is reported, not timed) and kept for the whole
measurement. One round runs every side once per batch size, adjacent in time, in alternating order; each run is one
generation of exactly `new_tokens` greedy tokens for every prompt of the batch. Ratios are taken between runs of the
same round (paired), rounds repeat until the ratio's 95 % interval is as narrow as asked or the time budget is spent.
Every side gets the same cores and thread count. Tokens must be equal across all sides: a mismatch is an error.
"""

from __future__ import annotations

import json
import math
import os
import platform as platform_module
import random
import selectors
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tf_scaffold import __version__
from tf_scaffold.bench.stats import Interval, median_interval, paired_ratios, settled
from tf_scaffold.bench.twins import Twin, native_copy, twin_for
from tf_scaffold.bench.worker import GENERATING_CLASSES
from tf_scaffold.engines.run import ENGINES, VERSIONS_PROBE, _resolve_python
from tf_scaffold.errors import EnvironmentFailure, ScaffoldError

ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang"}
START_TIMEOUT = 900  # seconds for a side to load (a compiled vLLM on 2 CPU cores takes minutes)
RUN_TIMEOUT = 900
PROFILE_NEW_TOKENS = 16

# What makes vLLM's Transformers backend fuse each kind (vllm 0.32, `model_executor/models/transformers/fusers`),
# said when the user's model fuses fewer than its twin.
FUSION_RULES = {
    "qkv": "vLLM fuses q/k/v when the attention module holds them as sibling nn.Linear layers on the same input, "
    "traced (torch.fx) into the attention call",
    "gate_up": "vLLM fuses gate/up when an MLP holds two sibling nn.Linear layers on the same input combined as "
    "act(gate(x)) * up(x)",
    "rms_norm": "vLLM swaps a norm for its RMSNorm kernel when the module is a leaf whose traced computation is "
    "x * rsqrt(mean(x^2) + eps) * weight",
    "moe": "vLLM replaces a block's `experts` with its fused MoE kernel when the config names the expert count, top-k "
    "and width (tf-scaffold check: TFS05x)",
}

# Why an engine's native implementation of a twin fails to load on a machine, by a line of its error
KNOWN_NATIVE_FAILURES = {
    "sglang": {
        "No module named 'vllm'": "SGLang 0.5.23's native RotaryEmbedding on a CPU takes its kernel from "
        "vllm._custom_ops, or from its CPU engine (SGLANG_USE_CPU_ENGINE=1), which needs a CPU build of sgl_kernel "
        "that no package registry ships; its Transformers backend uses the model's own rotary embedding",
    },
}


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


@dataclass
class SideSpec:
    name: str  # "transformers", "vllm", "vllm-native", ...
    kind: str  # worker side: transformers | vllm | sglang
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
    from tf_scaffold.testing.harness import detect_platform, engine_env

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
        "side": spec.kind,
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
    if spec.kind == "sglang":  # SGLang's own log line, from the process that built the model
        side.info["transformers_backend"] = "Using Transformers backend" in log_path.read_text(errors="replace")
    return side


def special_ids(config: dict) -> set[int]:
    """Every id config.json names (`*_token_id`, `*_token_index`: pad, bos, eos, the image placeholder...), top
    level and in `text_config`."""
    ids: set[int] = set()
    for cfg in (config, config.get("text_config") or {}):
        for key, value in cfg.items():
            if key.endswith(("_token_id", "_token_index", "_token_ids")):
                values = value if isinstance(value, list) else [value]
                ids.update(v for v in values if isinstance(v, int))
    return ids


def make_prompts(count: int, length: int, vocab_size: int, avoid: set[int], low: int = 4) -> list[list[int]]:
    """`count` prompts of `length` random ids (seeded), none of them special (`avoid`, and the ids below `low` where
    generated tokenizers keep theirs); equal lengths, so no side pads."""
    rng = random.Random(0)
    pool = [i for i in range(low, vocab_size) if i not in avoid] or list(range(vocab_size))
    return [[rng.choice(pool) for _ in range(length)] for _ in range(count)]


def first_difference(a: list[list[int]], b: list[list[int]]) -> str | None:
    for row, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y:
            pos = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
            return f"prompt {row}, token {pos}: {x[pos : pos + 4]} vs {y[pos : pos + 4]}"
    return None


@dataclass
class EnginePhase:
    engine: str
    python: str
    sides: list[Side] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # side name -> why it did not run
    runs: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    rounds: int = 0
    stopped: str = ""
    measure_seconds: float = 0.0
    profile: dict | None = None
    versions: dict = field(default_factory=dict)


def _tokens_check(reference: dict[int, list], name: str, batch: int, tokens: list, refname: str) -> None:
    if batch not in reference:
        reference[batch] = tokens
        return
    diff = first_difference(reference[batch], tokens)
    if diff:
        raise BenchError(
            f"{name} generated other tokens than {refname} at batch {batch} ({diff}): the timings would not compare "
            "the same work; run `tf-scaffold test` on the repo to see where the outputs part"
        )


def ratio_interval(phase: EnginePhase, num: str, den: str, batch: int | None = None) -> Interval | None:
    """Median and interval of time(num) / time(den) over rounds: at one batch size, or the geometric mean over the
    batch sizes per round. Above 1: `den` is faster (throughput den/num)."""
    if num not in phase.runs or den not in phase.runs:
        return None
    sizes = [batch] if batch is not None else sorted(phase.runs[num])
    per_size = [paired_ratios(phase.runs[num][b], phase.runs[den][b]) for b in sizes]
    rounds = min(len(r) for r in per_size)
    if rounds == 0:
        return None
    samples = [math.exp(sum(math.log(r[i]) for r in per_size) / len(per_size)) for i in range(rounds)]
    return median_interval(samples)


def tracked(phase: EnginePhase) -> tuple[Interval | None, bool]:
    """The interval that decides when to stop: the backend/native throughput ratio when there is a native side
    (precision absolute), else the speedup over transformers (precision relative to it). Returns (interval,
    relative)."""
    native = f"{phase.engine}-native"
    if native in phase.runs:
        return ratio_interval(phase, native, phase.engine), False
    return ratio_interval(phase, "transformers", phase.engine), True


def measure(phase: EnginePhase, prompts, settings: Settings, reference: dict, progress) -> None:
    """Warm up every side at every batch size, then rounds until the tracked interval settles or the budget ends."""
    names = [s.spec.name for s in phase.sides]
    for side in phase.sides:
        phase.runs[side.spec.name] = {b: [] for b in settings.batch_sizes}
    refname = "transformers" if "transformers" in names else names[0]
    # warm-up: one run per side and batch size, not timed; it also checks the tokens
    for b in settings.batch_sizes:
        for side in phase.sides:
            progress(f"{ENGINE_NAMES[phase.engine]}: warm-up, batch {b}, {side.spec.name}")
            out = _run(side, prompts[:b], settings.new_tokens)
            _tokens_check(reference, side.spec.name, b, out["tokens"], refname)
    start = time.monotonic()
    while True:
        r = phase.rounds
        for i, b in enumerate(settings.batch_sizes):
            order = phase.sides if (r + i) % 2 == 0 else phase.sides[::-1]
            for side in order:
                progress(f"{ENGINE_NAMES[phase.engine]}: round {r + 1}, batch {b}, {side.spec.name}")
                out = _run(side, prompts[:b], settings.new_tokens)
                _tokens_check(reference, side.spec.name, b, out["tokens"], refname)
                phase.runs[side.spec.name][b].append(out["seconds"])
        phase.rounds += 1
        phase.measure_seconds = time.monotonic() - start
        interval, relative = tracked(phase)
        precision = settings.precision * (interval.median if interval is not None and relative else 1)
        if interval is not None and phase.rounds >= settings.min_rounds and settled(interval, precision):
            phase.stopped = f"the interval narrowed to ±{interval.half_width:.3f} after {phase.rounds} rounds"
            return
        if phase.rounds >= settings.max_rounds:
            phase.stopped = (
                f"--max-rounds {settings.max_rounds} reached before the interval narrowed to ±{precision:.3f}"
            )
            return
        # another round must fit: the last one's length is the estimate
        per_round = phase.measure_seconds / phase.rounds
        if phase.measure_seconds + per_round > settings.budget and phase.rounds >= min(settings.min_rounds, 2):
            phase.stopped = (
                f"the time budget ({settings.budget:.0f} s) ran out after {phase.rounds} rounds, before the interval "
                f"narrowed to ±{precision:.3f}"
            )
            return


def _run(side: Side, prompts, new_tokens) -> dict:
    out = side.request({"op": "run", "prompts": prompts, "new_tokens": new_tokens})
    if "error" in out:
        raise BenchError(f"{side.spec.name} failed to generate: {out['error']}")
    return out


def profile_sides(phase: EnginePhase, prompts, settings: Settings) -> dict | None:
    """Where a decode-heavy run spends its time, in the backend and in native vLLM (the model runs in the process)."""
    if phase.engine != "vllm":
        return {"skipped": "SGLang runs the model in its scheduler process, out of reach of the worker's profiler"}
    by_name = {s.spec.name: s for s in phase.sides}
    result = {}
    for name in (phase.engine, f"{phase.engine}-native"):
        if name in by_name:
            out = by_name[name].request(
                {"op": "profile", "prompts": prompts[: max(settings.batch_sizes)], "new_tokens": PROFILE_NEW_TOKENS}
            )
            if "error" in out:
                return {"skipped": f"the profiler failed in {name}: {out['error']}"}
            result[name] = out
    if len(result) == 2:
        backend, native = (
            {o["op"]: o["self_ms"] for o in result[n]["ops"]} for n in (phase.engine, f"{phase.engine}-native")
        )
        ops = set(backend) | set(native)
        result["extra_ms"] = sorted(
            ({"op": op, "backend_ms": backend.get(op, 0.0), "native_ms": native.get(op, 0.0)} for op in ops),
            key=lambda d: d["backend_ms"] - d["native_ms"],
            reverse=True,
        )[:10]
    return result


def probe_python(python: str) -> dict:
    proc = subprocess.run([python, "-c", VERSIONS_PROBE], capture_output=True, text=True, check=False)
    if proc.returncode:
        raise EnvironmentFailure(f"cannot run {python}: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    harness = subprocess.run([python, "-c", "import tf_scaffold.bench.worker"], capture_output=True, check=False)
    versions = json.loads(proc.stdout)
    versions["harness"] = harness.returncode == 0
    return versions


def machine() -> dict:
    cpu = platform_module.processor() or platform_module.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cpus": os.cpu_count(), "os": platform_module.platform(), "gpu": None}
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except (ImportError, RuntimeError):
        pass
    return info


def plan(
    repo: Path, pythons: list[str] | None, engines: list[str] | None, native: str | None, transformers: bool = True
) -> tuple[dict, Twin, list[tuple[str, str]], dict[str, str]]:
    """Read the repo, find an interpreter per engine. Returns (config, twin, [(engine, python, its versions)],
    {engine: why not})."""
    repo = repo.resolve()
    try:
        config = json.loads((repo / "config.json").read_text())
    except (OSError, ValueError) as err:
        raise ScaffoldError(f"{repo} has no readable config.json ({err}): give a model repo's folder") from None
    if not isinstance(config, dict):
        raise ScaffoldError(f"{repo}/config.json is not a JSON object: give a model repo's folder")
    auto_map = config.get("auto_map") or {}
    if not any(name in auto_map for name in GENERATING_CLASSES):
        raise ScaffoldError(
            f"{repo.name} maps neither {' nor '.join(GENERATING_CLASSES)} in config.json's auto_map: bench times text "
            "generation, which an encoder or a base model does not do"
        )
    unknown = [e for e in engines or [] if e not in ENGINES]
    if unknown:
        raise ScaffoldError(f"unknown engine {unknown[0]!r}: choose from {', '.join(ENGINES)}")
    twin = twin_for(repo, native)
    if not transformers and twin.architecture is None:
        raise ScaffoldError(
            f"--no-transformers leaves nothing to time the backend against ({twin.reason}): keep transformers' side, "
            "or name the repo's twin with --native ARCH"
        )
    wanted = engines or list(ENGINES)
    pythons = [_resolve_python(p) for p in pythons] if pythons else [_resolve_python(None)]
    probes = {p: probe_python(p) for p in pythons}
    chosen, missing = [], {}
    for engine in wanted:
        python = next((p for p, v in probes.items() if v.get(engine)), None)
        if python is None:
            missing[engine] = (
                f"{ENGINE_NAMES[engine]} is not installed in {', '.join(pythons)}: give an environment that has it with "
                f"--python (on CPU: `tf-scaffold env {engine}-cpu .venv-{engine}`)"
            )
        elif not probes[python]["harness"]:
            missing[engine] = f"tf-scaffold is not installed in {python}: `{python} -m pip install tf-scaffold`"
        else:
            chosen.append((engine, python, probes[python]))
    if engines and missing:  # asked for by name: not running it is an error
        raise EnvironmentFailure(next(iter(missing.values())))
    if not chosen:
        raise EnvironmentFailure(" ".join(missing.values()))
    return config, twin, chosen, missing


def run_bench(
    repo: Path,
    settings: Settings,
    pythons: list[str] | None = None,
    engines: list[str] | None = None,
    native: str | None = None,
    progress=lambda text: None,
    log=lambda text: None,
    planned: tuple | None = None,
) -> dict:
    """Run the benchmark; returns everything `bench.json` holds. `planned`: what `plan` returned for these arguments."""
    repo = repo.resolve()
    config, twin, chosen, missing = planned or plan(repo, pythons, engines, native)
    text_config = config.get("text_config") or config
    vocab_size = int(text_config.get("vocab_size", 1000))
    prompts = make_prompts(max(settings.batch_sizes), settings.prompt_len, vocab_size, special_ids(config))
    phases: list[EnginePhase] = []
    reference: dict[int, list] = {}  # batch -> tokens of the first side that ran it (transformers')
    with tempfile.TemporaryDirectory(prefix="tf-scaffold-bench-") as tmp:
        work = Path(tmp)
        native_repo = native_copy(repo, work / f"{repo.name}-native", twin) if twin.architecture else None
        for engine, python, versions in chosen:
            phase = EnginePhase(engine=engine, python=python, versions=versions)
            phases.append(phase)
            specs = [SideSpec(engine, engine, engine, python, repo, backend=True)]
            if settings.transformers:
                specs.insert(0, SideSpec("transformers", "transformers", engine, python, repo, backend=False))
            else:
                phase.skipped["transformers"] = "--no-transformers"
            if native_repo is not None:
                specs.append(SideSpec(f"{engine}-native", engine, engine, python, native_repo, backend=False))
                if settings.twin_backend:
                    specs.append(SideSpec(f"{engine}-twin", engine, engine, python, native_repo, backend=True))
            else:
                phase.skipped[f"{engine}-native"] = f"no native side: {twin.reason}"
            try:
                for spec in specs:
                    progress(f"{ENGINE_NAMES[engine]}: starting {spec.name}")
                    try:
                        side = start_side(spec, settings, work)
                    except BenchError as err:
                        if spec.backend or spec.kind == "transformers":
                            raise
                        why = next((w for k, w in KNOWN_NATIVE_FAILURES.get(engine, {}).items() if k in str(err)), "")
                        phase.skipped[spec.name] = f"{err}" + (f" ({why})" if why else "")  # say so, go on
                        log(f"[yellow]{spec.name} skipped: {err}[/]")
                        continue
                    if spec.backend and side.info.get("transformers_backend") is False:
                        side.close()
                        raise BenchError(
                            f"{ENGINE_NAMES[engine]} did not use its Transformers backend for {repo.name}"
                        )
                    if spec.name.endswith("-native") and side.info.get("transformers_backend"):
                        side.close()
                        raise BenchError(
                            f"{ENGINE_NAMES[engine]} ran the twin {twin.architecture} through its "
                            "Transformers backend, not natively"
                        )
                    log(f"{spec.name}: loaded in {side.info['start_seconds']:.1f} s ({side.info.get('class') or '-'})")
                    phase.sides.append(side)
                if len(phase.sides) < 2:
                    raise BenchError(
                        f"{ENGINE_NAMES[engine]}: nothing to time the backend against ("
                        + "; ".join(f"{k}: {v}" for k, v in phase.skipped.items())
                        + "): keep transformers' side (drop --no-transformers) or name a twin with --native ARCH"
                    )
                measure(phase, prompts, settings, reference, progress)
                log(f"{ENGINE_NAMES[engine]}: {phase.stopped}")
                interval, relative = tracked(phase)
                slower = interval is not None and not relative and interval.high < 1.0  # measurably slower than native
                if settings.profile or slower:
                    progress(f"{ENGINE_NAMES[engine]}: profiling a decode-heavy run")
                    phase.profile = profile_sides(phase, prompts, settings)
            finally:
                for side in phase.sides:
                    side.close()
    return summarise(repo, config, twin, phases, missing, settings)


def _tokens_per_s(seconds: list[float], batch: int, new_tokens: int) -> dict:
    iv = median_interval(seconds)
    work = batch * new_tokens
    return {"median": work / iv.median, "low": work / iv.high, "high": work / iv.low, "runs": len(seconds)}


def summarise(repo: Path, config: dict, twin: Twin, phases: list[EnginePhase], missing, settings: Settings) -> dict:
    engines = {}
    warnings = []
    for phase in phases:
        e = phase.engine
        native = f"{e}-native"
        rows = []
        for b in settings.batch_sizes:
            row = {"batch": b}
            for name in phase.runs:
                row[name] = _tokens_per_s(phase.runs[name][b], b, settings.new_tokens)
            if "transformers" in phase.runs:
                row["speedup"] = ratio_interval(phase, "transformers", e, b).as_dict()
            if native in phase.runs:
                row["backend_vs_native"] = ratio_interval(phase, native, e, b).as_dict()
            if f"{e}-twin" in phase.runs:
                row["backend_vs_twin"] = ratio_interval(phase, f"{e}-twin", e, b).as_dict()
            rows.append(row)
        sides = {s.spec.name: {k: v for k, v in s.info.items() if k != "ready"} for s in phase.sides}
        fused = {name: info.get("fused") for name, info in sides.items() if info.get("fused")}
        if e in fused and native in fused:
            for kind, rule in FUSION_RULES.items():
                ours, theirs = fused[e].get(kind, 0), fused[native].get(kind, 0)
                if ours < theirs:
                    said = [ln for ln in sides[e].get("fusion_log", []) if kind.split("_")[0] in ln.lower()]
                    warnings.append(
                        f"{ENGINE_NAMES[e]} fused {ours} {kind} module(s) in {repo.name} but {theirs} in its twin "
                        f"{twin.architecture}: {rule}" + (f"; vLLM said: {said[0]}" if said else "")
                    )
        overall = {}
        if "transformers" in phase.runs:
            overall["speedup"] = ratio_interval(phase, "transformers", e).as_dict()
        if native in phase.runs:
            overall["backend_vs_native"] = ratio_interval(phase, native, e).as_dict()
        if f"{e}-twin" in phase.runs:
            overall["backend_vs_twin"] = ratio_interval(phase, f"{e}-twin", e).as_dict()
        engines[e] = {
            "python": phase.python,
            "versions": phase.versions,
            "mode": "compiled" if settings.compiled and not (e == "sglang" and settings.device == "cpu") else "eager",
            "sides": sides,
            "skipped": phase.skipped,
            "rounds": phase.rounds,
            "measure_seconds": phase.measure_seconds,
            "stopped": phase.stopped,
            "rows": rows,
            "overall": overall,
            "fused": fused,
            "profile": phase.profile,
            "runs": {name: {str(b): v for b, v in runs.items()} for name, runs in phase.runs.items()},
        }
    params = _parameters(repo)
    return {
        "tf_scaffold": __version__,
        "repo": repo.name,
        "architecture": (config.get("architectures") or ["?"])[0],
        "parameters": params,
        "twin": {"architecture": twin.architecture, "reason": twin.reason},
        "machine": machine(),
        "settings": {
            "batch_sizes": settings.batch_sizes,
            "new_tokens": settings.new_tokens,
            "prompt_len": settings.prompt_len,
            "dtype": settings.dtype,
            "device": settings.device,
            "threads": settings.threads,
            "cores": settings.cores,
            "budget_s": settings.budget,
            "precision": settings.precision,
            "min_rounds": settings.min_rounds,
            "max_rounds": settings.max_rounds,
            "transformers": settings.transformers,
        },
        "method": (
            "each side in its own process, loaded once (start-up not timed); one warm-up run per side and batch size, "
            "not timed; then rounds, each running every side once per batch size back to back in alternating order; "
            f"a run generates exactly {settings.new_tokens} greedy tokens (EOS ignored) for each of the batch's "
            f"prompts of {settings.prompt_len} random ids, token ids in and out; tokens/s = batch x new tokens / "
            "median seconds; ratios are per round (paired runs), medians with a distribution-free 95 % interval"
        ),
        "engines": engines,
        "not_run": missing,
        "warnings": warnings,
    }


def _parameters(repo: Path) -> int | None:
    """Parameter count read from the safetensors headers (no weights loaded)."""
    import struct

    total = 0
    files = sorted(repo.glob("*.safetensors"))
    if not files:
        return None
    for path in files:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        for name, meta in header.items():
            if name != "__metadata__":
                total += math.prod(meta["shape"])
    return total
