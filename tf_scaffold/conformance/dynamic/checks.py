"""The dynamic checks, each a function of the model(s) the session built; `fail(id, message)` records a finding."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tf_scaffold.conformance.dynamic.generation import cache_argument, generate_mismatch
from tf_scaffold.conformance.dynamic.probe import missing_module
from tf_scaffold.facts import HEAD_AUTO_CLASSES

ATOL = 1e-5


def head_auto_class_name(auto_map) -> str:
    """The name of the transformers Auto class for the repo's head model (causal LM, image-text-to-text, or a
    sequence classifier), from auto_map."""
    auto_map = auto_map if isinstance(auto_map, dict) else {}
    return next((k for k in HEAD_AUTO_CLASSES if k in auto_map), "AutoModelForCausalLM")


def head_auto_class(config):
    """The transformers Auto class for the repo's head model."""
    import transformers

    return getattr(transformers, head_auto_class_name(getattr(config, "auto_map", None)))


def first(out):
    if isinstance(out, (tuple, list)):
        return out[0]
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out.logits


def maxdiff(a, b) -> float:
    return float((a.float() - b.float()).abs().max()) if a.shape == b.shape else float("inf")


# Image sizes (height, width) the multimodal checks use: vLLM profiles memory with 10000x10000.
MM_IMAGE_SIZES = ((10000, 10000), (240, 320), (17, 900), (64, 64), (333, 31))
MM_IDS = ("TFS120", "TFS121", "TFS122", "TFS123", "TFS124", "TFS125")


def _runs(mask) -> list[int]:
    """Lengths of the runs of True in a 1-D bool tensor."""
    runs, current = [], 0
    for flag in mask.tolist():
        if flag:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    return runs + ([current] if current else [])


def _feature_matrix(features):
    """get_image_features' pooler_output (one tensor per image, or one stacked tensor) as (rows, hidden), the way
    vLLM flattens it before writing the rows into the placeholders."""
    import torch

    if isinstance(features, (list, tuple)):
        return torch.cat([f.reshape(-1, f.shape[-1]) for f in features])
    return features.reshape(-1, features.shape[-1])


