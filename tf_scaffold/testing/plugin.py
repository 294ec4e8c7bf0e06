"""tf-scaffold's pytest plugin (entry point `pytest11`): loaded wherever tf-scaffold is installed, it does something
only in a model repo (a folder with config.json) and for the test classes of `tf_scaffold.testing`."""

from __future__ import annotations

import os
import tempfile


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "engine: starts a real inference engine (vLLM or SGLang)")
    if (config.rootpath / "config.json").is_file():
        # In a model repo, before transformers is imported: never touch the network, and keep the copies of the
        # repo's code that `trust_remote_code` makes out of the user's cache.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="hf-modules-"))


def pytest_generate_tests(metafunc) -> None:
    """`test_dynamic_conformance` runs once per dynamic rule that applies to the declared family of repo."""
    from tf_scaffold.testing.suite import RepoTests

    cls = metafunc.cls
    if "check_id" in metafunc.fixturenames and cls is not None and issubclass(cls, RepoTests):
        from tf_scaffold.conformance import DYNAMIC, RULES, ids
        from tf_scaffold.conformance.dynamic import rules as _rules  # noqa: F401  (registers the dynamic rules)

        metafunc.parametrize("check_id", [i for i in ids(DYNAMIC) if cls.family in RULES[i].applies_to])
