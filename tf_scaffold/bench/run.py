"""`tf-scaffold bench`: transformers' `generate()` against each engine's Transformers backend on the same prompts,
and the engine's native implementation of the repo's in-library twin on the same weights.

Each side runs in a process of its own, started once (start-up is reported, not timed) and kept for the whole
measurement. One round runs every side once per batch size, adjacent in time, in alternating order; each run is one
generation of exactly `new_tokens` greedy tokens for every prompt of the batch. Ratios are taken between runs of the
same round (paired), rounds repeat until the ratio's 95 % interval is as narrow as asked or the time budget is spent.
Every side gets the same cores and thread count. Tokens must be equal across all sides: a mismatch is an error.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tf_scaffold.bench.measure import EnginePhase, measure, profile_sides, tracked
from tf_scaffold.bench.plan import make_prompts, plan, special_ids
from tf_scaffold.bench.settings import ENGINE_NAMES, BenchError, Settings
from tf_scaffold.bench.sides import SideSpec, start_side
from tf_scaffold.bench.summary import summarise
from tf_scaffold.bench.twins import native_copy

__all__ = ["BenchError", "Settings", "plan", "run_bench"]

# Why an engine's native implementation of a twin fails to load on a machine, by a line of its error
KNOWN_NATIVE_FAILURES = {
    "sglang": {
        "No module named 'vllm'": "SGLang 0.5.23's native RotaryEmbedding on a CPU takes its kernel from "
        "vllm._custom_ops, or from its CPU engine (SGLANG_USE_CPU_ENGINE=1), which needs a CPU build of sgl_kernel "
        "that no package registry ships; its Transformers backend uses the model's own rotary embedding",
    },
}


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
                        if spec.backend or spec.worker == "transformers":
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