def _check_multimodal_dynamic(root: Path, base, head, config, wanted, ran, fail, skip) -> None:
    """The processor and the image path, driven as vLLM and SGLang drive them; `head` (or None) also generates from
    an image prompt for TFS111."""
    import numpy as np
    import torch
    from PIL import Image
    from transformers import AutoProcessor

    if not wanted & set(MM_IDS):
        return
    ran.append("TFS120")
    try:
        processor = AutoProcessor.from_pretrained(root, trust_remote_code=True)
    except Exception as err:  # noqa: BLE001 - any failure here is the finding
        fail(
            "TFS120",
            f"AutoProcessor.from_pretrained failed: {type(err).__name__}: {err}",
        )
        for check_id in MM_IDS[1:]:
            if check_id in wanted:
                skip(check_id, "needs the processor, which does not load (TFS120)")
        return
    token = getattr(processor, "image_token", None)
    token_id = getattr(config, "image_token_id", None)
    if token is None or token_id is None or not hasattr(processor, "image_processor"):
        fail(
            "TFS120",
            "the processor has no image_processor or image_token, or the config no image_token_id",
        )
        for check_id in MM_IDS[1:]:
            if check_id in wanted:
                skip(check_id, "needs the processor's image_token and the config's image_token_id (TFS120)")
        return
    ran.extend(i for i in MM_IDS[1:] if i in wanted)
    rng = np.random.default_rng(0)

    def image(height: int, width: int):
        # plain colour: as large, without 300 MB of random numbers
        if height * width > 2048 * 2048:
            return Image.new("RGB", (width, height), (200, 120, 40))
        return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))

    counter = getattr(processor, "_get_num_multimodal_tokens", None)
    if counter is None:
        fail("TFS121", f"{type(processor).__name__} has no _get_num_multimodal_tokens")
    for height, width in MM_IMAGE_SIZES:
        where = f"{height}x{width} image"
        try:
            inputs = processor(
                text=f"a{token}b",
                images=[image(height, width)],
                return_tensors="pt",
                return_mm_token_type_ids=True,
            )
        except Exception as err:  # noqa: BLE001 - any failure here is the finding
            fail(
                "TFS120",
                f"processor(text, images=[{where}]) failed: {type(err).__name__}: {err}",
            )
            return
        placeholders = int((inputs["input_ids"][0] == token_id).sum())
        rows = int(inputs["pixel_values"].shape[0])
        if counter is not None:
            try:
                data = counter(image_sizes=[[height, width]])
                counted, patches = (
                    data["num_image_tokens"][0],
                    data["num_image_patches"][0],
                )
            except Exception as err:  # noqa: BLE001 - any failure here is the finding
                fail(
                    "TFS121",
                    f"_get_num_multimodal_tokens(image_sizes=[[{height}, {width}]]) failed: {err!r}",
                )
            else:
                if counted != placeholders:
                    fail(
                        "TFS121",
                        f"{where}: _get_num_multimodal_tokens says {counted} tokens, "
                        f"the processor inserts {placeholders}",
                    )
                if patches != rows:
                    fail(
                        "TFS122",
                        f"{where}: num_image_patches {patches}, pixel_values has {rows} rows",
                    )
        with torch.no_grad():
            features = base.get_image_features(inputs["pixel_values"], return_dict=True).pooler_output
        feature_rows = int(_feature_matrix(features).shape[0])
        if feature_rows != placeholders:
            fail(
                "TFS123",
                f"{where}: get_image_features returns {feature_rows} rows for {placeholders} placeholder tokens",
            )

    # Three images of different sizes in one prompt: one contiguous marked run per image, and the two ways
    # the engines merge image features agree bit for bit.
    sizes = MM_IMAGE_SIZES[1:4]
    inputs = processor(
        text=f"x{token}y{token}z{token}w",
        images=[image(h, w) for h, w in sizes],
        return_tensors="pt",
        return_mm_token_type_ids=True,
    )
    ids = inputs["input_ids"]
    types = torch.as_tensor(inputs["mm_token_type_ids"])[0]
    runs = _runs(types == 1)
    expected = _runs(ids[0] == token_id)
    if len(runs) != len(sizes) or runs != expected:
        fail(
            "TFS124",
            f"3 images: mm_token_type_ids marks runs {runs}, the placeholders form runs {expected}",
        )
    if "TFS125" in wanted:
        with torch.no_grad():
            try:
                merged = first(
                    base(
                        input_ids=ids,
                        pixel_values=inputs["pixel_values"],
                        use_cache=False,
                        return_dict=False,
                    )
                )
            except Exception as err:  # noqa: BLE001 - any failure here is the finding
                fail(
                    "TFS125",
                    f"forward(pixel_values=...) failed: {type(err).__name__}: {err}",
                )
                return
            features = base.get_image_features(inputs["pixel_values"], return_dict=True).pooler_output
            features = _feature_matrix(features)
            embeds = base.get_input_embeddings()(ids).clone()
            mask = ids == token_id
            if int(mask.sum()) != features.shape[0]:
                fail(
                    "TFS125",
                    f"{int(mask.sum())} placeholders for {features.shape[0]} feature rows",
                )
                return
            embeds[mask] = features.to(embeds.dtype)  # what vLLM does with the features
            by_hand = first(base(inputs_embeds=embeds, use_cache=False, return_dict=False))
        if not torch.equal(merged, by_hand):
            fail(
                "TFS125",
                f"forward(pixel_values) and inputs_embeds merged by hand differ by {maxdiff(merged, by_hand):.3g}",
            )
    if head is not None:
        problem = generate_mismatch(
            head, ids, torch.ones_like(ids), pixel_values=inputs["pixel_values"].to(head.dtype)
        )
        if problem:
            fail("TFS111", f"a prompt with 3 images: {problem}")


