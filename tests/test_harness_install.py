"""tf-scaffold is on no package index yet, so `pip install -r tests/requirements.txt` alone fails on a fresh machine:
the requirements file, the model card, the repo's tests and `tf-scaffold test` each say how to install the harness
from tf-scaffold's source."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tf_scaffold import facts

# the step that comes before `pip install -r tests/requirements.txt`
FROM_SOURCE = "pip install -e /path/to/tf-scaffold"


def test_the_requirements_file_and_the_card_say_how_to_install_the_harness(every_kind):
    requirements = (every_kind / "tests" / "requirements.txt").read_text()
    assert FROM_SOURCE in requirements and "not on PyPI" in requirements
    assert any(line.startswith("tf-scaffold==") for line in requirements.splitlines())
    card = (every_kind / "README.md").read_text()
    tests_section = card[card.index("## Tests") :]
    assert tests_section.index(FROM_SOURCE) < tests_section.index("pip install -r tests/requirements.txt")


def test_the_repos_tests_say_it_when_the_harness_is_missing(every_kind):
    text = next((every_kind / "tests").glob("test_*.py")).read_text()
    assert FROM_SOURCE in text and "pip install -r tests/requirements.txt" in text


def test_tf_scaffold_test_prints_the_install_line_when_the_harness_is_missing(tiny_repo, tmp_path):
    """With an interpreter that has no tf-scaffold, `tf-scaffold test` says, in one line, how to install this one."""
    from tf_scaffold.engines.envs import tf_scaffold_source

    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = bare / "bin" / "python"
    tool = shutil.which("tf-scaffold") or str(Path(sys.executable).with_name("tf-scaffold"))
    proc = subprocess.run([tool, "test", str(tiny_repo), "--python", str(python)], capture_output=True, text=True)
    assert proc.returncode != 0
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert f"{python} -m pip install -e {tf_scaffold_source()}" in lines[0]
    assert facts.HARNESS_NOT_ON_PYPI in lines[0]


@pytest.mark.parametrize("source", ["/src/tf-scaffold", "tf-scaffold==0.3.0"])
def test_the_install_line_names_the_source(source):
    from tf_scaffold.engines.run import harness_install_line

    line = harness_install_line("/env/bin/python", source)
    assert line.startswith("/env/bin/python -m pip install ")
    assert ("-e /src/tf-scaffold" in line) if source.startswith("/") else (source in line)
