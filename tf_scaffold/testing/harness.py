"""The transformers side of every engine test: what transformers itself computes on the same inputs (greedy tokens
with their top logprobs, pooled embeddings, classifier scores), and how an engine's answer is compared with it.

How the engines are built, served and limited on this machine lives in `tf_scaffold.engines`. Imports torch and
transformers only where used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tf_scaffold.conformance.dynamic.generation import first_difference
from tf_scaffold.engines.machine import Platform
from tf_scaffold.engines.runner import noise_image, sglang_logprobs
from tf_scaffold.facts import GENERATING_AUTO_CLASSES

__all__ = [
    "Sequence",
    "compare",
    "compare_exact",
    "compare_top_logprobs",
    "engine_sequence",
    "first_difference",
    "load_head",
    "noise_image",
    "sentence_transformers_pooling",
    "sglang_sequence",
    "transformers_greedy",
    "transformers_image_greedy",
    "transformers_pooled",
]


@dataclass
class Sequence:
    """One greedy continuation: generated token ids and, per step, the top logprobs {token_id: logprob}."""

    tokens: list[int]
    top_logprobs: list[dict[int, float]]


def transformers_greedy(
    repo, platform: Platform, prompts: list[list[int]], max_new_tokens: int, **config_overrides
) -> list[Sequence]:
    """transformers' own greedy `generate()` on the given prompt ids, with per-step top-5 logprobs (of the repo's
    model, its config changed by `config_overrides`)."""
    import torch

    model = load_head(repo, platform, **config_overrides)
    seqs = []
    for prompt in prompts:
        ids = torch.tensor([prompt], device=platform.device)
        seqs.append(_greedy(model, {"input_ids": ids}, max_new_tokens))
    return seqs


def sentence_transformers_pooling(repo) -> tuple[str, bool]:
    """(pooling mode, normalise) as sentence-transformers reads them: the `Pooling` entry of `modules.json` and its
    `config.json`, and whether a `Normalize` entry follows. A repo without `modules.json` gets the engines' default
    for an embedding model: the first token, normalised."""
    repo = Path(repo)
    modules_file = repo / "modules.json"
    if not modules_file.is_file():
        return "cls", True
    modules = json.loads(modules_file.read_text())
    pooling = next((m for m in modules if m.get("type", "").endswith("Pooling")), None)
    normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
    if pooling is None:
        return "cls", normalize
    settings = json.loads((repo / pooling.get("path", "") / "config.json").read_text())
    modes = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean", "pooling_mode_lasttoken": "last"}
    chosen = [mode for key, mode in modes.items() if settings.get(key)]
    if len(chosen) != 1:
        raise ValueError(f"{pooling.get('path')}/config.json selects {chosen or 'no'} pooling modes: expected one")
    return chosen[0], normalize


def transformers_pooled(repo, platform: Platform, prompts: list[list[int]], task: str) -> list[list[float]]:
    """transformers' answer for each prompt alone: the pooled (and normalised) `last_hidden_state` of the base model
    for `embed`, as sentence-transformers computes it; the classifier's probabilities for `classify`, with the
    activation the engines apply (softmax over two labels or more, sigmoid for one or for multi-label problems)."""
    import torch
    import transformers

    dtype = torch.float32 if platform.exact else torch.bfloat16
    auto = transformers.AutoModel if task == "embed" else transformers.AutoModelForSequenceClassification
    model = auto.from_pretrained(repo, trust_remote_code=True, dtype=dtype).to(platform.device).eval()
    mode, normalize = sentence_transformers_pooling(repo) if task == "embed" else ("cls", False)
    vectors = []
    for prompt in prompts:
        ids = torch.tensor([prompt], device=platform.device)
        with torch.no_grad():
            out = model(input_ids=ids)
        if task == "embed":
            hidden = out.last_hidden_state[0].float()
            vector = {"cls": hidden[0], "mean": hidden.mean(0), "last": hidden[-1]}[mode]
            vector = torch.nn.functional.normalize(vector, dim=-1) if normalize else vector
        else:
            logits = out.logits[0].float()
            multi = model.config.num_labels < 2 or model.config.problem_type == "multi_label_classification"
            vector = logits.sigmoid() if multi else logits.softmax(-1)
        vectors.append(vector.cpu().tolist())
    return vectors


def load_head(repo, platform: Platform, **config_overrides):
    """The repo's head model (causal LM, or image-text-to-text for a multimodal repo), in the engines' dtype."""
    import torch
    import transformers

    config = json.loads((Path(repo) / "config.json").read_text())
    auto = next((k for k in GENERATING_AUTO_CLASSES if k in config.get("auto_map", {})), GENERATING_AUTO_CLASSES[0])
    dtype = torch.float32 if platform.exact else torch.bfloat16
    model = getattr(transformers, auto).from_pretrained(repo, trust_remote_code=True, dtype=dtype, **config_overrides)
    return model.to(platform.device).eval()


def _greedy(model, inputs: dict, max_new_tokens: int) -> Sequence:
    import torch

    prompt_len = inputs["input_ids"].shape[1]
    out = model.generate(
        **inputs,
        attention_mask=torch.ones_like(inputs["input_ids"]),
        do_sample=False,
        max_new_tokens=max_new_tokens,
        output_logits=True,
        return_dict_in_generate=True,
    )
    steps = []
    for logits in out.logits:
        logprobs = torch.log_softmax(logits[0].float(), dim=-1)
        top = torch.topk(logprobs, 5)
        steps.append({int(i): float(v) for v, i in zip(top.values, top.indices, strict=True)})
    return Sequence(tokens=out.sequences[0, prompt_len:].tolist(), top_logprobs=steps)


def transformers_image_greedy(repo, platform: Platform, prompt: str, images: list, max_new_tokens: int) -> Sequence:
    """transformers' greedy `generate()` on a text prompt with image placeholders, through the repo's processor."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(repo, trust_remote_code=True)
    model = load_head(repo, platform)
    inputs = processor(text=prompt, images=images, return_tensors="pt", add_special_tokens=False).to(platform.device)
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    inputs.pop("attention_mask", None)
    return _greedy(model, dict(inputs), max_new_tokens)


