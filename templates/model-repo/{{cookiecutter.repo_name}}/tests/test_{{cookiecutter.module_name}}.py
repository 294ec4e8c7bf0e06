"""{{ cookiecutter.class_prefix }} under tf-scaffold's harness, and the model's own tests.

{% if cookiecutter.encoder -%}
The harness (`pip install -r tests/requirements.txt`) brings every test of `{{ cookiecutter.suite_class }}`: loading
through the Auto classes, the tokenizer, bidirectional attention, padding, eager vs sdpa, the classifier as vLLM calls
it, the pooling files, conformance with the engines' contract (`tf-scaffold check`), and vLLM and SGLang serving this
repo (marker `engine`). Add the tests that are specific to this model below.
{%- else -%}
The harness (`pip install -r tests/requirements.txt`) brings every test of `{{ cookiecutter.suite_class }}`: loading
through the Auto classes, generation, eager vs sdpa, the KV cache, `generate()` against decoding without a cache,
conformance with the engines' contract (`tf-scaffold check`), and vLLM and SGLang serving this repo (marker `engine`).
Add the tests that are specific to this model below.
{%- endif %}
"""

import torch


try:
    from tf_scaffold.testing import {{ cookiecutter.suite_class }}
except ModuleNotFoundError as err:
    raise ModuleNotFoundError(f"{err}: these tests run on tf-scaffold's harness, `pip install -r tests/requirements.txt`") from None


class Test{{ cookiecutter.class_prefix }}({{ cookiecutter.suite_class }}):
{%- if cookiecutter.encoder %}
    # Prompt ids ([CLS] ... [SEP]) the engines' {% if cookiecutter.task == "embed" %}embeddings{% else %}scores{% endif %} are compared with transformers' on.
    prompts = [[{{ cookiecutter.cls_token_id }}, 40, 41, 42, 43, {{ cookiecutter.sep_token_id }}], [{{ cookiecutter.cls_token_id }}, 300, 17, 99, 250, 60, 61, {{ cookiecutter.sep_token_id }}]]

    def test_pooler_output_is_the_dense_tanh_of_the_first_token(self, base_model):
        # transformers users get BERT's `pooler_output`; the engines pool `last_hidden_state` themselves.
        ids = torch.tensor([[{{ cookiecutter.cls_token_id }}, 40, 41, 42, 43, {{ cookiecutter.sep_token_id }}]])
        with torch.no_grad():
            out = base_model(input_ids=ids)
            expected = torch.tanh(base_model.pooler.dense(out.last_hidden_state[:, 0]))
        torch.testing.assert_close(out.pooler_output, expected)
{%- elif cookiecutter.window_prompt %}
    # Prompt ids the engines' greedy output is compared with transformers' on. The first is longer than the sliding
    # window ({{ cookiecutter.sliding_window }} tokens), so the engines' windowed attention is compared past it.
    prompts = [[1] + [40 + i % 200 for i in range({{ cookiecutter.window_prompt_length }})], [1, 300, 17, 99, 250]]
{%- else %}
    # Prompt ids the engines' greedy output is compared with transformers' on.
    prompts = [[1, 40, 41, 42, 43, 44, 45], [1, 300, 17, 99, 250]]
{%- endif %}
{%- if not cookiecutter.encoder %}

    def test_last_logits_depend_on_the_first_token(self, model):
        # Causal attention carries every earlier token to the last position.
        ids = torch.tensor([[1, 40, 41, 42, 43], [1, 99, 41, 42, 43]])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[:, -1]
        assert not torch.allclose(logits[0], logits[1])
{%- endif %}
