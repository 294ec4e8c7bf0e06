"""`tf-scaffold check`: the unmutated repo is clean; every mutation is caught by its check id; bad repos are
findings, never crashes; static mode never runs the repo's code."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from malformed import ENCODER_CORRECT, ENCODER_MALFORMED
from malformed import make as make_case
from mutations import (
    CLASSIFIER_MUTATIONS,
    ENCODER_MUTATIONS,
    MM_MUTATIONS,
    MOE_MUTATIONS,
    MUTATIONS,
    WINDOW_MUTATIONS,
    make,
)
from typer.testing import CliRunner

from tf_scaffold.cli import app
from tf_scaffold.conformance import DYNAMIC, RULES, STATIC, check, ids
from tf_scaffold.conformance import static_checks as run_static


def static_checks(repo):
    return run_static(repo)[0]


runner = CliRunner()


@pytest.fixture(scope="module")
def corpus(tiny_repo, tmp_path_factory):
    root = tmp_path_factory.mktemp("mutations")
    return {m.name: (m, make(tiny_repo, root, m)) for m in MUTATIONS}


def test_every_rule_is_documented():
    for rule_id, rule in RULES.items():
        assert rule_id.startswith("TFS") and rule.title and rule.engine and rule.fix and rule.name
    assert set(ids(STATIC)) | set(ids(DYNAMIC)) == set(RULES)


@pytest.fixture(scope="module")
def mm_corpus(tiny_vl_repo, tmp_path_factory):
    root = tmp_path_factory.mktemp("mm-mutations")
    return {m.name: (m, make(tiny_vl_repo, root, m)) for m in MM_MUTATIONS}


def applying_to(family: str) -> set[str]:
    return {i for i, r in RULES.items() if family in r.applies_to}


def test_generated_repo_is_clean(tiny_repo):
    report = check(tiny_repo, trust_remote_code=True)
    assert report.findings == [], "\n".join(map(str, report.findings))
    # every check ran, the 2-process TP run included; the image and encoder checks are skipped, with the reason
    assert set(report.ran) == applying_to("decoder")
    assert set(report.skipped) == set(RULES) - applying_to("decoder")
    assert all("decoder" in why for why in report.skipped.values())


def test_generated_multimodal_repo_is_clean(tiny_vl_repo):
    report = check(tiny_vl_repo, trust_remote_code=True)
    assert report.findings == [], "\n".join(map(str, report.findings))
    assert set(report.ran) == applying_to("multimodal")
    assert set(report.skipped) == set(RULES) - applying_to("multimodal")


def test_a_check_that_cannot_run_is_skipped_with_its_reason(tmp_path):
    """A repo with an odd number of attention heads cannot be split over 2 ranks: TFS109 says so, never "ran"."""
    from tf_scaffold import commands

    repo = commands.new({"name": "odd-heads", "num_heads": 3, "num_kv_heads": 1, "hidden_size": 192}, tmp_path).path
    report = check(repo, trust_remote_code=True, select=["TFS109", "TFS110"])
    assert "TFS109" not in report.ran and "odd one (3)" in report.skipped["TFS109"]
    assert "TFS110" in report.ran
    report = check(repo, trust_remote_code=True, select=["TFS109"], tp=False)
    assert "--no-tp" in report.skipped["TFS109"]


@pytest.mark.parametrize("fixture", ["tiny_moe_repo", "tiny_window_repo"])
def test_generated_moe_and_window_repos_are_clean(request, fixture):
    """Every check runs on them, the dynamic ones too (kwargs chain, packed engine call, KV cache, generate, the
    2-process TP run), and none finds an error."""
    repo = request.getfixturevalue(fixture)
    report = check(repo, trust_remote_code=True)
    # the one finding on a windowed repo is SGLang's wider window, a warning about the engine
    expected = {"TFS026"} if fixture == "tiny_window_repo" else set()
    assert {f.id for f in report.findings} == expected, "\n".join(map(str, report.findings))
    assert not report.errors
    assert set(report.ran) == applying_to("decoder")


# ---- encoders: `tf-scaffold new NAME --arch encoder [--task classify]` -------------------------------------------------


@pytest.fixture(scope="module")
def encoder_repo(tmp_path_factory):
    from tf_scaffold import commands

    return commands.new({"name": "acme-encoder", "arch": "encoder"}, tmp_path_factory.mktemp("enc")).path


@pytest.fixture(scope="module")
def classifier_repo(tmp_path_factory):
    from tf_scaffold import commands

    answers = {"name": "acme-classifier", "arch": "encoder", "task": "classify", "num_labels": 3}
    return commands.new(answers, tmp_path_factory.mktemp("cls")).path


@pytest.mark.parametrize("fixture", ["encoder_repo", "classifier_repo"])
def test_generated_encoder_repos_are_clean(request, fixture):
    """The engines' encoder: no error, and the one warning is SGLang 0.5.23's (nothing in the repo can fix it); every
    rule that applies to an encoder ran (the 2-process TP run on the base model included), the decoder ones (KV cache,
    generate, pipeline split, LM-head fields) are skipped with the reason."""
    from tf_scaffold.conformance.repo import Repo

    repo = request.getfixturevalue(fixture)
    assert Repo(repo).family == "encoder"
    report = check(repo, trust_remote_code=True)
    assert [(f.id, f.severity) for f in report.findings] == [("TFS070", "warning")], "\n".join(
        map(str, report.findings)
    )
    embedding = fixture == "encoder_repo"
    # the embedding model has no classifier class of its own to hold to TFS077-TFS080 but through auto_map, which
    # names one; the classifier's architecture is no embedding model, so the pooling rules skip it, saying so
    not_for_this_task = set() if embedding else {"TFS073", "TFS074", "TFS075", "TFS076"}
    assert set(report.ran) == applying_to("encoder") - not_for_this_task
    assert set(report.skipped) == set(RULES) - applying_to("encoder") | not_for_this_task
    for rule_id in ("TFS105", "TFS110", "TFS111", "TFS036", "TFS007"):
        assert "encoder" in report.skipped[rule_id] and RULES[rule_id].not_applicable in report.skipped[rule_id]


@pytest.fixture(scope="module")
def encoder_corpus(encoder_repo, classifier_repo, tmp_path_factory):
    root = tmp_path_factory.mktemp("encoder-mutations")
    corpus = {m.name: (m, make(encoder_repo, root, m)) for m in ENCODER_MUTATIONS}
    corpus.update({m.name: (m, make(classifier_repo, root, m)) for m in CLASSIFIER_MUTATIONS})
    return corpus


@pytest.mark.parametrize("name", [m.name for m in ENCODER_MUTATIONS + CLASSIFIER_MUTATIONS])
def test_encoder_mutations_are_caught(encoder_corpus, name):
    """Each encoder mutation is flagged by its rule, statically, with nothing else but the SGLang 0.5.23 warning."""
    mutation, repo = encoder_corpus[name]
    findings = static_checks(repo)
    errors = {f.id for f in findings if f.severity == "error"}
    warnings = {f.id for f in findings if f.severity == "warning"}
    assert set(mutation.static_only_ids) <= errors, f"{name}: expected {mutation.static_only_ids}, got {errors}"
    assert errors <= set(mutation.expected), f"{name}: unexpected errors {errors}"
    assert set(mutation.warnings) <= warnings, f"{name}: expected warnings {mutation.warnings}, got {warnings}"
    assert warnings <= {*mutation.warnings, "TFS070"}, f"{name}: unexpected warnings {warnings}"
    assert not [f for f in findings if f.severity == "internal-error"]
    for finding in findings:
        assert finding.location and finding.fix and finding.engine


def test_sglang_encoder_warning_follows_what_sglang_reads(encoder_corpus, encoder_repo):
    """TFS070 fires where SGLang takes the model for encoder-only (a module with is_causal False), not on an encoder
    whose attention is causal for the engines (TFS071's case, which SGLang serves causally)."""
    assert "TFS070" in {f.id for f in static_checks(encoder_repo)}
    _, causal = encoder_corpus["encoder-is-causal-missing"]
    assert "TFS070" not in {f.id for f in static_checks(causal)}


@pytest.mark.slow
def test_dynamic_probe_is_bidirectional_like_the_engines(encoder_corpus):
    """The attention probe honours is_causal as the engines do: an encoder whose attention leaves it out is run
    causally by them, and by the probe, which then disagrees with eager's bidirectional mask (TFS104)."""
    mutation, repo = encoder_corpus["encoder-is-causal-missing"]
    report = check(repo, trust_remote_code=True, tp=False, select=["TFS071", "TFS104"])
    assert set(mutation.expected) <= {f.id for f in report.errors}


@pytest.mark.parametrize("case", ENCODER_MALFORMED, ids=lambda c: c.name)
def test_malformed_encoder_files_are_findings_not_crashes(encoder_repo, tmp_path_factory, case):
    repo = make_case(encoder_repo, tmp_path_factory.mktemp("enc-malformed"), case)
    report = check(repo, lint=False)
    assert not report.internal_errors, "\n".join(map(str, report.internal_errors))
    assert set(case.expected) <= report.ids(), f"{case.what}: expected {case.expected}, got {sorted(report.ids())}"
    json.loads(report.to_json())


@pytest.mark.parametrize("case", ENCODER_CORRECT, ids=lambda c: c.name)
def test_encoders_in_other_styles_give_no_false_error(encoder_repo, tmp_path_factory, case):
    from tf_scaffold.conformance.repo import Repo

    repo = make_case(encoder_repo, tmp_path_factory.mktemp("enc-correct"), case)
    assert Repo(repo).family == "encoder"
    report = check(repo, lint=False)
    assert not report.errors and not report.internal_errors, "\n".join(map(str, report.findings))
    assert not set(case.forbidden) & report.ids()


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        # BertModel as an embedding model: clean (its missing pooling_type, TFS073, is a warning: SGLang would pool
        # the last token once it serves encoders)
        ("bert", set()),
        # DistilBertSelfAttention keeps no layer_idx, which vLLM numbers its attention layers by
        ("distilbert", {"TFS015"}),
        ("modernbert", {"TFS014", "TFS024"}),
    ],
)
def test_transformers_encoders_copied_out(tmp_path, folder, expected):
    """transformers' own encoders, copied out as Hub repos: taken for encoders, held to the encoder rules, and free of
    the decoder ones (no head to find, no KV-cache fields); what remains is true of the engines."""
    import importlib.util

    from tf_scaffold.conformance.repo import Repo

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "transformers_corpus.py"
    spec = importlib.util.spec_from_file_location("transformers_corpus", path)
    corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)
    result = corpus.check_folder(corpus.models_root(), folder, tmp_path)
    assert result["crash"] is None, result["crash"]
    assert Repo(tmp_path / folder).family == "encoder"
    assert set(result["errors"]) - {"TFS003"} == expected, result["messages"]


