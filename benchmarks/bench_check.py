"""Wall time of `tf-scaffold check` (static; target <= 1 s, no torch import) and of a generated repo's own harness
(target <= 60 s on 2 cores, tensor-parallel run included).

    python benchmarks/bench_check.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.perf_counter() - t0, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("tf-scaffold"))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([exe, "new", "acme-lm", "-o", tmp, "--no-input"], check=True, capture_output=True)
        repo = Path(tmp) / "acme-lm"
        static = [timed([exe, "check", str(repo)])[0] for _ in range(args.repeats)]
        print(
            f"tf-scaffold check (static): median {statistics.median(static):.2f} s over {args.repeats} runs (target <= 1 s)"
        )
        dynamic, _ = timed([exe, "check", str(repo), "--trust-remote-code"])
        print(f"tf-scaffold check --trust-remote-code (TP run included): {dynamic:.1f} s")
        harness, out = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=repo)
        summary = [line for line in out.splitlines() if " passed" in line][-1]
        print(f"generated harness (pytest, CPU): {harness:.1f} s (target <= 60 s): {summary.strip('= ')}")


if __name__ == "__main__":
    main()
