"""The speed figures the README and docs/bench show: `tf-scaffold bench` on freshly generated repos.

    python benchmarks/bench_engines.py [--vllm .venv-vllm/bin/python] [--sglang .venv-sglang/bin/python]
                                       [--out docs/bench] [--only default,small,small-ratio,...]

| run            | repo                               | engines                  | what it shows                           |
|----------------|------------------------------------|--------------------------|-----------------------------------------|
| default        | `new acme-lm` (tiny, 0.5M)         | vLLM, SGLang             | the seeds' table for the default repo   |
| small          | `new bench-small --preset small`   | vLLM, SGLang (eager)     | the table and backend/native at ~100M   |
| small-ratio    | the same                           | vLLM, engines only       | backend/native at ~100M, eager          |
| small-compiled | the same                           | vLLM, engines only       | backend/native with torch.compile       |
| small-twin     | the same                           | vLLM, + Llama via backend| the repo's code against Llama's, both   |
|                |                                    |                          | through the Transformers backend        |
| moe            | `new acme-moe --moe`               | vLLM, 2 short rounds     | fused layers against Qwen3-MoE's        |
| multimodal     | `new acme-vl --multimodal`         | vLLM, 2 short rounds     | fused layers (no in-library twin)       |

Each run writes bench.json, bench.md and bench.png into OUT/RUN. The engines take the machine's cores in turn, one
run at a time: run nothing else meanwhile, the figures are timings.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATIO = ["--no-transformers", "--batch-sizes", "8,32", "--new-tokens", "32"]
SHORT = ["--batch-sizes", "4", "--new-tokens", "16", "--min-rounds", "2", "--max-rounds", "2"]
RUNS = {
    # name: (new options, engines, bench options)
    "default": ([], ["vllm", "sglang"], []),
    "small": (["--preset", "small"], ["vllm", "sglang"], []),
    # the backend/native ratio at ~100M, eager and compiled: the engines' sides only and shorter runs, so that many
    # rounds fit the budget (transformers' generate() at batch 32 takes most of a full round)
    "small-ratio": (["--preset", "small"], ["vllm"], RATIO),
    "small-compiled": (["--preset", "small"], ["vllm"], [*RATIO, "--compiled"]),
    # the repo's code against transformers' own Llama, both through the backend
    "small-twin": (["--preset", "small"], ["vllm"], ["--no-transformers", "--twin-backend"]),
    "moe": (["--moe"], ["vllm"], SHORT),
    "multimodal": (["--multimodal"], ["vllm"], SHORT),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vllm", default=str(ROOT / ".venv-vllm/bin/python"), help="interpreter with vLLM")
    parser.add_argument("--sglang", default=str(ROOT / ".venv-sglang/bin/python"), help="interpreter with SGLang")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/bench")
    parser.add_argument("--only", default=",".join(RUNS), help="comma-separated runs")
    parser.add_argument("--budget", default="480", help="seconds of measuring per engine and run")
    args = parser.parse_args()
    pythons = {"vllm": args.vllm, "sglang": args.sglang}
    tool = [sys.executable, "-m", "tf_scaffold"]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            new_options, engines, bench_options = RUNS[name]
            repo = Path(tmp) / f"bench-{name}"
            if not repo.exists():
                subprocess.run([*tool, "new", repo.name, *new_options, "--no-input", "-o", tmp], check=True)
            command = [*tool, "bench", str(repo), "--out", str(args.out / name), "--force", "--budget", args.budget]
            command += [f"--engines={','.join(engines)}", *bench_options]
            for engine in engines:
                command += ["--python", pythons[engine]]
            start = time.monotonic()
            print(f"::: {name}: {' '.join(command[2:])}", flush=True)
            sys.stdout.flush()
            rc = subprocess.run(command, check=False).returncode
            print(f"::: {name}: {'done' if rc == 0 else f'FAILED (exit {rc})'} in {time.monotonic() - start:.0f} s")
            failed += rc != 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
