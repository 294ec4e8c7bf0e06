"""The generated code follows the idioms of transformers' own models of the newest release (Llama, Qwen3, LLaVA),
in the ways both 5.19 and the newest release run:

- a composite config's sub-configs load from the composite checkpoint (`base_config_key`);
- a decoder with an explicit `head_dim` is not held to `hidden_size % num_attention_heads` (Qwen3);
- the RoPE base is the config class's `default_theta`, which fills any `rope_parameters` without one;
- the multimodal outputs carry `image_hidden_states` (LLaVA), and the image placeholder check traces under
  `torch.compile(fullgraph=True)`, as `_can_compile_fullgraph` claims;
- the rotary embedding runs under the caller's grad mode (upstream dropped its `@torch.no_grad()`);
- the image processor saves every value it runs with (`patch_size` included) to `processor_config.json`;
- one spelling of where the model lives: its Hub id.
"""

import json

import pytest
import torch
from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageTextToText, AutoProcessor

from tf_scaffold import commands


def _config_class(repo, attribute: str | None = None):
    config = AutoConfig.from_pretrained(repo, trust_remote_code=True)
    return type(getattr(config, attribute) if attribute else config)


@pytest.fixture(scope="module")
def vl_model(tiny_vl_repo):
    return AutoModelForImageTextToText.from_pretrained(tiny_vl_repo, trust_remote_code=True).eval()


def _image_prompt(model):
    vision = model.config.vision_config
    n = (vision.image_size // vision.patch_size) ** 2
    ids = torch.tensor(
        [[1, *[model.config.image_token_id] * n, 40, 41], [1, 40, *[model.config.image_token_id] * n, 41]]
    )
    pixels = torch.randn(2, 3, vision.image_size, vision.image_size, generator=torch.Generator().manual_seed(0))
    return ids, pixels


def test_sub_configs_load_from_the_composite_checkpoint(tiny_vl_repo):
    config = AutoConfig.from_pretrained(tiny_vl_repo, trust_remote_code=True)
    for attribute in ("text_config", "vision_config"):
        cls = type(getattr(config, attribute))
        assert cls.base_config_key == attribute
        assert cls.from_pretrained(tiny_vl_repo).to_dict() == getattr(config, attribute).to_dict()


def test_explicit_head_dim_need_not_divide_the_hidden_size(tiny_repo, tiny_vl_repo):
    # Qwen3's shape: 5 heads of 64 in a hidden size of 96 (q_proj maps 96 -> 320)
    for cls in (_config_class(tiny_repo), _config_class(tiny_vl_repo, "text_config")):
        config = cls(hidden_size=96, num_attention_heads=5, num_key_value_heads=1, head_dim=64)
        assert config.head_dim * config.num_attention_heads == 320
        with pytest.raises(Exception, match="num_key_value_heads"):
            cls(num_attention_heads=5, num_key_value_heads=2)


def test_the_rope_base_is_the_class_default_theta(tmp_path):
    repo = commands.new({"name": "theta-lm", "rope_theta": 500000.0, "weights": False}, tmp_path).path
    assert json.loads((repo / "config.json").read_text())["rope_parameters"] == {
        "rope_type": "default",
        "rope_theta": 500000.0,
    }
    cls = _config_class(repo)
    assert cls.default_theta == 500000.0
    # a RoPE configuration given without its base gets the model's, as transformers' own configs do
    scaled = cls(rope_parameters={"rope_type": "linear", "factor": 2.0})
    assert scaled.rope_parameters == {"rope_type": "linear", "factor": 2.0, "rope_theta": 500000.0}


def test_multimodal_outputs_carry_the_image_hidden_states(vl_model):
    ids, pixels = _image_prompt(vl_model)
    with torch.no_grad():
        features = torch.stack(vl_model.model.get_image_features(pixels).pooler_output)
        base = vl_model.model(input_ids=ids, pixel_values=pixels)
        head = vl_model(input_ids=ids, pixel_values=pixels)
        text_only = vl_model(input_ids=ids[:, :1])
    assert features.shape == (2, ids.shape[1] - 3, vl_model.config.text_config.hidden_size)
    assert torch.equal(base.image_hidden_states, features)
    assert torch.equal(head.image_hidden_states, features)
    assert text_only.image_hidden_states is None
    assert torch.equal(base.last_hidden_state, vl_model.model(input_ids=ids, pixel_values=pixels).last_hidden_state)


def test_image_placeholder_check_traces_under_fullgraph_compile(vl_model):
    """`_can_compile_fullgraph = True`: the count of placeholders against feature rows must not read the count back
    to the host (`int(mask.sum())` is a graph break)."""
    assert vl_model._can_compile_fullgraph
    ids, pixels = _image_prompt(vl_model)
    compiled = torch.compile(vl_model.model, fullgraph=True, backend="eager")
    with torch.no_grad():
        expected = vl_model.model(input_ids=ids, pixel_values=pixels, use_cache=False).last_hidden_state
        got = compiled(input_ids=ids, pixel_values=pixels, use_cache=False).last_hidden_state
    assert torch.equal(got, expected)
    with pytest.raises(ValueError, match="Image features and image tokens do not match"):
        vl_model.model(input_ids=ids[:, :-3], pixel_values=pixels)


def test_the_rotary_embedding_follows_the_callers_grad_mode(vl_model, tiny_repo):
    from transformers import AutoModelForCausalLM

    text = AutoModelForCausalLM.from_pretrained(tiny_repo, trust_remote_code=True)
    for rotary in (text.model.rotary_emb, vl_model.model.language_model.rotary_emb):
        rotary.inv_freq.requires_grad_(True)
        x, positions = torch.zeros(1, 4, 8), torch.arange(4)[None]
        cos, sin = rotary(x, positions)
        assert cos.requires_grad and sin.requires_grad
        with torch.no_grad():
            assert not rotary(x, positions)[0].requires_grad
        rotary.inv_freq.requires_grad_(False)


def test_the_image_processor_saves_its_patch_size(tiny_vl_repo, tmp_path):
    saved = json.loads((tiny_vl_repo / "processor_config.json").read_text())["image_processor"]
    config = AutoConfig.from_pretrained(tiny_vl_repo, trust_remote_code=True)
    assert saved["patch_size"] == config.vision_config.patch_size
    processor = AutoProcessor.from_pretrained(tiny_vl_repo, trust_remote_code=True)
    processor.image_processor.patch_size = 8
    processor.save_pretrained(tmp_path)
    again = json.loads((tmp_path / "processor_config.json").read_text())["image_processor"]
    assert again["patch_size"] == 8
    assert AutoImageProcessor.from_pretrained(tiny_vl_repo, trust_remote_code=True).patch_size == saved["patch_size"]


def test_the_model_has_one_location_its_hub_id(every_kind):
    record = json.loads((every_kind / ".tf-scaffold.json").read_text())
    hub_id = record["answers"].get("hub_id") or f"your-org/{every_kind.name}"
    for path in every_kind.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".md"):
            text = path.read_text()
            assert '"path/to/' not in text, f"{path.name} names the model as a local path"
            assert "your-org/" not in text.replace(hub_id, ""), f"{path.name} names another Hub id than {hub_id}"
