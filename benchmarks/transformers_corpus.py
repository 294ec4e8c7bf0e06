"""A real-world regression corpus for `check`: every model folder of the installed transformers, checked statically as
if it were a Hub custom-code repo.

    python benchmarks/transformers_corpus.py [--only llama,qwen2] [--out corpus.json]

Each folder's configuration and modeling files are copied the way an author copies a model out of transformers to
publish it (relative imports made absolute, `transformers.models.<folder>.*` for the folder's other modules); a
config.json is written from the config class's defaults, with `architectures` and an `auto_map` for the config, the
base model and the head. Then `check` runs on it (static, no import of the copied code).

Prints: folders checked, crashes (an exception out of `check`, or an internal-error finding), the error histogram by
rule, how many models vLLM's Transformers backend accepts (a `*ForCausalLM` or `*ForConditionalGeneration` whose
model sets `_supports_attention_backend`) and how many of them are clean but for TFS003 ("native to transformers", true of every
copied folder), the ones that are not, and the wall time (median, max).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

HEADS = ("ForCausalLM", "ForConditionalGeneration")


def _absolute_imports(text: str, folder: str, copied: set[str]) -> str:
    """The relative imports of a file of transformers/models/<folder>/, as a Hub repo must write them."""

    def same_folder(match: re.Match) -> str:
        module = match.group(1)
        return match.group(0) if module in copied else f"from transformers.models.{folder}.{module} import"

    text = re.sub(r"^from \.\.\.([\w.]*) import", r"from transformers.\1 import", text, flags=re.M)
    text = re.sub(r"^from \.\.(\w[\w.]*) import", r"from transformers.models.\1 import", text, flags=re.M)
    text = text.replace("from transformers. import", "from transformers import")
    return re.sub(r"^from \.(\w+) import", same_folder, text, flags=re.M)


def _exports(path: Path) -> list[str]:
    match = re.search(r"^__all__ = \[(.*?)\]", path.read_text(encoding="utf-8"), re.S | re.M)
    return re.findall(r'"(\w+)"', match.group(1)) if match else []


def make_repo(models: Path, folder: str, work: Path) -> tuple[Path | None, str | None, bool]:
    """(repo, head class, whether vLLM's backend would take it) for one model folder, or (None, ...) without files."""
    import transformers

    modeling, configuration = models / folder / f"modeling_{folder}.py", models / folder / f"configuration_{folder}.py"
    if not modeling.is_file() or not configuration.is_file():
        return None, None, False
    repo = work / folder
    repo.mkdir(parents=True, exist_ok=True)
    processing = models / folder / f"processing_{folder}.py"
    sources = [path for path in (modeling, configuration, processing) if path.is_file()]
    copied = {path.stem for path in sources}
    for path in sources:
        (repo / path.name).write_text(_absolute_imports(path.read_text(encoding="utf-8"), folder, copied))
    classes = _exports(modeling)
    # The model's own config is the shortest name (Gemma3Config, not Gemma3TextConfig); a composite one (with a
    # text_config) goes with the ForConditionalGeneration head, a plain one with ForCausalLM.
    config_class = min((c for c in _exports(configuration) if c.endswith("Config")), key=len, default=None)
    try:
        cfg = getattr(transformers, config_class)().to_dict() if config_class else {}
    except Exception:  # noqa: BLE001 - a config that needs arguments: the class name is enough to check
        cfg = {}
    heads = HEADS[::-1] if "text_config" in cfg else HEADS
    head = next((c for suffix in heads for c in classes if c.endswith(suffix)), None)
    base = min(
        (c for c in classes if c.endswith("Model") and not c.endswith("PreTrainedModel")), key=len, default=None
    )
    processors = [c for c in _exports(processing) if c.endswith("Processor")] if processing.is_file() else []
    processor = min(processors, key=len, default=None)
    cfg["architectures"] = [head or base or "Unknown"]
    auto_map = {}
    if config_class:
        auto_map["AutoConfig"] = f"{configuration.stem}.{config_class}"
    if base:
        auto_map["AutoModel"] = f"{modeling.stem}.{base}"
    if head:
        key = "AutoModelForCausalLM" if head.endswith("ForCausalLM") else "AutoModelForImageTextToText"
        auto_map[key] = f"{modeling.stem}.{head}"
    if processor and head and head.endswith("ForConditionalGeneration"):
        auto_map["AutoProcessor"] = f"{processing.stem}.{processor}"
    cfg["auto_map"] = auto_map
    (repo / "config.json").write_text(json.dumps(cfg, default=str))
    accepted = False
    if head:
        try:
            accepted = bool(getattr(getattr(transformers, head), "_supports_attention_backend", False))
        except Exception:  # noqa: BLE001 - a class transformers cannot import here: not counted as accepted
            accepted = False
    return repo, head, accepted


def check_folder(models: Path, folder: str, work: Path) -> dict | None:
    from tf_scaffold.conformance import check

    repo, head, accepted = make_repo(models, folder, work)
    if repo is None:
        return None
    start = time.perf_counter()
    try:
        report = check(repo, lint=False)
        crash = "; ".join(f.message for f in report.internal_errors) or None
        errors = sorted({f.id for f in report.errors})
        messages = [f"{f.id} {f.location}: {f.message}" for f in report.errors if f.id != "TFS003"]
    except Exception as err:  # noqa: BLE001 - that is what this counts
        crash, errors, messages = f"{type(err).__name__}: {err}", [], []
    return {
        "folder": folder,
        "head": head,
        "accepted": accepted,
        "seconds": time.perf_counter() - start,
        "crash": crash,
        "errors": errors,
        "messages": messages,
    }


def models_root() -> Path:
    from tf_scaffold.installed import transformers_root

    return transformers_root() / "models"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="Comma-separated model folders (default: all).")
    parser.add_argument("--out", type=Path, help="Write every result as JSON here.")
    args = parser.parse_args()

    import transformers

    models = models_root()
    folders = args.only.split(",") if args.only else sorted(p.name for p in models.iterdir() if p.is_dir())
    work = Path(tempfile.mkdtemp(prefix="transformers-corpus-"))
    results = [r for f in folders if (r := check_folder(models, f, work)) is not None]
    crashes = [r for r in results if r["crash"]]
    histogram = Counter(i for r in results for i in r["errors"])
    accepted = [r for r in results if r["accepted"]]
    unclean = [r for r in accepted if set(r["errors"]) - {"TFS003"}]
    times = [r["seconds"] for r in results]
    print(f"transformers {transformers.__version__}: {len(results)} model folders checked statically")
    print(f"crashes: {len(crashes)}")
    for r in crashes[:10]:
        print(f"  {r['folder']}: {r['crash'][:200]}")
    print("errors by rule (folders): " + ", ".join(f"{k} {v}" for k, v in sorted(histogram.items())))
    print(
        f"models vLLM's Transformers backend accepts: {len(accepted)}, clean but for TFS003: {len(accepted) - len(unclean)}"
    )
    for r in unclean:
        print(f"  {r['folder']} ({r['head']}): {' | '.join(r['messages'][:3])}")
    print(
        f"time per folder: median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
        f"({max(results, key=lambda r: r['seconds'])['folder']})"
    )
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
