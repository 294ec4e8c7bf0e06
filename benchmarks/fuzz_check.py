"""Fuzz `tf-scaffold check` (static) with hypothesis: config.json, processor_config.json, safetensors headers and
modeling source text, each mutated at random on a generated repo.

    python benchmarks/fuzz_check.py [--examples 10000]

Prints, per surface, the examples run, the crashes (an exception out of `check`, or an internal-error finding: a rule
that raised), the slowest example and its time. Exit 1 on any crash.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000, help="Examples in all (split over the surfaces).")
    args = parser.parse_args()

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from test_check_robustness import CONFIG_KEYS, JSON

    from tf_scaffold import commands
    from tf_scaffold.conformance import check

    root = Path(tempfile.mkdtemp(prefix="fuzz-check-"))
    repo = commands.new({"name": "fuzz-lm", "weights": False}, root).path
    pristine = {p.name: p.read_bytes() for p in repo.iterdir() if p.is_file()}
    modeling = next(repo.glob("modeling_*.py"))
    per_surface = max(1, args.examples // 4)
    stats: dict[str, dict] = {}

    def restore() -> None:
        for name in ("processor_config.json", "model.safetensors"):
            (repo / name).unlink(missing_ok=True)
        for name, data in pristine.items():
            (repo / name).write_bytes(data)

    def run(surface: str, describe: str) -> None:
        entry = stats.setdefault(surface, {"examples": 0, "crashes": [], "slowest": (0.0, "")})
        start = time.perf_counter()
        try:
            report = check(repo, lint=False)
            json.loads(report.to_json())
            crash = "\n".join(map(str, report.internal_errors)) or None
        except Exception:  # noqa: BLE001 - that is what this counts
            crash = traceback.format_exc(limit=3)
        seconds = time.perf_counter() - start
        entry["examples"] += 1
        if crash:
            entry["crashes"].append((describe[:200], crash[:400]))
        if seconds > entry["slowest"][0]:
            entry["slowest"] = (seconds, describe[:120])
        restore()

    fuzz = settings(max_examples=per_surface, deadline=None, suppress_health_check=list(HealthCheck), database=None)

    @fuzz
    @given(
        changes=st.dictionaries(CONFIG_KEYS, JSON, max_size=4),
        extra=st.dictionaries(st.text(max_size=8), JSON, max_size=3),
    )
    def config_json(changes, extra):
        cfg = json.loads(pristine["config.json"])
        cfg.update(changes)
        if isinstance(cfg.get("auto_map"), dict):
            cfg["auto_map"].update(extra)
        (repo / "config.json").write_text(json.dumps(cfg))
        run("config.json", json.dumps(changes | {"auto_map+": extra}))

    @fuzz
    @given(payload=JSON)
    def processor_config(payload):
        (repo / "processor_config.json").write_text(json.dumps(payload))
        run("processor_config.json", json.dumps(payload))

    @fuzz
    @given(payload=JSON, raw=st.binary(max_size=64), use_raw=st.booleans())
    def safetensors_header(payload, raw, use_raw):
        data = raw if use_raw else json.dumps(payload).encode()
        (repo / "model.safetensors").write_bytes(struct.pack("<Q", len(data)) + data)
        run("safetensors header", repr(raw) if use_raw else json.dumps(payload))

    text = pristine[modeling.name].decode()

    @fuzz
    @given(junk=st.text(max_size=300), cut=st.integers(0, len(text)), drop=st.integers(0, 400))
    def source_text(junk, cut, drop):
        modeling.write_text(text[:cut] + junk + text[cut + drop :])
        run("modeling source", f"at {cut}, drop {drop}: {junk!r}")

    start = time.monotonic()
    for surface in (config_json, processor_config, safetensors_header, source_text):
        surface()
    total = sum(s["examples"] for s in stats.values())
    crashes = sum(len(s["crashes"]) for s in stats.values())
    print(f"{total} examples in {time.monotonic() - start:.0f} s, {crashes} crashes")
    for surface, s in stats.items():
        seconds, describe = s["slowest"]
        print(
            f"  {surface:22s} {s['examples']:6d} examples, {len(s['crashes'])} crashes, slowest {seconds * 1000:.0f} ms: {describe}"
        )
        for describe, crash in s["crashes"][:3]:
            print(f"    CRASH on {describe}\n      {crash}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