@pytest.fixture(scope="module")
def variant_corpus(tiny_moe_repo, tiny_window_repo, tmp_path_factory):
    root = tmp_path_factory.mktemp("variant-mutations")
    corpus = {m.name: (m, make(tiny_moe_repo, root, m)) for m in MOE_MUTATIONS}
    corpus.update({m.name: (m, make(tiny_window_repo, root, m)) for m in WINDOW_MUTATIONS})
    return corpus


@pytest.mark.parametrize("name", [m.name for m in MOE_MUTATIONS + WINDOW_MUTATIONS])
def test_moe_and_window_mutations_are_caught(variant_corpus, name):
    mutation, repo = variant_corpus[name]
    findings = static_checks(repo)
    errors = {f.id for f in findings if f.severity == "error"}
    warnings = {f.id for f in findings if f.severity == "warning"}
    assert set(mutation.static_only_ids) <= errors, f"{name}: expected {mutation.static_only_ids}, got {errors}"
    assert set(mutation.warnings) <= warnings, f"{name}: expected warnings {mutation.warnings}, got {warnings}"
    assert errors <= set(mutation.expected) | {"TFS024"}, f"{name}: unexpected errors {errors}"
    for finding in findings:
        if finding.id in {*mutation.expected, *mutation.warnings}:
            assert finding.location and finding.fix


