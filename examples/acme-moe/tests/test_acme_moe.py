"""AcmeMoe under tf-scaffold's harness, and the model's own tests.

The harness (`pip install -r tests/requirements.txt`) brings every test of `CausalLMRepoTests`: loading
through the Auto classes, generation, eager vs sdpa, the KV cache, `generate()` against decoding without a cache,
conformance with the engines' contract (`tf-scaffold check`), and vLLM and SGLang serving this repo (marker `engine`).
Add the tests that are specific to this model below.
"""

import torch


try:
    from tf_scaffold.testing import CausalLMRepoTests
except ModuleNotFoundError as err:
    raise ModuleNotFoundError(
        f"{err}: these tests run on tf-scaffold's harness, `pip install -r tests/requirements.txt`"
    ) from None


class TestAcmeMoe(CausalLMRepoTests):
    # Prompt ids the engines' greedy output is compared with transformers' on.
    prompts = [[1, 40, 41, 42, 43, 44, 45], [1, 300, 17, 99, 250]]

    def test_last_logits_depend_on_the_first_token(self, model):
        # Causal attention carries every earlier token to the last position.
        ids = torch.tensor([[1, 40, 41, 42, 43], [1, 99, 41, 42, 43]])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[:, -1]
        assert not torch.allclose(logits[0], logits[1])
