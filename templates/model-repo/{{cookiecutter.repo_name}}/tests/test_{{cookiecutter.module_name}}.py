"""{{ cookiecutter.class_prefix }} under tf-scaffold's harness, and the model's own tests.

{% if cookiecutter.encoder -%}
The harness (tf-scaffold's pytest plugin: `tests/requirements.txt` says how to install it) brings every test of
`{{ cookiecutter.suite_class }}`: loading through the Auto classes, the tokenizer, bidirectional attention, padding,
eager vs sdpa, the classifier as vLLM calls it, the pooling files, conformance with the engines' contract
(`tf-scaffold check`), and vLLM and SGLang serving this repo (marker `engine`). Add the tests that are specific to
this model below.
{%- else -%}
The harness (tf-scaffold's pytest plugin: `tests/requirements.txt` says how to install it) brings every test of
`{{ cookiecutter.suite_class }}`: loading through the Auto classes, generation, eager vs sdpa, the KV cache,
`generate()` against decoding without a cache, conformance with the engines' contract (`tf-scaffold check`), and vLLM
and SGLang serving this repo (marker `engine`). Add the tests that are specific to this model below.
{%- endif %}
"""

from pathlib import Path

import torch
from transformers import AutoTokenizer


try:
    from tf_scaffold.testing import {{ cookiecutter.suite_class }}
except ModuleNotFoundError as err:
    raise ModuleNotFoundError(
        f"{err}: these tests run on tf-scaffold's harness. tf-scaffold is not on PyPI yet: install it from its source"
        " (`pip install -e /path/to/tf-scaffold`), then `pip install -r tests/requirements.txt`"
    ) from None

TOKENIZER = AutoTokenizer.from_pretrained(Path(__file__).resolve().parents[1], trust_remote_code=True)
{%- if cookiecutter.window_prompt %}
# Repeated, it runs past the sliding window.
WINDOW_TEXT = "Sliding windows keep the last tokens in view, and the engines must agree on where the window starts."
{%- endif %}


def prompt(text: str) -> list[int]:
{%- if cookiecutter.encoder %}
    """The ids of `text` as the tokenizer wraps a sequence: `[CLS] ... [SEP]`."""
    return TOKENIZER(text)["input_ids"]
{%- else %}
    """The ids of `text` after the bos token, as the chat template starts a conversation."""
    return [TOKENIZER.bos_token_id, *TOKENIZER.encode(text, add_special_tokens=False)]
{%- endif %}


class Test{{ cookiecutter.class_prefix }}({{ cookiecutter.suite_class }}):
{%- if cookiecutter.encoder %}
    # The sequences the engines' {% if cookiecutter.task == "embed" %}embeddings{% else %}scores{% endif %} are compared with transformers' on.
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
{%- else %}
{%- if cookiecutter.window_prompt %}
    # The prompts the engines' greedy output is compared with transformers' on. The first runs past the sliding window
    # ({{ cookiecutter.sliding_window }} tokens), so the engines' windowed attention is compared where it drops tokens.
    prompts = [prompt(" ".join([WINDOW_TEXT] * 12))[: {{ cookiecutter.window_prompt_length }}], prompt("Hello, my name is")]
{%- else %}
    # The prompts the engines' greedy output is compared with transformers' on.
    prompts = [prompt("The engines serve this model"), prompt("Hello, my name is")]
{%- endif %}
{%- if cookiecutter.multimodal %}

    def test_image_features_fill_the_placeholders(self, model, processor):
        # The projected features of the image land on its placeholder tokens, in order; the text keeps its embeddings.
        from PIL import Image

        image = Image.new("RGB", (320, 240), (200, 40, 90))
        inputs = processor(text=f"{processor.image_token}What is in this picture?", images=[image], return_tensors="pt")
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
{%- else %}

    def test_last_logits_depend_on_the_first_token(self, model):
        # Causal attention carries every earlier token to the last position: another first word, other last logits.
        ids = torch.tensor([prompt("Apples are red and sweet")] * 2)
        ids[1, 1] = ids[0, 2]
        with torch.no_grad():
            logits = model(input_ids=ids).logits[:, -1]
        assert not torch.allclose(logits[0], logits[1])
{%- endif %}
{%- endif %}
