import os
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="hf-modules-tool-"))

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory) -> Path:
    """One default repo (`tf-scaffold new acme-lm`), shared by the read-only tests."""
    from scaffold import commands

    out = tmp_path_factory.mktemp("gen")
    return commands.new({"name": "acme-lm"}, out).path


@pytest.fixture(scope="session")
def tiny_vl_repo(tmp_path_factory) -> Path:
    """One default multimodal repo (`tf-scaffold new acme-vl --multimodal`)."""
    from scaffold import commands

    out = tmp_path_factory.mktemp("gen-vl")
    return commands.new({"name": "acme-vl", "multimodal": True}, out).path


@pytest.fixture(scope="session")
def tiny_moe_repo(tmp_path_factory) -> Path:
    """One default mixture-of-experts repo (`tf-scaffold new acme-moe --moe`)."""
    from scaffold import commands

    out = tmp_path_factory.mktemp("gen-moe")
    return commands.new({"name": "acme-moe", "moe": True}, out).path


@pytest.fixture(scope="session")
def tiny_window_repo(tmp_path_factory) -> Path:
    """One repo with sliding layers (`--sliding-window 16 --layer-types sliding,full`)."""
    from scaffold import commands

    out = tmp_path_factory.mktemp("gen-window")
    return commands.new({"name": "acme-window", "sliding_window": 16, "layer_types": "sliding,full"}, out).path


@pytest.fixture(params=["acme-lm", "acme-vl"])
def generated(request) -> Path:
    """Each kind of generated repo in turn: text-only and multimodal."""
    return request.getfixturevalue("tiny_repo" if request.param == "acme-lm" else "tiny_vl_repo")


@pytest.fixture(scope="session")
def harness():
    """The engine harness every generated repo's tests run on."""
    from scaffold.testing import harness

    return harness
