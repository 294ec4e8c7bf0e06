"""AcmeEncoder under tf-scaffold's harness, and the model's own tests.

The harness (tf-scaffold's pytest plugin: `tests/requirements.txt` says how to install it) brings every test of
`EncoderRepoTests`: loading through the Auto classes, the tokenizer, bidirectional attention, padding, eager vs sdpa,
the classifier as vLLM calls it, the pooling files, conformance with the engines' contract (`tf-scaffold check`), and
vLLM and SGLang serving this repo (marker `engine`). Add the tests that are specific to this model below.
"""

from pathlib import Path

import torch
from transformers import AutoTokenizer


try:
    from tf_scaffold.testing import EncoderRepoTests
except ModuleNotFoundError as err:
    raise ModuleNotFoundError(
        f"{err}: these tests run on tf-scaffold's harness. tf-scaffold is not on PyPI yet: install it from its source"
        " (`pip install -e /path/to/tf-scaffold`), then `pip install -r tests/requirements.txt`"
    ) from None

TOKENIZER = AutoTokenizer.from_pretrained(Path(__file__).resolve().parents[1], trust_remote_code=True)


def prompt(text: str) -> list[int]:
    """The ids of `text` as the tokenizer wraps a sequence: `[CLS] ... [SEP]`."""
    return TOKENIZER(text)["input_ids"]


class TestAcmeEncoder(EncoderRepoTests):
    # The sequences the engines' embeddings are compared with transformers' on.
    prompts = [prompt("Backend-ready encoders."), prompt("They run in vLLM and SGLang.")]

    def test_pooler_output_starts_the_classifier(self, base_model, classifier):
        # BERT's pooler (dense and tanh on [CLS]) is `pooler` in the embedding model and the start of `classifier` in
        # the sequence classifier: loaded from this checkpoint, both classes compute the same pooled vector.
        ids = torch.tensor([prompt("Backend-ready encoders run in vLLM.")])
        with torch.no_grad():
            pooled = base_model(input_ids=ids).pooler_output
            first_token = classifier.model(input_ids=ids).last_hidden_state[:, 0]
            started = classifier.classifier.activation(classifier.classifier.dense(first_token))
        torch.testing.assert_close(pooled, started, rtol=0, atol=1e-6)
