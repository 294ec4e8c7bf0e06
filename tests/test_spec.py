"""Every rule of the spec: accepted answers derive the right names; rejected ones say what to change."""

import pytest

from tf_scaffold import variants
from tf_scaffold.errors import SpecError
from tf_scaffold.spec import PRESETS, build_spec, normalise_name


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
    assert spec.names.model_type == "acme_lm"
    assert spec.names.architecture == "AcmeLmForCausalLM"
    assert spec.names.base_model_class == "AcmeLmModel"
    assert spec.names.auto_map["AutoModel"] == "modeling_acme_lm.AcmeLmModel"
    assert spec.resolved_head_dim == 64
    plan = variants.tp_plan(spec)
    assert plan["layers.*.self_attn.o_proj"] == "rowwise"
    assert plan["layers.*.mlp.gate_proj"] == "colwise"
    assert not any("experts" in key or "norm" in key for key in plan)
    assert variants.kind_of(spec) is variants.CAUSAL_LM
    assert spec.vision is None and spec.moe is None and not spec.multimodal


def test_moe_answers_nest_and_default_to_qwen3_moe():
    spec = build_spec({"name": "acme-moe", "moe": True})
    assert spec.moe.num_experts == 8 and spec.moe.num_experts_per_tok == 2 and spec.moe.norm_topk_prob
    assert spec.moe.moe_intermediate_size == spec.intermediate_size // 2
    assert spec.qk_norm  # Qwen3-MoE normalises queries and keys
    assert not build_spec({"name": "acme-moe", "moe": True, "qk_norm": False}).qk_norm
    plan = variants.tp_plan(spec)
    assert plan["layers.*.mlp.experts.gate_up_proj"] == "packed_colwise"
    assert plan["layers.*.self_attn.q_norm"] == "replicated_with_grad_allreduce"
    assert "layers.*.mlp.gate_proj" not in plan
    # the answers file is flat, and reads back to the same spec
    answers = spec.answers()
    assert answers["moe"] is True and answers["num_experts"] == 8 and "vision" not in answers
    assert build_spec(answers) == spec


def test_encoder_answers_nest_and_take_bert_defaults():
    spec = build_spec({"name": "acme-encoder", "arch": "encoder"})
    enc = spec.encoder
    assert (enc.task, enc.pooling, enc.normalize, enc.type_vocab_size, enc.num_labels) == ("embed", "cls", True, 2, 2)
    # full multi-head attention, heads that split the hidden size, BERT's 512 positions
    assert spec.num_kv_heads == spec.num_heads and spec.resolved_head_dim * spec.num_heads == spec.hidden_size
    assert spec.max_position_embeddings == 512
    assert variants.kind_of(spec) is variants.FEATURE_EXTRACTION
    assert spec.names.architecture == "AcmeEncoderModel"  # the engines serve an embedding model
    assert spec.names.auto_map["AutoModelForSequenceClassification"].endswith("AcmeEncoderForSequenceClassification")
    assert "AutoModelForCausalLM" not in spec.names.auto_map
    assert variants.tp_plan(spec)["encoder.layer.*.attention.output.dense"] == "rowwise"
    classify = build_spec({"name": "acme-encoder", "arch": "encoder", "task": "classify", "num_labels": 5})
    assert classify.names.architecture == "AcmeEncoderForSequenceClassification"
    assert variants.kind_of(classify) is variants.TEXT_CLASSIFICATION
    assert any("SGLang" in note for note in variants.warnings(classify))
    # the answers file is flat, carries no decoder-only answers, and reads back to the same spec
    answers = classify.answers()
    assert answers["arch"] == "encoder" and answers["num_labels"] == 5
    assert not {"rope_theta", "num_kv_heads", "tie_word_embeddings"} & set(answers)
    assert build_spec(answers) == classify


def test_layer_types_pattern_repeats_over_the_layers():
    spec = build_spec({"name": "a", "num_layers": 5, "sliding_window": 64, "layer_types": "sliding,sliding,full"})
    assert spec.layer_types == ("sliding_attention", "sliding_attention", "full_attention") * 1 + (
        "sliding_attention",
        "sliding_attention",
    )
    assert build_spec(spec.answers()) == spec
    full = build_spec({"name": "a", "sliding_window": 64, "layer_types": ["sliding_attention", "full_attention"]})
    assert full.layer_types == ("sliding_attention", "full_attention")


def test_multimodal_answers_nest():
    spec = build_spec({"name": "acme-vl", "multimodal": True, "image_size": 32})
    assert spec.vision.image_size == 32 and spec.vision.num_image_tokens == 4
    assert variants.kind_of(spec) is variants.IMAGE_TEXT_TO_TEXT
    assert build_spec(spec.answers()) == spec


def test_every_template_file_belongs_to_a_kind():
    """The renderer writes the files a kind declares: a template no kind declares would never be written."""
    from tf_scaffold.render import ROOT_DIR, template_dir

    root = template_dir() / ROOT_DIR
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    kinds = (
        variants.CAUSAL_LM,
        variants.IMAGE_TEXT_TO_TEXT,
        variants.FEATURE_EXTRACTION,
        variants.TEXT_CLASSIFICATION,
    )
    declared = {path for kind in kinds for path in kind.files}
    assert on_disk == declared