def compare_exact(reference: Sequence, engine: Sequence, logprob_atol: float = 2e-3) -> str | None:
    """fp32 rule: identical tokens, and the engine's logprob of each token within `logprob_atol` of transformers'.

    Returns None when they agree, else a one-line description of the first disagreement.
    """
    pos = first_difference(reference.tokens, engine.tokens)
    if pos is not None:
        return f"greedy tokens differ at step {pos}: transformers {reference.tokens} vs engine {engine.tokens}"
    for step, (ref_lp, eng_lp) in enumerate(zip(reference.top_logprobs, engine.top_logprobs, strict=False)):
        token = reference.tokens[step]
        if token not in eng_lp:
            return f"the engine reported no logprob for token {token} at step {step}"
        if token in ref_lp and abs(ref_lp[token] - eng_lp[token]) > logprob_atol:
            return (
                f"logprob of token {token} at step {step} differs: transformers {ref_lp[token]:.6f} vs engine"
                f" {eng_lp[token]:.6f} (tolerance {logprob_atol})"
            )
    return None


def compare_top_logprobs(reference: Sequence, engine: Sequence) -> str | None:
    """vLLM's own rule for reduced precision (its `check_logprobs_close`): at the first differing position each
    side's token must be in the other side's top logprobs; after it the sequences may diverge."""
    pos = first_difference(reference.tokens, engine.tokens)
    if pos is None or pos >= min(len(reference.tokens), len(engine.tokens)):
        return None
    ref_tok, eng_tok = reference.tokens[pos], engine.tokens[pos]
    if ref_tok in engine.top_logprobs[pos] and eng_tok in reference.top_logprobs[pos]:
        return None
    return (
        f"step {pos}: transformers chose {ref_tok}, engine chose {eng_tok}, and they are not in each other's top"
        f" {len(reference.top_logprobs[pos])}"
    )


def sglang_sequence(meta_info: dict) -> Sequence:
    """SGLang's `meta_info` (offline Engine and `/generate` alike): entries are (logprob, token_id, text)."""
    return Sequence(*sglang_logprobs(meta_info))


def compare(reference: Sequence, engine: Sequence, exact: bool) -> str | None:
    return compare_exact(reference, engine) if exact else compare_top_logprobs(reference, engine)


def engine_sequence(seq: dict) -> Sequence:
    """A sequence of the runner's JSON result (token ids as string keys) as a `Sequence`."""
    return Sequence(
        tokens=seq["tokens"],
        top_logprobs=[{int(k): v for k, v in step.items()} for step in seq["top_logprobs"]],
    )
