"""Measuring one engine's sides: warm-up, then rounds in alternating order, each run checked token for token against
the first side's; the rounds stop when the tracked ratio's interval is narrow enough, the rounds or the budget end.
A profile of a decode-heavy run where the backend is measurably slower than native."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from tf_scaffold.bench.settings import ENGINE_NAMES, BenchError, Settings
from tf_scaffold.bench.sides import Side
from tf_scaffold.bench.stats import Interval, median_interval, paired_ratios, settled

PROFILE_NEW_TOKENS = 16


def token_mismatch(a: list[list[int]], b: list[list[int]]) -> str | None:
    """Where two batches of generated tokens first part (prompt, token and the next few ids of each), or None."""
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
    diff = token_mismatch(reference[batch], tokens)
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
