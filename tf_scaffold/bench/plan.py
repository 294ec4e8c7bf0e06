"""Planning a bench before anything starts: the repo's config and twin, an interpreter per engine (and the versions
it has), the prompts every side gets, and the machine the figures come from."""

from __future__ import annotations

import json
import os
import platform as platform_module
import random
import subprocess
from pathlib import Path

from tf_scaffold.bench.settings import ENGINE_NAMES
from tf_scaffold.bench.twins import Twin, twin_for
from tf_scaffold.engines.run import ENGINES, VERSIONS_PROBE, _resolve_python
from tf_scaffold.errors import EnvironmentFailure, ScaffoldError
from tf_scaffold.facts import GENERATING_AUTO_CLASSES


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
    if not any(name in auto_map for name in GENERATING_AUTO_CLASSES):
        raise ScaffoldError(
            f"{repo.name} maps neither {' nor '.join(GENERATING_AUTO_CLASSES)} in config.json's auto_map: bench times text "
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
