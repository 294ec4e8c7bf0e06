"""Test set-up for this model repo: offline, with remote-code modules cached in a throw-away folder."""

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest


# Before transformers is imported: never touch the network, and keep the copies of this repo's code that
# `trust_remote_code` makes out of the user's cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="hf-modules-"))

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_configure(config):
    config.addinivalue_line("markers", "engine: starts a real inference engine (vLLM or SGLang)")
    # A deprecation raised from this repo's own code (imported as `transformers_modules.*` through
    # trust_remote_code) fails the test: the code must run on the newest transformers without relying on
    # anything it has deprecated.
    for category in ("FutureWarning", "DeprecationWarning"):
        config.addinivalue_line("filterwarnings", f"error::{category}:transformers_modules")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def config_json() -> dict:
    return json.loads((REPO / "config.json").read_text())


@pytest.fixture(scope="session")
def text_config_json(config_json) -> dict:
    """The decoder's part of config.json: nested under `text_config` in a multimodal repo."""
    return config_json.get("text_config", config_json)


@pytest.fixture(scope="session")
def has_weights() -> bool:
    return any(REPO.glob("*.safetensors"))


@pytest.fixture(scope="session")
def needs_weights(has_weights):
    if not has_weights:
        pytest.skip("this repo has no weights (generated with --no-weights): add model.safetensors to run this test")
