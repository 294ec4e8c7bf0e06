"""One side of a benchmark, in a process of its own: loads a model once (the start is not timed), then answers
requests read from stdin, one JSON object per line, until told to exit.

    python -m tf_scaffold.bench.worker '{"side": "transformers"|"vllm"|"sglang", "repo": ..., "backend": true, ...}'

Requests: `{"op": "run", "prompts": [[ids], ...], "new_tokens": N}` times one generation of exactly N greedy tokens
per prompt (EOS does not stop it) and answers its seconds and tokens; `{"op": "profile", ...}` does the same under
torch's profiler and answers the operators that took the time; `{"op": "exit"}`.

Answers go to the file descriptor stdout had when the process started, one `{json}` line each; everything the
libraries print goes to stderr, so it cannot be mistaken for an answer. Engines spawn processes that re-import the
main module: this is a module with a main guard.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from tf_scaffold.facts import GENERATING_AUTO_CLASSES

PROFILE_TOP = 25
# the auto classes that generate text, in the order `bench` looks for them in `auto_map`


class FusionLog(logging.Handler):
    """What vLLM's Transformers backend says (at debug level) when it leaves a module unfused."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        text = record.getMessage()
        if any(word in text for word in ("fusion", "fuse", "unfused", "RMSNorm")):
            self.lines.append(text)


def _torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


class TransformersSide:
    def __init__(self, args: dict):
        from pathlib import Path

        import torch
        import transformers
        from transformers import GenerationConfig

        self.device = args["device"]
        torch.set_num_threads(args["threads"])
        # a decoder's causal LM, or a vision-language model's generating class (prompted with text only)
        auto_map = json.loads((Path(args["repo"]) / "config.json").read_text()).get("auto_map") or {}
        auto_class = getattr(
            transformers, next((c for c in GENERATING_AUTO_CLASSES if c in auto_map), GENERATING_AUTO_CLASSES[0])
        )
        self.model = (
            auto_class.from_pretrained(args["repo"], trust_remote_code=True, dtype=_torch_dtype(args["dtype"]))
            .to(self.device)
            .eval()
        )
        # Greedy, exactly `max_new_tokens`, and EOS an ordinary token as the engines' `ignore_eos` makes it: an empty
        # list, because `eos_token_id=None` falls back to the model's EOS (and `min_new_tokens` would forbid it,
        # which changes the tokens).
        config = self.model.config
        pad = getattr(config, "pad_token_id", None)
        if pad is None and hasattr(config, "get_text_config"):
            pad = getattr(config.get_text_config(), "pad_token_id", None)
        self.generation = GenerationConfig(do_sample=False, eos_token_id=[], pad_token_id=pad, max_new_tokens=1)
        self.info = {"class": type(self.model).__name__, "transformers_backend": None, "fused": None}

    def run(self, prompts, new_tokens):
        import torch

        ids = torch.tensor(prompts, device=self.device)  # equal lengths: no padding
        self.generation.max_new_tokens = new_tokens
        _sync(self.device)
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=self.generation
            )
        _sync(self.device)
        seconds = time.perf_counter() - start
        return seconds, out[:, ids.shape[1] :].tolist()


class VllmSide:
    def __init__(self, args: dict):
        from tf_scaffold.engines.build import vllm_llm
        from tf_scaffold.engines.fusion import count_fused

        fusion = FusionLog()
        logger = logging.getLogger("vllm.model_executor.models.transformers")
        logger.setLevel(logging.DEBUG)  # the handlers of vLLM's own logger still filter at their level
        logger.addHandler(fusion)
        self.llm = vllm_llm(
            args["repo"],
            _platform(args),
            backend=args["backend"],
            compiled=args["compiled"],
            max_model_len=args["max_model_len"],
            max_num_seqs=max(args["max_batch"], 1),
        )
        model_config = self.llm.llm_engine.model_config
        self.info = {
            "class": model_config.architecture,
            "transformers_backend": model_config.using_transformers_backend(),
            "fused": self.llm.apply_model(count_fused)[0],
            "fusion_log": fusion.lines[:20],
        }

    def run(self, prompts, new_tokens):
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=new_tokens, temperature=0.0, ignore_eos=True, detokenize=False)
        requests = [{"prompt_token_ids": p} for p in prompts]
        start = time.perf_counter()
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        seconds = time.perf_counter() - start
        return seconds, [list(out.outputs[0].token_ids) for out in outputs]


class SglangSide:
    def __init__(self, args: dict):
        from tf_scaffold.engines.build import sglang_engine

        self.engine = sglang_engine(
            args["repo"],
            _platform(args),
            backend=args["backend"],
            compiled=args["compiled"],
            context_length=args["max_model_len"],
            skip_tokenizer_init=True,  # token ids in and out: no text decoding in the timed path
            sleep_on_idle=True,  # an idle scheduler waits on its socket instead of spinning on a core the others use
        )
        self.info = {"class": None, "transformers_backend": None, "fused": None}  # read from its log by the caller

    def run(self, prompts, new_tokens):
        params = {"max_new_tokens": new_tokens, "temperature": 0.0, "ignore_eos": True}
        start = time.perf_counter()
        outputs = self.engine.generate(input_ids=prompts, sampling_params=params)
        seconds = time.perf_counter() - start
        return seconds, [list(out["output_ids"]) for out in outputs]

    def close(self):
        self.engine.shutdown()


def _platform(args: dict):
    """This machine's engine settings, in the dtype the bench asked for."""
    from dataclasses import replace

    from tf_scaffold.engines.machine import detect_platform

    return replace(detect_platform(), dtype=args["dtype"])


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def profile(side, prompts, new_tokens) -> dict:
    """One run under torch's profiler: the operators by their own time (this process only: the model must run here)."""
    import torch
    from torch.profiler import ProfilerActivity

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with torch.profiler.profile(activities=activities) as prof:
        seconds, _ = side.run(prompts, new_tokens)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return {
        "seconds": seconds,
        "total_ms": total / 1e3,
        "ops": [
            {
                "op": e.key,
                "calls": e.count,
                "self_ms": e.self_cpu_time_total / 1e3,
                "share": e.self_cpu_time_total / total,
            }
            for e in events[:PROFILE_TOP]
        ],
    }


SIDES = {"transformers": TransformersSide, "vllm": VllmSide, "sglang": SglangSide}


def main() -> None:
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # what libraries print goes where the caller logs stderr
    sys.stdout = sys.stderr

    def answer(obj: dict) -> None:
        answers.write(json.dumps(obj) + "\n")
        answers.flush()

    args = json.loads(sys.argv[1])
    start = time.perf_counter()
    try:
        side = SIDES[args["side"]](args)
    except Exception as err:  # the caller reports the side as failed to start, with this line
        answer({"ready": False, "error": f"{type(err).__name__}: {err}".splitlines()[0][:500]})
        raise
    answer({"ready": True, "start_seconds": time.perf_counter() - start, **side.info})
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "exit":
            break
        try:
            if request["op"] == "profile":
                answer(profile(side, request["prompts"], request["new_tokens"]))
            else:
                seconds, tokens = side.run(request["prompts"], request["new_tokens"])
                answer({"seconds": seconds, "tokens": tokens})
        except Exception as err:
            answer({"error": f"{type(err).__name__}: {err}".splitlines()[0][:500]})
    if hasattr(side, "close"):
        side.close()
    answers.close()
    os._exit(0)  # engines leave threads behind that would keep a clean exit waiting


if __name__ == "__main__":
    main()