def test_head_dim_follows_changed_sizes():
    assert build_spec({"name": "a", "hidden_size": 512}).resolved_head_dim == 128  # 512 / 4 heads
    assert build_spec({"name": "a", "hidden_size": 512, "head_dim": 32}).resolved_head_dim == 32


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"moe": True},
        {"qk_norm": True, "attention_bias": True, "sliding_window": 8, "layer_types": "sliding"},
        {"arch": "encoder"},
        {"arch": "encoder", "task": "classify", "num_labels": 3, "type_vocab_size": 0},
    ],
)
def test_parameter_count_matches_torch(tmp_path, options):
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

    from tf_scaffold import commands

    if options.get("arch") == "encoder":
        extra, auto = {}, AutoModelForSequenceClassification if options.get("task") == "classify" else AutoModel
    else:
        extra, auto = {"tie_word_embeddings": False}, AutoModelForCausalLM
    result = commands.new({"name": "count-me", **extra, **options}, tmp_path)
    model = auto.from_pretrained(result.path, trust_remote_code=True)
    assert sum(p.numel() for p in model.parameters()) == variants.num_parameters(result.spec)


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
        ({"name": "a", "num_experts": 4}, "add --moe"),
        ({"name": "a", "image_size": 32}, "add --multimodal"),
        ({"name": "a", "moe": True, "num_experts": 1}, "at least 2"),
        ({"name": "a", "moe": True, "num_experts": 4, "num_experts_per_tok": 5}, "more than num-experts"),
        ({"name": "a", "moe": True, "moe_intermediate_size": 0}, "positive"),
        ({"name": "a", "moe": True, "multimodal": True}, "not supported"),
        ({"name": "a", "sliding_window": 64}, "needs layer types"),
        ({"name": "a", "layer_types": "sliding"}, "need a window"),
        ({"name": "a", "sliding_window": 64, "layer_types": "full"}, "no layer slides"),
        ({"name": "a", "sliding_window": 64, "layer_types": "sliding,local"}, "unknown layer type"),
        ({"name": "a", "sliding_window": 4096, "layer_types": "sliding"}, "never slides"),
        ({"name": "a", "sliding_window": 0, "layer_types": "sliding"}, "positive"),
        ({"name": "a", "sliding_window": 64, "layer_types": ""}, "comma-separated"),
        ({"name": "a", "arch": "transformer"}, "unknown arch"),
        ({"name": "a", "task": "classify"}, "add --arch encoder"),
        ({"name": "a", "arch": "encoder", "task": "rerank"}, "unknown task"),
        ({"name": "a", "arch": "encoder", "pooling": "max"}, "unknown pooling"),
        ({"name": "a", "arch": "encoder", "num_labels": 0}, "positive"),
        ({"name": "a", "arch": "encoder", "type_vocab_size": -1}, "type-vocab-size"),
        ({"name": "a", "arch": "encoder", "num_kv_heads": 2}, "full multi-head attention"),
        ({"name": "a", "arch": "encoder", "head_dim": 64}, "split the hidden size"),
        ({"name": "a", "arch": "encoder", "moe": True}, "takes no --moe"),
        ({"name": "a", "arch": "encoder", "multimodal": True}, "takes no --multimodal"),
        ({"name": "a", "arch": "encoder", "qk_norm": True}, "decoder option"),
        ({"name": "a", "arch": "encoder", "sliding_window": 8, "layer_types": "sliding"}, "decoder option"),
        ({"name": "a", "arch": "encoder", "vocab_size": 200}, "WordPiece"),
        # answers the model would silently drop or that make no sense together
        ({"name": "a", "arch": "encoder", "num_labels": 3}, "add --task classify"),
        ({"name": "a", "num_layers": 2, "sliding_window": 8, "layer_types": "sliding,full,full"}, "at most one type"),
        ({"name": "a", "num_layers": 1, "sliding_window": 8, "layer_types": ["sliding", "full"]}, "at most one type"),
        ({"name": "a", "arch": "encoder", "preset": "llama-3.2-1b"}, "decoder's shape"),
    ],
)
def test_rejections(answers, fragment):
    with pytest.raises(SpecError) as err:
        build_spec(answers)
    message = str(err.value)
    assert fragment in message
    assert "\n" not in message


def test_labels_of_an_embedding_model():
    """An answers file records an embedding model's default num_labels (it reads back); the same answer given on the
    command line is refused, whatever its value: the model would drop it."""
    embed = build_spec({"name": "acme-encoder", "arch": "encoder"})
    assert embed.answers()["num_labels"] == 2 and build_spec(embed.answers()) == embed
    with pytest.raises(SpecError, match="add --task classify"):
        build_spec({"name": "acme-encoder", "arch": "encoder", "num_labels": 2}, explicit={"num_labels"})
    classify = {"name": "acme-encoder", "arch": "encoder", "task": "classify", "num_labels": 2}
    assert build_spec(classify, explicit=set(classify)).encoder.num_labels == 2
