"""`--arch encoder` against its in-library twin, BERT, as the independent reference.

- The embedding model (`--task embed`, the base model) has `BertModel`'s state-dict keys and, from the same
  safetensors and an equivalent `BertConfig`, bit-identical `last_hidden_state` and `pooler_output` (eager and sdpa),
  with padding and both token types in the batch.
- The classifier (`--task classify`) keeps BERT's pooler inside its `classifier` module (the one module vLLM applies
  after the encoder): with its weights mapped onto `BertForSequenceClassification`
  (`model.*` -> `bert.*`, `classifier.dense` -> `bert.pooler.dense`, `classifier.out_proj` -> `classifier`) the two
  give bit-identical logits and the same loss.
"""

import json

import pytest
import torch
from references import SPY, assert_same_keywords, attention_keywords
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
)

from tf_scaffold import commands

BERT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "pad_token_id",
)


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoder-twins")
    return {
        "embed": commands.new({"name": "twin-encoder", "arch": "encoder"}, root).path,
        "classify": commands.new(
            {"name": "twin-classifier", "arch": "encoder", "task": "classify", "num_labels": 3}, root
        ).path,
    }


def bert_config(repo, **extra) -> BertConfig:
    cfg = json.loads((repo / "config.json").read_text())
    return BertConfig(**{key: cfg[key] for key in BERT_FIELDS}, **extra)


def batch(vocab_size: int) -> dict:
    """Three sequences of 24 ids: the second right-padded by 9, the third with a second segment (token type 1)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab_size, (3, 24), generator=g)
    mask = torch.ones_like(ids)
    ids[1, 15:], mask[1, 15:] = 0, 0
    types = torch.zeros_like(ids)
    types[2, 12:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def test_embedding_model_keys_equal_bert(repos):
    ours = AutoModel.from_pretrained(repos["embed"], trust_remote_code=True)
    with torch.device("meta"):
        ref = BertModel(bert_config(repos["embed"]))
    assert sorted(ours.state_dict()) == sorted(ref.state_dict())
    for key, value in ref.state_dict().items():
        assert ours.state_dict()[key].shape == value.shape, key


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_embedding_model_bit_exact_against_bert(repos, impl):
    repo = repos["embed"]
    ours = AutoModel.from_pretrained(repo, trust_remote_code=True, attn_implementation=impl, dtype=torch.float32)
    ref = BertModel.from_pretrained(repo, config=bert_config(repo), attn_implementation=impl, dtype=torch.float32)
    ours.eval(), ref.eval()
    inputs = batch(ours.config.vocab_size)
    with torch.no_grad():
        a, b = ours(**inputs), ref(**inputs)
    keep = inputs["attention_mask"].bool()
    assert (a.last_hidden_state[keep] - b.last_hidden_state[keep]).abs().max().item() == 0.0
    assert (a.pooler_output - b.pooler_output).abs().max().item() == 0.0
    assert a.last_hidden_state.std() > 0.1  # the random weights shape the output


def test_attention_function_receives_berts_keywords(repos):
    repo = repos["embed"]
    ours = AutoModel.from_pretrained(repo, trust_remote_code=True, attn_implementation=SPY).eval()
    ref = BertModel(bert_config(repo, attn_implementation=SPY)).eval()
    inputs = batch(ours.config.vocab_size)
    inputs["position_ids"] = torch.arange(inputs["input_ids"].shape[1]).expand_as(inputs["input_ids"])  # as engines do
    theirs = attention_keywords(ref, **inputs)
    assert all(layer["position_ids"] for layer in theirs)
    assert_same_keywords(attention_keywords(ours, **inputs), theirs)


def test_token_types_reach_the_model(repos):
    ours = AutoModel.from_pretrained(repos["embed"], trust_remote_code=True).eval()
    inputs = batch(ours.config.vocab_size)
    with torch.no_grad():
        a = ours(**inputs).last_hidden_state[2]
        b = ours(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state[2]
    assert (a - b).abs().max().item() > 1e-3


def bert_state(ours) -> dict:
    """The classifier's weights under `BertForSequenceClassification`'s names."""
    renames = (
        ("classifier.dense.", "bert.pooler.dense."),
        ("classifier.out_proj.", "classifier."),
        ("model.", "bert."),
    )
    state = {}
    for key, value in ours.state_dict().items():
        for old, new in renames:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        state[key] = value
    return state


def test_classifier_bit_exact_against_bert_for_sequence_classification(repos):
    repo = repos["classify"]
    ours = AutoModelForSequenceClassification.from_pretrained(repo, trust_remote_code=True, dtype=torch.float32)
    ref = BertForSequenceClassification(bert_config(repo, num_labels=3))
    state = bert_state(ours)
    assert sorted(state) == sorted(ref.state_dict())  # one-to-one: nothing missing, nothing extra
    ref.load_state_dict(state)
    ours.eval(), ref.eval()
    inputs = batch(ours.config.vocab_size)
    labels = torch.tensor([0, 2, 1])
    with torch.no_grad():
        a, b = ours(**inputs, labels=labels), ref(**inputs, labels=labels)
    assert a.logits.shape == (3, 3)
    assert (a.logits - b.logits).abs().max().item() == 0.0
    assert (a.loss - b.loss).abs().item() == 0.0
    assert a.logits.std() > 0


def _loading_info(auto, repo):
    model, info = auto.from_pretrained(repo, trust_remote_code=True, dtype=torch.float32, output_loading_info=True)
    return model.eval(), {key: sorted(info[key]) for key in ("missing_keys", "unexpected_keys", "mismatched_keys")}


def test_a_classifier_from_the_embedding_checkpoint_keeps_berts_pooler(repos, tmp_path):
    """Fine-tuning starts from the embedding model: its pooler becomes the start of the classifier's head, as
    `BertForSequenceClassification` keeps `BertModel`'s pooler; only the projection to the labels is new."""
    from safetensors import safe_open

    repo = repos["embed"]
    ours, info = _loading_info(AutoModelForSequenceClassification, repo)
    assert info == {
        "missing_keys": ["classifier.out_proj.bias", "classifier.out_proj.weight"],
        "unexpected_keys": [],
        "mismatched_keys": [],
    }
    with safe_open(repo / "model.safetensors", "pt") as f:
        assert torch.equal(ours.classifier.dense.weight, f.get_tensor("pooler.dense.weight"))
        assert torch.equal(ours.classifier.dense.bias, f.get_tensor("pooler.dense.bias"))
    # the reference: BERT's classifier from the same checkpoint (exactly `BertModel`'s keys), with our new projection
    ref = BertForSequenceClassification.from_pretrained(
        repo, config=bert_config(repo, num_labels=2), dtype=torch.float32
    )
    with torch.no_grad():
        ref.classifier.weight.copy_(ours.classifier.out_proj.weight)
        ref.classifier.bias.copy_(ours.classifier.out_proj.bias)
    ref.eval()
    inputs = batch(ours.config.vocab_size)
    with torch.no_grad():
        assert (ours(**inputs).logits - ref(**inputs).logits).abs().max().item() == 0.0
    # saved after fine-tuning, it is a classifier checkpoint the engines load: `model.*` and `classifier.*`
    ours.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as f:
        keys = set(f.keys())
    assert {"classifier.dense.weight", "classifier.out_proj.weight"} <= keys
    assert all(key.startswith(("model.", "classifier.")) for key in keys), sorted(keys)


