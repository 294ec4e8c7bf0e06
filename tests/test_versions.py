"""The version pins live in `tf_scaffold/versions.py`; what else states a version must agree with it."""

import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from tf_scaffold import versions

ROOT = Path(__file__).resolve().parents[1]


def test_dependency_ranges_admit_the_pins():
    """tf-scaffold installs beside the engines: its ranges must allow their torch and transformers."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = {Requirement(d).name: Requirement(d) for d in deps}
    assert Version(versions.TORCH_CPU) in reqs["torch"].specifier
    assert Version(versions.OLDEST_TRANSFORMERS) in reqs["transformers"].specifier
    # the floor is the oldest supported release, not an older one
    assert f">={versions.OLDEST_TRANSFORMERS}" in str(reqs["transformers"].specifier)


def test_shell_assignments_for_ci():
    out = subprocess.run([sys.executable, "-m", "tf_scaffold.versions"], capture_output=True, text=True, check=True)
    assert dict(line.split("=", 1) for line in out.stdout.split()) == versions.PINS