def _check_kv_cache(model, ids, fail) -> None:
    import torch
    from transformers import DynamicCache

    name = cache_argument(model)
    with torch.no_grad():
        full = model(input_ids=ids, use_cache=False).logits
        cache = DynamicCache(config=model.config)
        steps = [model(input_ids=ids[:, :4], use_cache=True, **{name: cache}).logits]
        for t in range(4, ids.shape[1]):
            steps.append(model(input_ids=ids[:, t : t + 1], use_cache=True, **{name: cache}).logits)
    diff = maxdiff(torch.cat(steps, dim=1), full)
    if diff > ATOL:
        fail(
            "TFS105",
            f"incremental decoding (cache passed as `{name}`) differs from the full forward by {diff:.3g}",
        )


def _check_generate(model, text_config, fail) -> None:
    """generate() against the no-cache greedy loop: one prompt, then a left-padded batch of two."""
    import torch

    g = torch.Generator().manual_seed(2)
    vocab = min(text_config.vocab_size, 1000)
    pad = text_config.pad_token_id if isinstance(text_config.pad_token_id, int) else 0
    single = torch.randint(3, vocab, (1, 9), generator=g)
    batch = torch.randint(3, vocab, (2, 9), generator=g)
    mask = torch.ones_like(batch)
    batch[1, :3], mask[1, :3] = pad, 0
    for what, ids, attention_mask in (
        ("one prompt", single, torch.ones_like(single)),
        ("a left-padded batch", batch, mask),
    ):
        problem = generate_mismatch(model, ids, attention_mask)
        if problem:
            fail("TFS111", f"{what}: {problem}")
            return


def _check_tp_coverage(base, text_config, fail) -> None:
    import re

    import torch

    # transformers merges the towers' plans with their prefixes (`language_model.`, `vision_tower.`)
    plan = dict(getattr(base, "tp_plan", None) or {}) or dict(getattr(text_config, "base_model_tp_plan", None) or {})
    if not plan:
        fail("TFS108", "the config has no base_model_tp_plan")
        return
    regexes = {p: re.compile("^" + re.escape(p).replace(r"\*", r"\d+") + "$") for p in plan}
    # a pattern names a module, or a parameter of one (packed experts: `experts.gate_up_proj`)
    names = [n for n, _ in base.named_modules()] + [n for n, _ in base.named_parameters()]
    for pattern, rx in regexes.items():
        if not any(rx.match(n) for n in names):
            fail("TFS108", f"pattern {pattern!r} matches no module or parameter")
    layer_lists = [n for n, m in base.named_modules() if n and isinstance(m, torch.nn.ModuleList)]
    for name, module in base.named_modules():
        in_layers = any(name.startswith(f"{ll}.") for ll in layer_lists)
        matched = any(rx.match(name) for rx in regexes.values())
        if isinstance(module, torch.nn.Linear) and in_layers and not matched:
            fail("TFS108", f"nn.Linear {name} is matched by no tp plan pattern")


