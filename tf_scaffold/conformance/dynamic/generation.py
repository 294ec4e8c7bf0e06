"""`generate()` against greedy decoding without a cache, under the installed transformers (TFS111, and the tests of
every generated repo)."""

from __future__ import annotations


def cache_argument(model) -> str:
    """The name under which `model`'s forward takes the KV cache: `cache` (transformers >= 5.24's name) when its
    signature has it, else `past_key_values`."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


# A step where the no-cache reference's two best logits are closer than this is a tie: either token is right.
GREEDY_TIE = 1e-4


def greedy_without_cache(model, input_ids, attention_mask, max_new_tokens: int, **inputs):
    """Greedy decoding that runs the whole sequence at every step, with no KV cache: the reference `generate()` must
    reproduce. Positions follow the attention mask, as `generate()` derives them for left-padded rows.

    Returns (sequences, margins): the prompt plus `max_new_tokens` tokens per row, and per step and row the gap
    between the two best logits.
    """
    import torch

    ids, mask, margins = input_ids, attention_mask, []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)
            logits = (
                model(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=False, **inputs)
                .logits[:, -1]
                .float()
            )
            top = logits.topk(2, dim=-1).values
            margins.append((top[:, 0] - top[:, 1]).tolist())
            next_token = logits.argmax(-1, keepdim=True)
            ids = torch.cat([ids, next_token], dim=-1)
            mask = torch.cat([mask, torch.ones_like(next_token)], dim=-1)
    return ids, margins


def generate_mismatch(model, input_ids, attention_mask, max_new_tokens: int = 8, **inputs) -> str | None:
    """Compare `model.generate()` (greedy, with its KV cache, driven by the installed transformers) with
    `greedy_without_cache`. Returns None when every row agrees (ties allowed), else a one-line description."""
    import torch
    import transformers

    with torch.no_grad():
        got = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens,
            **inputs,
        )
    want, margins = greedy_without_cache(model, input_ids, attention_mask, max_new_tokens, **inputs)
    start = input_ids.shape[1]
    for row in range(input_ids.shape[0]):
        a, b = got[row, start:].tolist(), want[row, start:].tolist()
        step = first_difference(a, b)
        if step is None or (step < len(margins) and margins[step][row] < GREEDY_TIE):
            continue
        return (
            f"under transformers {transformers.__version__}, generate() gave {a} for row {row} where greedy decoding"
            f" without a cache gives {b} (first difference at step {step})"
        )
    return None


def first_difference(a: list, b: list) -> int | None:
    """Index of the first position where two token lists differ (or where the shorter ends), None if equal."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))