@pytest.mark.parametrize("name", [m.name for m in MM_MUTATIONS])
def test_multimodal_mutations_are_caught(mm_corpus, name):
    mutation, repo = mm_corpus[name]
    errors = {f.id for f in static_checks(repo) if f.severity == "error"}
    assert set(mutation.static_only_ids) <= errors, f"{name}: expected {mutation.static_only_ids}, got {errors}"
    report = check(repo, trust_remote_code=True, tp=False)
    errors = {f.id for f in report.errors}
    assert set(mutation.expected) <= errors, f"{name}: expected {mutation.expected}, got {sorted(errors)}"


@pytest.mark.parametrize("name", [m.name for m in MUTATIONS])
def test_static_mode_catches_what_it_can(corpus, name):
    mutation, repo = corpus[name]
    findings = static_checks(repo)
    errors = {f.id for f in findings if f.severity == "error"}
    assert set(mutation.static_only_ids) <= errors, f"{name}: expected {mutation.static_only_ids}, got {errors}"
    warnings = {f.id for f in findings if f.severity == "warning"}
    assert set(mutation.warnings) <= warnings, f"{name}: expected warnings {mutation.warnings}, got {warnings}"
    if not mutation.static_only_ids:
        assert not errors  # the runtime-only bug is invisible to reading files: dynamic mode must find it


