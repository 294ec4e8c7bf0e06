"""Every rule of the spec: accepted answers derive the right names; rejected ones say what to change."""

import pytest

from scaffold.errors import SpecError
from scaffold.spec import PRESETS, build_spec, normalise_name


@pytest.mark.parametrize(
    ("name", "module", "prefix"),
    [
        ("acme-lm", "acme_lm", "AcmeLm"),
        ("AcmeLM", "acmelm", "AcmeLM"),
        ("my model 2", "my_model_2", "MyModel2"),
        ("x", "x", "X"),
        ("foo_bar.baz", "foo_bar_baz", "FooBarBaz"),
    ],
)
def test_normalise_name(name, module, prefix):
    assert normalise_name(name) == (module, prefix)


def test_derived_values():
    spec = build_spec({"name": "acme-lm"})
    assert spec.model_type == "acme_lm"
    assert spec.architecture == "AcmeLmForCausalLM"
    assert spec.base_model_class == "AcmeLmModel"
    assert spec.auto_map["AutoModel"] == "modeling_acme_lm.AcmeLmModel"
    assert spec.resolved_head_dim == 64
    assert spec.tp_plan["layers.*.self_attn.o_proj"] == "rowwise"
    assert spec.tp_plan["layers.*.mlp.gate_proj"] == "colwise"
    assert list(spec.pp_plan) == ["embed_tokens", "layers", "norm"]


def test_head_dim_follows_changed_sizes():
    assert build_spec({"name": "a", "hidden_size": 512}).resolved_head_dim == 128  # 512 / 4 heads
    assert build_spec({"name": "a", "hidden_size": 512, "head_dim": 32}).resolved_head_dim == 32


def test_parameter_count_matches_torch(tmp_path):
    from transformers import AutoModelForCausalLM

    from scaffold import commands

    result = commands.new({"name": "count-me", "tie_word_embeddings": False}, tmp_path)
    model = AutoModelForCausalLM.from_pretrained(result.path, trust_remote_code=True)
    assert sum(p.numel() for p in model.parameters()) == result.spec.num_parameters


def test_presets_are_valid():
    for preset in PRESETS:
        spec = build_spec({"name": "acme-lm", "preset": preset})
        assert spec.resolved_head_dim == 64
    assert build_spec({"name": "a", "preset": "llama-3.2-1b"}).weights is False


@pytest.mark.parametrize(
    ("answers", "fragment"),
    [
        ({"name": "class"}, "keyword"),
        ({"name": "match"}, "keyword"),
        ({"name": "a/b"}, "path separator"),
        ({"name": "..\\x"}, "path separator"),
        ({"name": "{{x}}"}, "template syntax"),
        ({"name": "9lives"}, "start with a letter"),
        ({"name": "héllo"}, "start with a letter"),
        ({"name": ""}, "empty"),
        ({"name": "llama"}, "already exists in transformers"),
        ({"name": "Qwen2"}, "already exists in transformers"),
        ({"name": "gpt-neox"}, "already exists in transformers"),
        ({"name": "a", "hidden_size": 100, "num_heads": 3}, "not divisible by num-heads"),
        ({"name": "a", "num_heads": 4, "num_kv_heads": 3}, "not divisible by num-kv-heads"),
        ({"name": "a", "head_dim": 33}, "odd"),
        ({"name": "a", "num_layers": 0}, "positive"),
        ({"name": "a", "vocab_size": -5}, "positive"),
        ({"name": "a", "vocab_size": 100}, "too small"),
        ({"name": "a", "rope_theta": 0.0}, "positive"),
        ({"name": "a", "preset": "huge"}, "unknown preset"),
        ({"name": "a", "colour": "red"}, "unknown answer"),
        ({"name": "a", "hidden_size": "wide"}, "hidden-size"),
    ],
)
def test_rejections(answers, fragment):
    with pytest.raises(SpecError) as err:
        build_spec(answers)
    message = str(err.value)
    assert fragment in message
    assert "\n" not in message
