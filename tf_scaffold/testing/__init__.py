"""The harness of generated repos, as an installed pytest plugin: a repo's tests declare what the repo is by
subclassing one of these classes, and inherit every test (see `suite.py`)."""

from tf_scaffold.testing.suite import CausalLMRepoTests, EncoderRepoTests, ImageTextToTextRepoTests, RepoTests

__all__ = ["CausalLMRepoTests", "EncoderRepoTests", "ImageTextToTextRepoTests", "RepoTests"]
