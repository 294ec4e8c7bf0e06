"""AcmeLm under tf-scaffold's harness, and the model's own tests.

The harness (tf-scaffold's pytest plugin: `tests/requirements.txt` says how to install it) brings every test of
`CausalLMRepoTests`: loading through the Auto classes, generation, eager vs sdpa, the KV cache, `generate()` against
decoding without a cache, conformance with the engines' contract (`tf-scaffold check`), and vLLM and SGLang serving
this repo (marker `engine`). Add the tests that are specific to this model below.
"""

from pathlib import Path

import torch
from transformers import AutoTokenizer


try:
    from tf_scaffold.testing import CausalLMRepoTests
except ModuleNotFoundError as err:
    raise ModuleNotFoundError(
        f"{err}: these tests run on tf-scaffold's harness. tf-scaffold is not on PyPI yet: install it from its source"
        " (`pip install -e /path/to/tf-scaffold`), then `pip install -r tests/requirements.txt`"
    ) from None

TOKENIZER = AutoTokenizer.from_pretrained(Path(__file__).resolve().parents[1], trust_remote_code=True)


def prompt(text: str) -> list[int]:
    """The ids of `text` after the bos token, as the chat template starts a conversation."""
    return [TOKENIZER.bos_token_id, *TOKENIZER.encode(text, add_special_tokens=False)]


class TestAcmeLm(CausalLMRepoTests):
    # The prompts the engines' greedy output is compared with transformers' on.
    prompts = [prompt("The engines serve this model"), prompt("Hello, my name is")]

    def test_last_logits_depend_on_the_first_token(self, model):
        # Causal attention carries every earlier token to the last position: another first word, other last logits.
        ids = torch.tensor([prompt("Apples are red and sweet")] * 2)
        ids[1, 1] = ids[0, 2]
        with torch.no_grad():
            logits = model(input_ids=ids).logits[:, -1]
        assert not torch.allclose(logits[0], logits[1])