def test_the_embedding_model_from_the_classifier_checkpoint_has_its_pooler(repos, tmp_path):
    """`AutoModel` on a classifier repo: BERT's pooler is the classifier's `classifier.dense`, not a fresh one."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    repo = repos["classify"]
    ours, info = _loading_info(AutoModel, repo)
    assert info == {
        "missing_keys": [],
        "unexpected_keys": ["classifier.out_proj.bias", "classifier.out_proj.weight"],
        "mismatched_keys": [],
    }
    # the reference: BertModel from the same weights under BertForSequenceClassification's names
    classifier = AutoModelForSequenceClassification.from_pretrained(repo, trust_remote_code=True, dtype=torch.float32)
    bert = tmp_path / "bert"
    bert.mkdir()
    save_file({k: v.contiguous() for k, v in bert_state(classifier).items()}, str(bert / "model.safetensors"))
    bert_config(repo, num_labels=3).save_pretrained(bert)
    ref = BertModel.from_pretrained(bert, dtype=torch.float32).eval()
    inputs = batch(ours.config.vocab_size)
    with torch.no_grad():
        a, b = ours(**inputs), ref(**inputs)
    assert (a.pooler_output - b.pooler_output).abs().max().item() == 0.0
    assert a.pooler_output.std() > 0
    # saved again, it is an embedding checkpoint: BertModel's keys
    ours.save_pretrained(tmp_path / "again")
    with safe_open(tmp_path / "again" / "model.safetensors", "pt") as f:
        keys = sorted(f.keys())
    assert keys == sorted(BertModel(bert_config(repo)).state_dict())


def test_each_checkpoint_loads_into_its_own_class_unchanged(repos, tmp_path):
    """The mapping only ever fills the other class: each class loads its own checkpoint as it is and saves the
    same keys back (vLLM loads the files by these names)."""
    from safetensors import safe_open

    for task, auto in (("embed", AutoModel), ("classify", AutoModelForSequenceClassification)):
        repo = repos[task]
        model, info = _loading_info(auto, repo)
        assert not any(info.values()), (task, info)
        model.save_pretrained(tmp_path / task)
        with (
            safe_open(repo / "model.safetensors", "pt") as f,
            safe_open(tmp_path / task / "model.safetensors", "pt") as g,
        ):
            assert sorted(f.keys()) == sorted(g.keys())
            for key in f.keys():
                assert torch.equal(f.get_tensor(key), g.get_tensor(key)), key