@pytest.mark.slow
@pytest.mark.parametrize("name", [m.name for m in MUTATIONS])
def test_dynamic_mode_catches_every_mutation(corpus, name):
    mutation, repo = corpus[name]
    report = check(repo, trust_remote_code=True, tp=name == "tp-plan-typo")
    errors = {f.id for f in report.errors}
    if not mutation.breaks_here():  # correct code under this transformers: no false alarm
        assert not errors & set(mutation.expected), f"{name}: {sorted(errors)} under a transformers it works with"
        return
    assert set(mutation.expected) <= errors, f"{name}: expected {mutation.expected}, got {sorted(errors)}"
    for finding in report.errors:
        assert finding.fix and finding.engine and finding.location


def test_findings_carry_file_and_line(corpus):
    _, repo = corpus["two-interface-calls"]
    finding = next(f for f in static_checks(repo) if f.id == "TFS012")
    assert finding.file.startswith("modeling_") and finding.line > 0
    text = (repo / finding.file).read_text().splitlines()[finding.line - 1]
    assert "attention_interface(" in text


def test_cli_exit_codes_and_json(tiny_repo, corpus):
    result = runner.invoke(app, ["check", str(tiny_repo)])
    assert result.exit_code == 0 and "backend-ready" in result.output
    _, broken = corpus["no-backend-flag"]
    result = runner.invoke(app, ["check", str(broken), "--json"])
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["schema"] == 2 and payload["errors"] >= 1 and payload["findings"][0]["id"] == "TFS020"
    assert {"id", "severity", "file", "line", "message", "engine", "fix", "title"} <= set(payload["findings"][0])
    result = runner.invoke(app, ["check", str(broken), "--ignore", "TFS020"])
    assert result.exit_code == 0
    result = runner.invoke(app, ["check", str(broken), "--select", "TFS011"])
    assert result.exit_code == 0
    result = runner.invoke(app, ["check", str(broken)])
    assert "TFS020" in result.output and "fix:" in result.output and "engines:" in result.output


