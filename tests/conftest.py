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
