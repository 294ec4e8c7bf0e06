"""AcmeVl under tf-scaffold's harness, and the model's own tests.

The harness (tf-scaffold's pytest plugin: `tests/requirements.txt` says how to install it) brings every test of
`ImageTextToTextRepoTests`: loading through the Auto classes, generation, eager vs sdpa, the KV cache, `generate()`
against decoding without a cache, conformance with the engines' contract (`tf-scaffold check`), and vLLM and SGLang
serving this repo (marker `engine`). Add the tests that are specific to this model below.
"""

from pathlib import Path

import torch
from transformers import AutoTokenizer


try:
    from tf_scaffold.testing import ImageTextToTextRepoTests
except ModuleNotFoundError as err:
    raise ModuleNotFoundError(
        f"{err}: these tests run on tf-scaffold's harness. tf-scaffold is not on PyPI yet: install it from its source"
        " (`pip install -e /path/to/tf-scaffold`), then `pip install -r tests/requirements.txt`"
    ) from None

TOKENIZER = AutoTokenizer.from_pretrained(Path(__file__).resolve().parents[1], trust_remote_code=True)


def prompt(text: str) -> list[int]:
    """The ids of `text` after the bos token, as the chat template starts a conversation."""
    return [TOKENIZER.bos_token_id, *TOKENIZER.encode(text, add_special_tokens=False)]


class TestAcmeVl(ImageTextToTextRepoTests):
    # The prompts the engines' greedy output is compared with transformers' on.
    prompts = [prompt("The engines serve this model"), prompt("Hello, my name is")]

    def test_image_features_fill_the_placeholders(self, model, processor):
        # The projected features of the image land on its placeholder tokens, in order; the text keeps its embeddings.
        from PIL import Image

        image = Image.new("RGB", (320, 240), (200, 40, 90))
        inputs = processor(
            text=f"{processor.image_token}What is in this picture?", images=[image], return_tensors="pt"
        )
        seen = {}
        hook = model.model.language_model.register_forward_pre_hook(
            lambda _module, _args, kwargs: seen.update(kwargs), with_kwargs=True
        )
        try:
            with torch.no_grad():
                model(**inputs)
                features = torch.cat(model.get_image_features(inputs["pixel_values"]).pooler_output)
                text = model.get_input_embeddings()(inputs["input_ids"])
        finally:
            hook.remove()
        mask = inputs["input_ids"] == model.config.image_token_id
        assert int(mask.sum()) == features.shape[0] > 0
        torch.testing.assert_close(seen["inputs_embeds"][mask], features, rtol=0, atol=0)
        torch.testing.assert_close(seen["inputs_embeds"][~mask], text[~mask], rtol=0, atol=0)