@pytest.mark.parametrize(
    ("setup", "expected_id"),
    [
        (lambda p: (p / "config.json").write_text("{broken"), "TFS001"),
        (lambda p: (p / "config.json").write_text("[1, 2]"), "TFS001"),
    ],
    ids=["broken-json", "json-not-object"],  # a folder without config.json: a usage error (test_cli)
)
def test_unreadable_repos_are_findings(tmp_path, setup, expected_id):
    setup(tmp_path)
    result = runner.invoke(app, ["check", str(tmp_path)])
    assert result.exit_code == 1 and expected_id in result.output and "Traceback" not in result.output


def test_syntax_error_is_a_finding(tiny_repo, tmp_path):
    import shutil

    repo = tmp_path / "r"
    shutil.copytree(tiny_repo, repo)
    path = next(repo.glob("modeling_*.py"))
    path.write_text(path.read_text() + "\ndef broken(:\n")
    report = check(repo, trust_remote_code=True)
    finding = next(f for f in report.findings if f.id == "TFS010")
    assert finding.line > 0 and "syntax" in finding.message
    assert not any(i.startswith("TFS1") for i in report.ran)  # dynamic checks do not import a broken file


def test_usage_errors_exit_2(tmp_path):
    result = runner.invoke(app, ["check", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "does not exist" in result.output
    (tmp_path / "f").write_text("x")
    assert runner.invoke(app, ["check", str(tmp_path / "f")]).exit_code == 2
    result = runner.invoke(app, ["check", str(tmp_path), "--select", "TFS999"])
    assert result.exit_code == 2 and "unknown check id" in result.output


def test_static_mode_never_executes_repo_code(tiny_repo, tmp_path):
    """A modeling file that writes a marker on import is checked without --trust-remote-code: no marker."""
    import shutil

    repo = tmp_path / "r"
    shutil.copytree(tiny_repo, repo)
    marker = tmp_path / "EXECUTED"
    for path in list(repo.glob("*.py")):
        path.write_text(f"open({str(marker)!r}, 'w').write('x')\n" + path.read_text())
    proc = subprocess.run(
        [sys.executable, "-m", "tf_scaffold", "check", str(repo)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not marker.exists()
    # and the same repo with --trust-remote-code does import it (the marker proves the test can fail)
    subprocess.run(
        [sys.executable, "-m", "tf_scaffold", "check", str(repo), "--trust-remote-code", "--select", "TFS100"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert marker.exists()


def test_static_check_does_not_import_torch(tiny_repo):
    code = (
        "import sys; from tf_scaffold.cli import app; from typer.testing import CliRunner; "
        f"r = CliRunner().invoke(app, ['check', {str(tiny_repo)!r}]); "
        "assert r.exit_code == 0, r.output; print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stdout + proc.stderr


def test_the_library_api_runs_the_dynamic_rules_on_its_own():
    """`from tf_scaffold.conformance import check` in a fresh process, nothing else imported: the dynamic rules are in
    the registry, so `check(..., trust_remote_code=True)` runs them (not a report with the static rules only)."""
    code = (
        "from tf_scaffold.conformance import DYNAMIC, RULES, ids; import sys; "
        "print(len(ids(DYNAMIC)), sum(1 for r in RULES.values()), 'torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    dynamic, total, torch_imported = proc.stdout.split()
    assert int(dynamic) == sum(1 for r in RULES.values() if r.mode == DYNAMIC) > 0, proc.stderr
    assert int(total) == len(RULES) and torch_imported == "False"


def test_conformance_docs_are_generated_from_the_registry():
    """docs/conformance.md is what the registry generates: a rule added or changed without regenerating it fails."""
    proc = subprocess.run(
        [sys.executable, "-m", "tf_scaffold.conformance.docs", "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    from tf_scaffold.conformance.docs import render

    text = render()
    for rule_id, rule in RULES.items():
        assert f"| {rule_id} | `{rule.name}` | {rule.severity} |" in text


# ---- encoders: a bounded fuzz of the files only they have, and of their modeling source ----------------------------

ENCODER_FUZZ_KEYS = ["pooling_type", "normalize", "is_decoder", "architectures", "auto_map", "num_labels"]


def _fuzz_encoder_repo(encoder_repo, tmp_path_factory):
    import shutil

    repo = tmp_path_factory.mktemp("enc-fuzz") / "repo"
    shutil.copytree(encoder_repo, repo)
    return repo


def _no_crash(repo):
    report = check(repo, lint=False)
    assert not report.internal_errors, "\n".join(map(str, report.internal_errors))
    json.loads(report.to_json())


def _fuzz_settings():
    from hypothesis import HealthCheck, settings

    return settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def test_fuzz_encoder_pooling_files(encoder_repo, tmp_path_factory):
    from hypothesis import given
    from hypothesis import strategies as st
    from test_check_robustness import JSON

    @_fuzz_settings()
    @given(modules=JSON, pooling=JSON, changes=st.dictionaries(st.sampled_from(ENCODER_FUZZ_KEYS), JSON, max_size=3))
    def run(modules, pooling, changes):
        repo = _fuzz_encoder_repo(encoder_repo, tmp_path_factory)
        (repo / "modules.json").write_text(json.dumps(modules))
        (repo / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
        cfg = json.loads((repo / "config.json").read_text())
        cfg.update(changes)
        (repo / "config.json").write_text(json.dumps(cfg))
        _no_crash(repo)

    run()


def test_fuzz_encoder_source_text(encoder_repo, tmp_path_factory):
    from hypothesis import given
    from hypothesis import strategies as st

    @_fuzz_settings()
    @given(junk=st.text(max_size=200), cut=st.integers(0, 20_000))
    def run(junk, cut):
        repo = _fuzz_encoder_repo(encoder_repo, tmp_path_factory)
        path = next(repo.glob("modeling_*.py"))
        text = path.read_text()
        path.write_text(text[:cut] + junk + text[cut:])
        _no_crash(repo)

    run()


def test_fuzz_encoder_is_causal_expressions(encoder_repo, tmp_path_factory):
    """Whatever expression the attention's is_causal (or an `if` around a submodule) is, telling the kind neither
    crashes nor hangs."""
    from hypothesis import given
    from hypothesis import strategies as st

    atoms = st.sampled_from(
        [
            "True",
            "False",
            "None",
            "0",
            "'all'",
            "layer_idx",
            "config.is_decoder",
            "self.config.pooling_type",
            "getattr(config, 'use_bidirectional_attention', False)",
            "self.layer_idx",
            "[1, 2]",
            "not " * 200 + "False",
        ]
    )
    expressions = st.recursive(
        atoms,
        lambda inner: st.one_of(
            inner.map(lambda x: f"not ({x})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]}) and ({p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]}) or ({p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]}) == ({p[1]})"),
            st.tuples(inner, inner, inner).map(lambda p: f"({p[0]}) if ({p[1]}) else ({p[2]})"),
        ),
        max_leaves=8,
    )

    @_fuzz_settings()
    @given(value=expressions, condition=expressions)
    def run(value, condition):
        repo = _fuzz_encoder_repo(encoder_repo, tmp_path_factory)
        path = next(repo.glob("modeling_*.py"))
        text = path.read_text().replace("        self.is_causal = False\n", f"        self.is_causal = {value}\n", 1)
        text = text.replace(
            "        self.pooler = ",
            f"        if {condition}:\n            self.extra = nn.Linear(2, 2)\n" + "        self.pooler = ",
            1,
        )
        path.write_text(text)
        _no_crash(repo)

    run()
