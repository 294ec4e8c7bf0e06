"""Fidelity of the generated code under the installed transformers, against references tf-scaffold did not write.

    python benchmarks/fidelity.py [--out DIR]

Prints, for the default text repo and the default multimodal repo generated here:
- greedy `generate()` tokens vs transformers' own `LlamaForCausalLM.generate()` on the same weights (3 prompts and a
  left-padded batch), and the VLM's `generate()` on a 3-image prompt vs its no-cache greedy loop;
- max |logits - LlamaForCausalLM| for every `rope_type`, at positions past `original_max_position_embeddings`;
- hidden states and attentions vs Llama's;
- deprecation warnings (FutureWarning / DeprecationWarning) raised from the generated code while doing all of it;
- the 2-process tensor-parallel run of the default repo (gloo): max |logits - unsharded| and its wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="hf-modules-fidelity-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="Folder for the generated repos (default: temporary).")
    args = parser.parse_args()

    import torch
    import transformers
    from test_llama_equivalence import LONG, ROPE_SCALINGS, load_pair, padded_batch

    from tf_scaffold import commands
    from tf_scaffold.conformance.dynamic import generate_mismatch
    from tf_scaffold.conformance.dynamic.checks import _check_tp_run

    out = args.out or Path(tempfile.mkdtemp(prefix="fidelity-"))
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = commands.new({"name": "fidelity-lm"}, out, force=True).path
        vl = commands.new({"name": "fidelity-vl", "multimodal": True}, out, force=True).path

        ours, ref = load_pair(text, "sdpa")
        ids, mask = padded_batch(ours.config.vocab_size, length=12)
        rows = {
            "prompt 0": slice(0, 1),
            "prompt 1": slice(1, 2),
            "prompt 2": slice(2, 3),
            "padded batch of 3": slice(0, 3),
        }
        print("\ngenerate() vs LlamaForCausalLM.generate(), 16 greedy tokens")
        for name, r in rows.items():
            # prompt 1 alone is the padded row without its padding
            prompt, prompt_mask = (ids[r][:, 7:], mask[r][:, 7:]) if name == "prompt 1" else (ids[r], mask[r])
            kwargs = dict(attention_mask=prompt_mask, do_sample=False, max_new_tokens=16, min_new_tokens=16)
            a, b = ours.generate(prompt, **kwargs), ref.generate(prompt, **kwargs)
            print(f"  {name:18s} equal={torch.equal(a, b)}  tokens={a[0, prompt.shape[1] :].tolist()}")

        from PIL import Image
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor = AutoProcessor.from_pretrained(vl, trust_remote_code=True)
        vlm = AutoModelForImageTextToText.from_pretrained(vl, trust_remote_code=True).eval()
        g = torch.Generator().manual_seed(0)
        images = [
            Image.fromarray(torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8).numpy())
            for h, w in ((240, 320), (900, 17), (40, 50))
        ]
        token = processor.image_token
        inputs = processor(text=f"<|bos|>{token}{token}{token}Describe.", images=images, return_tensors="pt")
        problem = generate_mismatch(
            vlm, inputs["input_ids"], inputs["attention_mask"], 8, pixel_values=inputs["pixel_values"]
        )
        print(f"\nVLM generate() with 3 images vs its no-cache greedy loop: {'equal' if problem is None else problem}")

        eager, ref_eager = load_pair(text, "eager")
        with torch.no_grad():
            a = eager(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
            b = ref_eager(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        hs = max((x - y).abs().max().item() for x, y in zip(a.hidden_states, b.hidden_states, strict=True))
        at = max((x - y).abs().max().item() for x, y in zip(a.attentions, b.attentions, strict=True))
        print(
            f"\nhidden states ({len(a.hidden_states)}) max |diff| {hs}, attentions ({len(a.attentions)}) max |diff| {at}"
        )

        print(f"\nRoPE types: max |logits - Llama| over positions 64..{LONG - 1} (original context 64, max 128)")
        for rope, scaling in ROPE_SCALINGS.items():
            repo = commands.new(
                {"name": f"fidelity-rope-{rope}", "max_position_embeddings": 128, "rope_scaling": scaling},
                out,
                force=True,
            ).path
            m, r = load_pair(repo)
            x = torch.randint(3, m.config.vocab_size, (1, LONG), generator=torch.Generator().manual_seed(3))
            with torch.no_grad():
                diff = (m(input_ids=x).logits[0, 64:] - r(input_ids=x).logits[0, 64:]).abs().max().item()
            print(f"  {rope:9s} {diff}")

    ours_warnings = [
        w
        for w in caught
        if issubclass(w.category, FutureWarning | DeprecationWarning)
        and ("transformers_modules" in w.filename or str(out) in w.filename)
    ]
    print(f"\ndeprecation warnings raised from generated code: {len(ours_warnings)}")
    for w in ours_warnings[:5]:
        print(f"  {w.filename}:{w.lineno}: {w.category.__name__}: {w.message}")

    found: list[str] = []
    model = transformers.AutoModelForCausalLM.from_pretrained(text, trust_remote_code=True).eval()
    work = Path(tempfile.mkdtemp(prefix="fidelity-tp-"))
    start = time.monotonic()
    skipped = _check_tp_run(text, model, ids[:1], work, lambda _id, message: found.append(message))
    seconds = time.monotonic() - start
    if skipped:
        print(f"\ntensor parallel 2: skipped: {skipped}")
    else:
        result = torch.load(work / "tp.pt")
        with torch.no_grad():
            diff = (result["logits"] - model(input_ids=ids[:1]).logits).abs().max().item()
        print(
            f"\ntensor parallel 2 (gloo, 2 processes): {len(result['sharded'])} parameters sharded per rank,"
            f" max |logits - unsharded| {diff:.3g}, {seconds:.1f} s{'; ' + found[0] if found else ''}"
        )
    print(json.dumps({"transformers": transformers.__version__, "repos": str(out)}))


if __name__ == "__main__":
    main()