def _check_pp_split(model, ids, fail) -> str | None:
    """Run the forward as two pipeline stages. Returns why it could not run, or None when it ran."""
    import torch

    # The split applies to the decoder: the base model itself, or its `language_model` (vLLM follows the
    # composite model's prefixed plan there). The forward still goes through the base model.
    base = getattr(model, "language_model", None) or model
    lists = [(n, m) for n, m in base.named_children() if isinstance(m, torch.nn.ModuleList)]
    plan = dict(getattr(base.config.get_text_config(), "base_model_pp_plan", None) or {})
    if len(lists) != 1:
        fail(
            "TFS110",
            f"the base model has {len(lists)} nn.ModuleList children, pipeline parallelism needs exactly one",
        )
        return None
    layers_name, layers = lists[0]
    if not layers:
        return "the layer list is empty: nothing to split into pipeline stages"
    embed = next((k for k in plan if k != layers_name and plan[k][0] == ["input_ids"]), None)
    norm = next((k for k in plan if k not in (layers_name, embed)), None)
    k = (len(layers) + 1) // 2  # stage 0: layers[:k] (+ embeddings); stage 1: layers[k:] + norm
    pos = torch.arange(ids.shape[1])[None]
    with torch.no_grad():
        full = first(model(input_ids=ids, position_ids=pos, use_cache=False, return_dict=False))
        saved = list(layers)
        saved_norm = getattr(base, norm) if norm else None
        try:
            for i in range(k, len(layers)):
                layers[i] = missing_module()
            if norm:
                setattr(base, norm, missing_module())
            hidden = first(model(input_ids=ids, position_ids=pos, use_cache=False, return_dict=False))
            for i in range(len(layers)):
                layers[i] = saved[i] if i >= k else missing_module()
            if norm:
                setattr(base, norm, saved_norm)
            out = first(
                model(
                    inputs_embeds=hidden,
                    position_ids=pos,
                    use_cache=False,
                    return_dict=False,
                )
            )
        finally:
            for i, layer in enumerate(saved):
                layers[i] = layer
            if norm:
                setattr(base, norm, saved_norm)
    diff = maxdiff(out, full)
    if diff > ATOL:
        fail(
            "TFS110",
            f"two pipeline stages passing only hidden_states differ from the full forward by {diff:.3g}",
        )
    return None


def output_tensor(out):
    """What the tensor-parallel check compares: a head's logits, else a base model's last hidden state."""
    logits = getattr(out, "logits", None)
    return logits if logits is not None else out.last_hidden_state


def _check_tp_run(source: Path, model, ids, work: Path, fail, auto_class: str | None = None) -> str | None:
    """Shard `model`'s class over 2 gloo processes with its tp plan and compare with `model`, the unsharded one: a
    decoder's head (its logits), or an encoder's base model through `auto_class="AutoModel"` (its last hidden state:
    what the engines shard and pool; an embedding repo's checkpoint has no classifier weights to compare).

    Returns why the run could not happen, or None when it ran (its finding, if any, goes through `fail`).
    """

    import torch

    heads = None
    try:
        saved = json.loads((Path(source) / "config.json").read_text())
        cfg = saved.get("text_config", saved)
        heads = (cfg.get("num_attention_heads"), cfg.get("num_key_value_heads"))
        heads += ((saved.get("vision_config") or {}).get("num_attention_heads"),)
    except (OSError, ValueError):
        pass
    odd = [h for h in heads or () if h is not None and h % 2]
    if odd:
        return (
            f"attention head counts {[h for h in heads if h is not None]} include an odd one ({odd[0]}): they cannot "
            "be split over 2 ranks, the smallest tensor-parallel run"
        )
    torch.save(ids, work / "ids.pt")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
        "--module",
        "tf_scaffold.conformance.dynamic.tp_worker",
        str(source),
        str(work / "ids.pt"),
        str(work / "tp.pt"),
        auto_class or head_auto_class(model.config).__name__,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    if proc.returncode != 0 or not (work / "tp.pt").exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        fail("TFS109", f"2-process tensor-parallel run failed: {' | '.join(tail)}")
        return None
    result = torch.load(work / "tp.pt")
    if not result["sharded"]:
        fail("TFS109", "the tensor-parallel plan sharded no parameter: each rank held the whole model")
        return None
    with torch.no_grad():
        full = output_tensor(model(input_ids=ids))
    diff = maxdiff(result["logits"], full)
    if diff > ATOL:
        what = "logits" if auto_class is None else "hidden states"
        fail(
            "TFS109",
            f"tensor-parallel {what} differ from the unsharded model by {diff:.3g}",
        )
    return None
