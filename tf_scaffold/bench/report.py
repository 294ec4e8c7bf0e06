"""`bench`'s outputs: bench.json (everything measured), bench.md (the table, with how it was measured) and bench.png
(tokens/s per batch size, and the backend/native ratio with its interval)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from tf_scaffold.bench.measure import PROFILE_NEW_TOKENS
from tf_scaffold.bench.settings import ENGINE_NAMES

SIDE_LABELS = {"transformers": "transformers generate()"}


def side_label(name: str) -> str:
    if name in SIDE_LABELS:
        return SIDE_LABELS[name]
    engine, _, other = name.partition("-")
    what = {"native": "native twin", "twin": "twin via Transformers backend"}.get(other, "Transformers backend")
    return f"{ENGINE_NAMES.get(engine, engine)} {what}"


def _iv(d: dict | None, digits: int = 2) -> str:
    if not d:
        return "-"
    return f"{d['median']:.{digits}f} [{d['low']:.{digits}f}, {d['high']:.{digits}f}]"


def _tps(d: dict | None) -> str:
    return f"{d['median']:.0f}" if d else "-"


def label(result: dict) -> str:
    m, s = result["machine"], result["settings"]
    where = m["gpu"] or f"{m['cpu']}, {s['threads']} threads on cores {','.join(map(str, s['cores']))}"
    return f"{where}; {s['dtype']}"


def versions_line(engine: dict) -> str:
    v = engine["versions"]
    return ", ".join(f"{k} {v[k]}" for k in ("vllm", "sglang", "transformers", "torch") if v.get(k))


def markdown(result: dict) -> str:
    params = f"{result['parameters'] / 1e6:.1f}M parameters" if result["parameters"] else "parameters unknown"
    lines = [
        f"# `tf-scaffold bench` {result['repo']} ({result['architecture']}, {params})",
        "",
        f"Machine: {label(result)}. Twin: {result['twin']['architecture'] or 'none'} ({result['twin']['reason']}).",
        "",
    ]
    for engine, e in result["engines"].items():
        name = ENGINE_NAMES[engine]
        native = f"{engine}-native"
        has_native, has_twin = native in e["runs"], f"{engine}-twin" in e["runs"]
        lines += [
            f"## {name} ({e['mode']}; {versions_line(e)})",
            "",
            "| batch | transformers tok/s | backend tok/s | speedup | "
            + ("native tok/s | backend / native |" if has_native else "")
            + ("twin via backend tok/s | backend / twin via backend |" if has_twin else ""),
            "|---:|---:|---:|---:|" + ("---:|---:|" if has_native else "") + ("---:|---:|" if has_twin else ""),
        ]
        for row in e["rows"]:
            cells = [str(row["batch"]), _tps(row.get("transformers")), _tps(row.get(engine)), _iv(row.get("speedup"))]
            if has_native:
                cells += [_tps(row.get(native)), _iv(row.get("backend_vs_native"), 3)]
            if has_twin:
                cells += [_tps(row.get(f"{engine}-twin")), _iv(row.get("backend_vs_twin"), 3)]
            lines.append("| " + " | ".join(cells) + " |")
        overall = e["overall"]
        cells = ["all", "", "", _iv(overall.get("speedup"))]
        if has_native:
            cells += ["", _iv(overall.get("backend_vs_native"), 3)]
        if has_twin:
            cells += ["", _iv(overall.get("backend_vs_twin"), 3)]
        lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"{e['rounds']} rounds in {e['measure_seconds']:.0f} s: {e['stopped']}."]
        coverage = min(iv["coverage"] for iv in overall.values()) if overall else 1.0
        if coverage < 0.95:
            lines.append(
                f"With {e['rounds']} rounds the brackets are the lowest and highest ratio, which hold the median with "
                f"probability {coverage:.0%} only (6 rounds give 95 %)."
            )
        for side, why in e["skipped"].items():
            lines.append(f"- {side_label(side)} did not run: {why}")
        for side, info in e["sides"].items():
            lines.append(
                f"- {side_label(side)}: loaded in {info['start_seconds']:.1f} s (not timed)"
                + (f", fused {_fused(info['fused'])}" if info.get("fused") else "")
            )
        if e.get("profile"):
            lines += ["", *profile_lines(engine, e["profile"])]
        lines.append("")
    lines += [
        "Speedup: the engine's Transformers backend over transformers' `generate()`; backend / native: the backend's "
        "throughput over the engine's own implementation of the twin, on the same weights. Both are medians of "
        "per-round ratios with their 95 % interval in brackets; tokens/s is from the median run. Twin via backend "
        "(with --twin-backend): transformers' own class of the twin through the same Transformers backend, so "
        "backend / twin via backend is what the repo's code costs over the in-library model, the backend's own "
        "cost aside.",
        "",
        f"How: {result['method']}.",
    ]
    if result["not_run"]:
        lines += ["", *(f"- {ENGINE_NAMES[k]} did not run: {v}" for k, v in result["not_run"].items())]
    if result["warnings"]:
        lines += ["", "Warnings:", *(f"- {w}" for w in result["warnings"])]
    return "\n".join(lines) + "\n"


def _fused(fused: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in fused.items())


def profile_lines(engine: str, profile: dict) -> list[str]:
    if "skipped" in profile:
        return [f"Profile: not taken: {profile['skipped']}."]
    backend, native = profile.get(engine, {}), profile.get(f"{engine}-native", {})
    lines = [
        f"Profile of one run ({PROFILE_NEW_TOKENS} tokens at the largest batch) under torch's profiler: "
        + (
            f"operators took {backend['total_ms']:.0f} ms in the backend, {native['total_ms']:.0f} ms in native. "
            if "total_ms" in backend and "total_ms" in native
            else ""
        )
        + "The operators where the backend spends the most time over native:"
    ]
    lines += ["", "| operator | backend ms | native ms |", "|---|---:|---:|"]
    for op in profile.get("extra_ms", []):
        lines.append(f"| `{op['op']}` | {op['backend_ms']:.1f} | {op['native_ms']:.1f} |")
    return lines


def chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = result["engines"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    sizes = result["settings"]["batch_sizes"]
    series = [
        (e, name)
        for e, data in engines.items()
        for name in data["runs"]
        if name != "transformers" or e == next(iter(engines))
    ]
    width = 0.8 / max(len(series), 1)
    for i, (engine, name) in enumerate(series):
        rows = engines[engine]["rows"]
        medians = [row[name]["median"] for row in rows]
        errors = [
            [row[name]["median"] - row[name]["low"] for row in rows],
            [row[name]["high"] - row[name]["median"] for row in rows],
        ]
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(sizes))]
        axes[0].bar(xs, medians, width, yerr=errors, capsize=2, label=side_label(name))
    axes[0].set_xticks(range(len(sizes)), [str(b) for b in sizes])
    axes[0].set_xlabel("batch size")
    axes[0].set_ylabel("generated tokens / s")
    params = f", {result['parameters'] / 1e6:.0f}M parameters" if result.get("parameters") else ""
    axes[0].set_title(f"{result['repo']}{params}: throughput (median, 95 % interval)", fontsize=10)
    axes[0].legend(fontsize=8)
    for j, (engine, data) in enumerate(engines.items()):
        rows = [row for row in data["rows"] if "backend_vs_native" in row]
        if not rows:
            continue
        ivs = [row["backend_vs_native"] for row in rows]
        xs = [k + (j - (len(engines) - 1) / 2) * 0.2 for k in range(len(rows))]
        axes[1].errorbar(
            xs,
            [iv["median"] for iv in ivs],
            yerr=[[iv["median"] - iv["low"] for iv in ivs], [iv["high"] - iv["median"] for iv in ivs]],
            fmt="o",
            capsize=4,
            label=ENGINE_NAMES[engine],
        )
    axes[1].axhspan(0.98, 1.02, color="green", alpha=0.15, label="±2 %")
    axes[1].axhline(1.0, color="grey", lw=0.8)
    axes[1].set_xticks(range(len(sizes)), [str(b) for b in sizes])
    axes[1].set_xlabel("batch size")
    axes[1].set_ylabel("backend / native throughput")
    axes[1].set_title("Transformers backend vs the engine's native twin")
    axes[1].legend(fontsize=8)
    versions = "; ".join(f"{ENGINE_NAMES[k]} ({e['mode']}): {versions_line(e)}" for k, e in engines.items())
    fig.suptitle(f"{label(result)}\n{versions}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: dict, out: Path) -> list[Path]:
    """Write the three files into `out` (created); each is written whole, or not at all."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in (
        # bench.json last: its presence marks a finished bench (`--out` refuses to replace one without --force)
        ("bench.png", lambda p: chart(result, p)),
        ("bench.md", lambda p: p.write_text(markdown(result))),
        ("bench.json", lambda p: p.write_text(json.dumps(result, indent=2) + "\n")),
    ):
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=Path(name).suffix)
        os.close(fd)
        try:
            make(Path(tmp))
            os.replace(tmp, out / name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        written.append(out / name)
    return written
