"""CPU forward time of a generated model vs transformers' own LlamaForCausalLM on the same weights.

    python benchmarks/bench_forward.py [--preset small] [--batch 4] [--seq 256] [--repeats 7]

Both models load the same safetensors; runs are interleaved (ours, llama, ours, llama, ...) so drift in machine load
hits both alike. Prints the median seconds per forward and the ratio ours / llama (target <= 1.02), for eager and sdpa.
Also times `tf-scaffold new` against `python -c "import torch, transformers"` (target ratio <= 1.5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def llama_config(repo: Path):
    from test_llama_equivalence import llama_config as from_repo  # the suite's mapping of our config onto Llama's

    return from_repo(repo)


def bench_forward(repo: Path, batch: int, seq: int, repeats: int, threads: int, impls: list[str]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    torch.set_num_threads(threads)
    ids = torch.randint(3, 1000, (batch, seq), generator=torch.Generator().manual_seed(0))
    for impl in impls:
        ours = AutoModelForCausalLM.from_pretrained(repo, trust_remote_code=True, attn_implementation=impl).eval()
        ref = LlamaForCausalLM.from_pretrained(repo, config=llama_config(repo), attn_implementation=impl).eval()
        times = {"ours": [], "llama": []}
        with torch.inference_mode():
            for model in (ours, ref):  # warm-up
                model(input_ids=ids, use_cache=False)
            for i in range(repeats):
                pair = (("ours", ours), ("llama", ref))
                for key, model in pair if i % 2 == 0 else pair[::-1]:  # alternate who goes first
                    t0 = time.perf_counter()
                    logits = model(input_ids=ids, use_cache=False).logits
                    times[key].append(time.perf_counter() - t0)
                    if key == "llama":
                        out = logits
            same = torch.equal(ours(input_ids=ids, use_cache=False).logits, out)
        a, b = statistics.median(times["ours"]), statistics.median(times["llama"])
        print(
            f"forward[{impl}] batch {batch}x{seq}: ours {a * 1000:.1f} ms, LlamaForCausalLM {b * 1000:.1f} ms, "
            f"ratio {a / b:.3f} (target <= 1.02), logits identical: {same}"
        )


def bench_new(repeats: int) -> None:
    exe = Path(sys.executable).with_name("tf-scaffold")
    new_times, import_times = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run([str(exe), "new", "acme-lm", "-o", tmp, "--no-input"], check=True, capture_output=True)
            new_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch, transformers"], check=True)
        import_times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import transformers.modeling_utils, transformers.generation"], check=True)
    floor = time.perf_counter() - t0
    a, b = statistics.median(new_times), statistics.median(import_times)
    print(
        f"tf-scaffold new (tiny, weights): {a:.2f} s; import torch, transformers: {b:.2f} s; ratio {a / b:.2f} "
        f"(target <= 1.5); importing transformers' modeling stack alone: {floor:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--impl", action="append", choices=["eager", "sdpa"], help="default: both")
    parser.add_argument("--skip-new", action="store_true")
    args = parser.parse_args()

    from tf_scaffold import commands

    with tempfile.TemporaryDirectory() as tmp:
        repo = commands.new({"name": "bench-lm", "preset": args.preset}, Path(tmp)).path
        print(f"model: preset {args.preset} ({repo.name})")
        bench_forward(repo, args.batch, args.seq, args.repeats, args.threads, args.impl or ["eager", "sdpa"])
    if not args.skip_new:
        bench_new(5)


if __name__ == "__main__":
    main()
