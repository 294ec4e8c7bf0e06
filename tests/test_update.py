"""`tf-scaffold update`: a repo generated from an older template (version N, a copy of the templates altered by the
fixture) and edited by hand is brought to the installed template (N+1) by a 3-way merge; collisions give conflict
markers and exit 1; --pretend writes nothing; an untouched current repo is left byte for byte; weights that no longer
fit the code are reported, never silently kept or replaced."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tf_scaffold import __version__, commands, render
from tf_scaffold.cli import app
from tf_scaffold.conformance import check
from tf_scaffold.update import fingerprint

MODELING = "{{cookiecutter.repo_name}}/modeling_{{cookiecutter.module_name}}.py"
NEW_COMMENT = (
    "        # vLLM fuses gate/up into one MergedColumnParallelLinear when the forward has exactly this shape.\n"
)
OLD_COMMENT = "        # the gated MLP, as in Llama\n"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def older_templates(tmp_path: Path, *, bias: bool = False) -> Path:
    """A copy of the installed templates as an older release had them: another comment on the MLP's forward (and,
    with `bias`, a down_proj with a bias, so the older checkpoint has tensors the current code does not build)."""
    root = tmp_path / "templates-N"
    shutil.copytree(render.templates_root(), root)
    layers = root / render.TEMPLATE / "templates" / "decoder" / "layers.py"
    text = layers.read_text()
    assert NEW_COMMENT in text
    text = text.replace(NEW_COMMENT, OLD_COMMENT)
    if bias:
        old = "self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)"
        assert old in text
        text = text.replace(old, old.replace("bias=False", "bias=True"))
    layers.write_text(text)
    return root


def generate_with(monkeypatch, templates: Path, out: Path, answers: dict | None = None) -> Path:
    with monkeypatch.context() as m:
        m.setattr(render, "templates_root", lambda: templates)
        return commands.new({"name": "acme-lm", **(answers or {})}, out).path


def modeling(repo: Path) -> Path:
    return repo / "modeling_acme_lm.py"


def test_an_edit_survives_and_the_template_change_lands(tmp_path, monkeypatch):
    repo = generate_with(monkeypatch, older_templates(tmp_path), tmp_path / "out")
    assert OLD_COMMENT in modeling(repo).read_text()
    edited = (
        modeling(repo)
        .read_text()
        .replace("def repeat_kv(", "# Acme: our own note, kept across updates\ndef repeat_kv(")
    )
    modeling(repo).write_text(edited)

    result = run("update", repo)
    assert result.exit_code == 0, result.output
    text = modeling(repo).read_text()
    assert "# Acme: our own note, kept across updates" in text
    assert NEW_COMMENT in text and OLD_COMMENT not in text
    assert "merged" in result.output and "modeling_acme_lm.py" in result.output
    record = json.loads((repo / ".tf-scaffold.json").read_text())
    assert NEW_COMMENT in record["base"]["modeling_acme_lm.py"]  # the next update merges against N+1

    again = fingerprint(repo)
    assert run("update", repo).exit_code == 0
    assert fingerprint(repo) == again  # nothing left to do
    assert not check(repo, lint=False).errors


def test_a_colliding_edit_gives_conflict_markers_and_exit_1(tmp_path, monkeypatch):
    repo = generate_with(monkeypatch, older_templates(tmp_path), tmp_path / "out")
    modeling(repo).write_text(modeling(repo).read_text().replace(OLD_COMMENT, "        # Acme: our MLP\n"))

    result = run("update", repo)
    assert result.exit_code == 1
    assert "conflict" in result.output and "modeling_acme_lm.py" in result.stderr
    text = modeling(repo).read_text()
    assert "<<<<<<< yours" in text and "        # Acme: our MLP\n" in text
    assert NEW_COMMENT in text and ">>>>>>> tf-scaffold" in text


def test_pretend_prints_the_diff_and_writes_nothing(tmp_path, monkeypatch):
    repo = generate_with(monkeypatch, older_templates(tmp_path), tmp_path / "out")
    before = fingerprint(repo)
    result = run("update", repo, "--pretend")
    assert result.exit_code == 0, result.output
    assert fingerprint(repo) == before
    assert f"-{OLD_COMMENT}" in result.output and f"+{NEW_COMMENT}" in result.output
    assert "updated    modeling_acme_lm.py" in result.output


def test_an_untouched_current_repo_is_left_byte_for_byte(tiny_repo, tmp_path):
    repo = shutil.copytree(tiny_repo, tmp_path / "acme-lm")
    before = fingerprint(repo)
    result = run("update", repo)
    assert result.exit_code == 0, result.output
    assert "nothing to change" in result.output
    assert fingerprint(repo) == before


def test_weights_that_no_longer_fit_the_code_are_reported_then_rebuilt_when_asked(tmp_path, monkeypatch):
    repo = generate_with(monkeypatch, older_templates(tmp_path, bias=True), tmp_path / "out")
    weights = (repo / "model.safetensors").read_bytes()
    result = run("update", repo)
    assert result.exit_code == 1
    assert "model.safetensors no longer fits the model code: 2 unexpected" in result.stderr
    assert "down_proj.bias" in result.stderr and "--rebuild-weights" in result.stderr
    assert (repo / "model.safetensors").read_bytes() == weights  # never replaced silently

    result = run("update", repo, "--rebuild-weights")  # what the message says to run
    assert result.exit_code == 0, result.output
    assert "model.safetensors rebuilt" in result.output
    # the same bytes as a fresh `new` with the same answers: same code, same seed
    fresh = commands.new({"name": "acme-lm"}, tmp_path / "fresh").path
    assert (repo / "model.safetensors").read_bytes() == (fresh / "model.safetensors").read_bytes()
    assert run("update", repo).exit_code == 0


def test_a_repo_without_update_data_is_told_the_way_forward(tiny_repo, tmp_path):
    repo = shutil.copytree(tiny_repo, tmp_path / "acme-lm")
    record = json.loads((repo / ".tf-scaffold.json").read_text())
    del record["base"]
    record["tf_scaffold_version"] = "0.1.0"
    (repo / ".tf-scaffold.json").write_text(json.dumps(record))
    assert "TFS060" in {f.id for f in check(repo, lint=False).warnings}

    result = run("update", repo)
    assert result.exit_code == 2
    assert "recorded no update data" in result.stderr and "--adopt" in result.stderr
    modeling(repo).write_text(modeling(repo).read_text() + "# Acme\n")
    before = fingerprint(repo)
    result = run("update", repo, "--adopt", "--pretend")
    assert result.exit_code == 0 and fingerprint(repo) == before
    assert "+# Acme" not in result.output and "-# Acme" in result.output  # yours -> the template

    assert run("update", repo, "--adopt").exit_code == 0
    assert modeling(repo).read_text().endswith("# Acme\n")  # adopting changes no file but the record
    assert json.loads((repo / ".tf-scaffold.json").read_text())["base"]
    assert "TFS060" not in {f.id for f in check(repo, lint=False).warnings}
    assert "nothing to change" in run("update", repo).output


@pytest.mark.parametrize("contents", [None, "not json", '{"answers": 3}'])
def test_update_on_a_repo_it_cannot_read_is_one_line(tmp_path, contents):
    repo = tmp_path / "repo"
    repo.mkdir()
    if contents is not None:
        (repo / ".tf-scaffold.json").write_text(contents)
    result = run("update", repo)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


def test_after_a_conflict_is_resolved_the_checkpoint_is_still_compared(tmp_path, monkeypatch):
    repo = generate_with(monkeypatch, older_templates(tmp_path, bias=True), tmp_path / "out")
    modeling(repo).write_text(modeling(repo).read_text().replace(OLD_COMMENT, "        # Acme: our MLP\n"))
    assert run("update", repo).exit_code == 1  # the conflict; the checkpoint is not compared with broken code
    result = run("update", repo)
    assert result.exit_code == 1 and "IndentationError" in result.stderr  # the markers are still there
    text = modeling(repo).read_text()
    resolved = (
        text.split("<<<<<<< yours\n")[0]
        + "        # Acme: our MLP\n"
        + text.split(">>>>>>> tf-scaffold " + __version__ + "\n")[1]
    )
    modeling(repo).write_text(resolved)
    result = run("update", repo)
    assert result.exit_code == 1 and "down_proj.bias" in result.stderr  # the old checkpoint, the new code


def test_a_repo_from_before_the_rename_imports_the_harness_from_tf_scaffold(tiny_repo, tmp_path):
    # tf-scaffold 0.2 named its package `scaffold`: its repos' tests import the harness from there, its record says
    # "variant": "decoder". The author added a test right under the import, so a plain merge of the template's
    # import change would collide with their lines.
    repo = shutil.copytree(tiny_repo, tmp_path / "acme-lm")
    test_file = repo / "tests" / "test_acme_lm.py"
    current = test_file.read_text()
    assert "from tf_scaffold.testing import CausalLMRepoTests" in current
    old = current.replace("from tf_scaffold.testing import", "from scaffold.testing import")
    old = old.replace("    prompts = ", "    # Acme: our prompts\n    prompts = ", 1)
    test_file.write_text(old)
    saved = json.loads((repo / ".tf-scaffold.json").read_text())
    del saved["kind"]
    saved.update(variant="decoder", tf_scaffold_version="0.2.0")
    name = "tests/test_acme_lm.py"
    saved["base"][name] = saved["base"][name].replace(
        "from tf_scaffold.testing import", "from scaffold.testing import"
    )
    (repo / ".tf-scaffold.json").write_text(json.dumps(saved))

    result = run("update", repo)
    assert result.exit_code == 0, result.output
    text = test_file.read_text()
    assert "from tf_scaffold.testing import CausalLMRepoTests" in text and "from scaffold." not in text
    assert "    # Acme: our prompts\n" in text  # the author's line kept
    assert "migrated" in result.output
    record = json.loads((repo / ".tf-scaffold.json").read_text())
    assert record["kind"] == "causal-lm" and "variant" not in record
    assert record["tf_scaffold_version"] == __version__
