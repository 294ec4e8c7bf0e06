"""What `bench.json` holds: tokens/s and ratio intervals per batch size and overall, the fused layers against the twin's
(with what makes vLLM fuse each kind, when the repo fuses fewer), the settings, the method and the machine."""

from __future__ import annotations

import json
import math
from pathlib import Path

from tf_scaffold import __version__
from tf_scaffold.bench.measure import EnginePhase, ratio_interval
from tf_scaffold.bench.plan import machine
from tf_scaffold.bench.settings import ENGINE_NAMES, Settings
from tf_scaffold.bench.stats import median_interval
from tf_scaffold.bench.twins import Twin

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
