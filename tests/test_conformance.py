"""`tf-scaffold check`: the unmutated repo is clean; every mutation is caught by its check id; bad repos are
findings, never crashes; static mode never runs the repo's code."""

import json
import subprocess
import sys

import pytest
from mutations import MM_MUTATIONS, MOE_MUTATIONS, MUTATIONS, WINDOW_MUTATIONS, make
from typer.testing import CliRunner

from scaffold.cli import app
from scaffold.conformance import DYNAMIC, RULES, STATIC, check, ids
from scaffold.conformance import static_checks as run_static


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


def test_generated_repo_is_clean(tiny_repo):
    report = check(tiny_repo, trust_remote_code=True)
    assert report.findings == [], "\n".join(map(str, report.findings))
    # every check ran, the 2-process TP run included; the image checks are skipped, with the reason
    multimodal = {i for i, r in RULES.items() if r.applies_to == {"multimodal"}}
    assert set(report.ran) == set(RULES) - multimodal
    assert set(report.skipped) == multimodal
    assert all("text" in why for why in report.skipped.values())


def test_generated_multimodal_repo_is_clean(tiny_vl_repo):
    report = check(tiny_vl_repo, trust_remote_code=True)
    assert report.findings == [], "\n".join(map(str, report.findings))
    assert set(report.ran) == set(RULES) and not report.skipped


def test_a_check_that_cannot_run_is_skipped_with_its_reason(tmp_path):
    """A repo with an odd number of attention heads cannot be split over 2 ranks: TFS109 says so, never "ran"."""
    from scaffold import commands

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
    multimodal = {i for i, r in RULES.items() if r.applies_to == {"multimodal"}}
    assert set(report.ran) == set(RULES) - multimodal


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
        (lambda p: None, "TFS001"),  # not a model repo
        (lambda p: (p / "config.json").write_text("{broken"), "TFS001"),
        (lambda p: (p / "config.json").write_text("[1, 2]"), "TFS001"),
    ],
    ids=["empty-folder", "broken-json", "json-not-object"],
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
        [sys.executable, "-m", "scaffold", "check", str(repo)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not marker.exists()
    # and the same repo with --trust-remote-code does import it (the marker proves the test can fail)
    subprocess.run(
        [sys.executable, "-m", "scaffold", "check", str(repo), "--trust-remote-code", "--select", "TFS100"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert marker.exists()


def test_static_check_does_not_import_torch(tiny_repo):
    code = (
        "import sys; from scaffold.cli import app; from typer.testing import CliRunner; "
        f"r = CliRunner().invoke(app, ['check', {str(tiny_repo)!r}]); "
        "assert r.exit_code == 0, r.output; print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stdout + proc.stderr


def test_the_library_api_runs_the_dynamic_rules_on_its_own():
    """`from scaffold.conformance import check` in a fresh process, nothing else imported: the dynamic rules are in
    the registry, so `check(..., trust_remote_code=True)` runs them (not a report with the static rules only)."""
    code = (
        "from scaffold.conformance import DYNAMIC, RULES, ids; import sys; "
        "print(len(ids(DYNAMIC)), sum(1 for r in RULES.values()), 'torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    dynamic, total, torch_imported = proc.stdout.split()
    assert int(dynamic) == sum(1 for r in RULES.values() if r.kind == DYNAMIC) > 0, proc.stderr
    assert int(total) == len(RULES) and torch_imported == "False"


def test_conformance_docs_are_generated_from_the_registry():
    """docs/conformance.md is what the registry generates: a rule added or changed without regenerating it fails."""
    proc = subprocess.run(
        [sys.executable, "-m", "scaffold.conformance.docs", "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    from scaffold.conformance.docs import render

    text = render()
    for rule_id, rule in RULES.items():
        assert f"| {rule_id} | `{rule.name}` | {rule.severity} |" in text
