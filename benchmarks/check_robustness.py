"""`check` before and after, on the corpus of tests/malformed.py: malformed inputs (must be findings: no crash, no
hang), correct code of other styles (must give no false error), breaks behind a wrong auto_map (must be found).

    python benchmarks/check_robustness.py [--before GIT_REV]

"Before" is the single-file checker of GIT_REV (default: the last commit that had scaffold/conformance/checks.py),
run the same way, each case in a subprocess with a 30 s limit. Prints one table row per case and the wall time of
the static check.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

OLD_RUNNER = """
import json, sys, importlib.util
spec = importlib.util.spec_from_file_location("old_checks", sys.argv[1])
mod = importlib.util.module_from_spec(spec); sys.modules["old_checks"] = mod; spec.loader.exec_module(mod)
report = mod.check(__import__("pathlib").Path(sys.argv[2]))
print(report.to_json())
"""


def run(cmd: list[str]) -> tuple[str, set[str], set[str], float]:
    """(outcome, error ids, all ids, seconds) of one check in a subprocess."""
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "hang", set(), set(), 30.0
    seconds = time.monotonic() - start
    try:
        payload = json.loads(proc.stdout)
    except ValueError:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"crash ({last[:70]})", set(), set(), seconds
    findings = payload.get("findings", [])
    if any(f["severity"] == "internal-error" for f in findings):
        return "internal error", set(), set(), seconds
    errors = {f["id"] for f in findings if f["severity"] == "error"}
    return "ok", errors, {f["id"] for f in findings}, seconds


def verdict(case, kind: str, outcome: str, errors: set[str], ids: set[str]) -> str:
    if outcome != "ok":
        return outcome
    if kind == "correct":
        return f"false error {', '.join(sorted(errors))}" if errors else "ok"
    missing = set(case.expected) - (errors if kind == "hidden" else ids)
    return f"missed {', '.join(sorted(missing))}" if missing else "ok"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="33f2c28", help="git revision with the single-file checker")
    args = parser.parse_args()

    from malformed import CORRECT, HIDDEN_BREAKS, MALFORMED, make

    from tf_scaffold import commands

    work = Path(tempfile.mkdtemp(prefix="check-robustness-"))
    old = work / "old_checks.py"
    old.write_text(
        subprocess.run(
            ["git", "show", f"{args.before}:scaffold/conformance/checks.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    source = commands.new({"name": "acme-lm"}, work / "gen").path
    rows, totals = [], {"before": 0, "after": 0}
    for kind, cases in (("malformed", MALFORMED), ("correct", CORRECT), ("hidden", HIDDEN_BREAKS)):
        for case in cases:
            repo = make(source, work, case)
            before = run([sys.executable, "-c", OLD_RUNNER, str(old), str(repo)])
            after = run([sys.executable, "-m", "tf_scaffold", "check", str(repo), "--json", "--no-lint"])
            b, a = verdict(case, kind, *before[:3]), verdict(case, kind, *after[:3])
            totals["before"] += b != "ok"
            totals["after"] += a != "ok"
            rows.append(f"| {kind} | {case.what} | {b} | {a} | {after[3]:.2f} s |")
    print("| kind | case | before | after | after: wall time |\n|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nproblems: before {totals['before']}, after {totals['after']} (of {len(rows)} cases)")
    return 1 if totals["after"] else 0


if __name__ == "__main__":
    sys.exit(main())
