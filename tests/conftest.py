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
    from tf_scaffold import commands

    out = tmp_path_factory.mktemp("gen")
    return commands.new({"name": "acme-lm"}, out).path


@pytest.fixture(scope="session")
def tiny_vl_repo(tmp_path_factory) -> Path:
    """One default multimodal repo (`tf-scaffold new acme-vl --multimodal`)."""
    from tf_scaffold import commands

    out = tmp_path_factory.mktemp("gen-vl")
    return commands.new({"name": "acme-vl", "multimodal": True}, out).path


@pytest.fixture(scope="session")
def tiny_moe_repo(tmp_path_factory) -> Path:
    """One default mixture-of-experts repo (`tf-scaffold new acme-moe --moe`)."""
    from tf_scaffold import commands

    out = tmp_path_factory.mktemp("gen-moe")
    return commands.new({"name": "acme-moe", "moe": True}, out).path


@pytest.fixture(scope="session")
def tiny_window_repo(tmp_path_factory) -> Path:
    """One repo with sliding layers (`--sliding-window 16 --layer-types sliding,full`)."""
    from tf_scaffold import commands

    out = tmp_path_factory.mktemp("gen-window")
    return commands.new({"name": "acme-window", "sliding_window": 16, "layer_types": "sliding,full"}, out).path


@pytest.fixture(scope="session")
def tiny_encoder_repo(tmp_path_factory) -> Path:
    """One default encoder repo, an embedding model (`tf-scaffold new acme-encoder --arch encoder`)."""
    from tf_scaffold import commands

    out = tmp_path_factory.mktemp("gen-encoder")
    return commands.new({"name": "acme-encoder", "arch": "encoder"}, out).path


@pytest.fixture(scope="session")
def tiny_classifier_repo(tmp_path_factory) -> Path:
    """One encoder repo whose checkpoint is the classifier (`--arch encoder --task classify --num-labels 3`)."""
    from tf_scaffold import commands

    out = tmp_path_factory.mktemp("gen-classifier")
    answers = {"name": "acme-classifier", "arch": "encoder", "task": "classify", "num_labels": 3}
    return commands.new(answers, out).path


# The options variant, whole and one option at a time, without weights (the static tests read the text only). The
# names differ in length, so that text holding a class name is wrapped for short and long names alike.
OPTIONS = {
    "options": {
        "name": "acme-opts",
        "qk_norm": True,
        "attention_bias": True,
        "sliding_window": 16,
        "layer_types": "sliding,full",
    },
    "qk-norm": {"name": "q", "qk_norm": True},
    "attention-bias": {"name": "acme-attention-bias-with-a-long-name", "attention_bias": True},
}


@pytest.fixture(scope="session")
def options_repos(tmp_path_factory) -> dict[str, Path]:
    from tf_scaffold import commands

    out = tmp_path_factory.mktemp("gen-options")
    return {kind: commands.new({**answers, "weights": False}, out).path for kind, answers in OPTIONS.items()}


# Every kind of repo `new` makes: the default decoder, multimodal, MoE, the options variant (whole and each option
# alone), the embedding model and the classifier.
EVERY_KIND = {
    "text": "tiny_repo",
    "multimodal": "tiny_vl_repo",
    "moe": "tiny_moe_repo",
    "options": "options_repos",
    "qk-norm": "options_repos",
    "attention-bias": "options_repos",
    "sliding": "tiny_window_repo",
    "embed": "tiny_encoder_repo",
    "classify": "tiny_classifier_repo",
}


@pytest.fixture(params=list(EVERY_KIND))
def every_kind(request) -> Path:
    """Each kind of generated repo in turn (static tests)."""
    repo = request.getfixturevalue(EVERY_KIND[request.param])
    return repo[request.param] if isinstance(repo, dict) else repo


GENERATED = {
    "acme-lm": "tiny_repo",
    "acme-vl": "tiny_vl_repo",
    "acme-encoder": "tiny_encoder_repo",
    "acme-classifier": "tiny_classifier_repo",
}


@pytest.fixture(params=list(GENERATED))
def generated(request) -> Path:
    """Each kind of generated repo in turn: text-only, multimodal, embedding model, classifier."""
    return request.getfixturevalue(GENERATED[request.param])


@pytest.fixture(scope="session")
def harness():
    """The engine harness every generated repo's tests run on."""
    from tf_scaffold.testing import harness

    return harness
