"""AcmeEncoder under tf-scaffold's harness, and the model's own tests.

The harness (`pip install -r tests/requirements.txt`) brings every test of `EncoderRepoTests`: loading
through the Auto classes, the tokenizer, bidirectional attention, padding, eager vs sdpa, the classifier as vLLM calls
it, the pooling files, conformance with the engines' contract (`tf-scaffold check`), and vLLM and SGLang serving this
repo (marker `engine`). Add the tests that are specific to this model below.
"""

import torch


try:
    from tf_scaffold.testing import EncoderRepoTests
except ModuleNotFoundError as err:
    raise ModuleNotFoundError(
        f"{err}: these tests run on tf-scaffold's harness, `pip install -r tests/requirements.txt`"
    ) from None


class TestAcmeEncoder(EncoderRepoTests):
    # Prompt ids ([CLS] ... [SEP]) the engines' embeddings are compared with transformers' on.
    prompts = [[2, 40, 41, 42, 43, 3], [2, 300, 17, 99, 250, 60, 61, 3]]

    def test_pooler_output_is_the_dense_tanh_of_the_first_token(self, base_model):
        # transformers users get BERT's `pooler_output`; the engines pool `last_hidden_state` themselves.
        ids = torch.tensor([[2, 40, 41, 42, 43, 3]])
        with torch.no_grad():
            out = base_model(input_ids=ids)
            expected = torch.tanh(base_model.pooler.dense(out.last_hidden_state[:, 0]))
        torch.testing.assert_close(out.pooler_output, expected)
