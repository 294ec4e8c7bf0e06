"""Images end to end: processor -> generate() in transformers, and the real engines on an image prompt.

The token-count contract (`_get_num_multimodal_tokens`, `pixel_values` rows, `get_image_features` rows,
`mm_token_type_ids`, the two ways of merging features) is checked for many image sizes by `test_conformance.py`.
"""

import json
from pathlib import Path

import pytest
import torch
from conformance import generate_mismatch
from harness import (
    Sequence,
    compare,
    detect_platform,
    engine_env,
    engine_sequence,
    engine_skip_reason,
    noise_image,
    run_engine_runner,
    sglang_cpu_multimodal_reason,
    transformers_image_greedy,
)
from transformers import AutoModelForImageTextToText, AutoProcessor


IMAGE_TOKEN = "<|image|>"
# (height, width, seed): different sizes and aspect ratios, one of them smaller than the model's input.
IMAGES = [[240, 320, 0], [900, 17, 1], [40, 50, 2]]
MAX_TOKENS = 8


@pytest.fixture(scope="module")
def processor(repo):
    return AutoProcessor.from_pretrained(repo, trust_remote_code=True)


@pytest.fixture(scope="module")
def model(repo, needs_weights):
    return AutoModelForImageTextToText.from_pretrained(repo, trust_remote_code=True, dtype=torch.float32).eval()


def chat(processor, num_images: int) -> str:
    content = [{"type": "image"} for _ in range(num_images)]
    content.append({"type": "text", "text": "Describe the pictures."})
    messages = [{"role": "user", "content": content}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


def test_auto_classes_load_the_repo(processor, model, config_json):
    auto_map = config_json["auto_map"]
    assert type(processor).__name__ == auto_map["AutoProcessor"].split(".")[-1]
    assert type(model).__name__ == auto_map["AutoModelForImageTextToText"].split(".")[-1]
    assert processor.image_token == IMAGE_TOKEN
    assert processor.image_token_id == config_json["image_token_id"]


@pytest.mark.parametrize("num_images", [1, 3])
def test_chat_with_images_generates(processor, model, num_images):
    images = [noise_image(*spec) for spec in IMAGES[:num_images]]
    prompt = chat(processor, num_images)
    assert prompt.count(IMAGE_TOKEN) == num_images
    inputs = processor(text=prompt, images=images, return_tensors="pt")
    counts = processor._get_num_multimodal_tokens(image_sizes=[[im.height, im.width] for im in images])
    placeholders = int((inputs["input_ids"] == processor.image_token_id).sum())
    assert placeholders == sum(counts.num_image_tokens)
    assert inputs["pixel_values"].shape[0] == sum(counts.num_image_patches)
    out = model.generate(**inputs, max_new_tokens=MAX_TOKENS, min_new_tokens=MAX_TOKENS, do_sample=False)
    assert out.shape == (1, inputs["input_ids"].shape[1] + MAX_TOKENS)


def test_generate_with_images_equals_greedy_decoding_without_cache(processor, model):
    # With the KV cache `generate()` passes the pixels on the first step only; without it every step re-reads them.
    inputs = processor(text=chat(processor, 3), images=[noise_image(*spec) for spec in IMAGES], return_tensors="pt")
    problem = generate_mismatch(
        model,
        inputs["input_ids"],
        inputs["attention_mask"],
        max_new_tokens=MAX_TOKENS,
        pixel_values=inputs["pixel_values"],
    )
    assert problem is None, problem


def test_generated_tokens_depend_on_the_image(processor, model):
    # The placeholder weights are large enough that the image changes the answer: an engine that dropped or
    # misplaced the image features would not reproduce transformers' tokens.
    prompt = chat(processor, 1)
    answers = set()
    for spec in IMAGES:
        inputs = processor(text=prompt, images=[noise_image(*spec)], return_tensors="pt")
        out = model.generate(**inputs, max_new_tokens=MAX_TOKENS, do_sample=False)
        answers.add(tuple(out[0, inputs["input_ids"].shape[1] :].tolist()))
    assert len(answers) > 1


def test_pixels_reach_the_model_on_the_first_step_only(processor, model):
    seen = []
    hook = model.model.register_forward_pre_hook(
        lambda _module, _args, kwargs: seen.append(kwargs.get("pixel_values") is not None),
        with_kwargs=True,
    )
    try:
        inputs = processor(text=chat(processor, 1), images=[noise_image(*IMAGES[0])], return_tensors="pt")
        model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    finally:
        hook.remove()
    assert seen == [True, False, False, False]


# ---- the real engines on an image prompt ----------------------------------------------------------------------------


def run_image_prompt(engine: str, repo: Path, platform, prompt: str, tmp_path: Path) -> Sequence:
    args = [f"{engine}-image", str(repo), prompt, json.dumps(IMAGES), str(MAX_TOKENS)]
    proc, result = run_engine_runner(repo, args, engine_env(repo, platform, tmp_path))
    assert result is not None, f"{engine} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    print(f"{engine} {result['version']} on {result['device']} ({result['dtype']}): {result.get('architectures')}")
    assert result["transformers_backend"] is True, f"{engine} did not use its Transformers backend"
    return engine_sequence(result["sequences"][0])


@pytest.fixture(scope="module")
def image_prompt(processor):
    return chat(processor, len(IMAGES))


@pytest.mark.engine
@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_engine_serves_an_image_prompt_like_transformers(
    repo, needs_weights, text_config_json, processor, image_prompt, engine, tmp_path
):
    platform = detect_platform()
    reason = engine_skip_reason(engine, platform, text_config_json)
    if engine == "sglang":
        reason = reason or sglang_cpu_multimodal_reason(platform)
    if reason:
        pytest.skip(reason)
    reference = transformers_image_greedy(
        repo, platform, image_prompt, [noise_image(*spec) for spec in IMAGES], MAX_TOKENS
    )
    got = run_image_prompt(engine, repo, platform, image_prompt, tmp_path)
    problem = compare(reference, got, platform.exact)
    assert problem is None, problem
