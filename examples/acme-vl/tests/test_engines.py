"""The real engines serve this repo through their Transformers backend, with transformers' greedy output.

Each test runs where its engine is importable (vLLM: CPU or GPU, tensor parallel 2 included; SGLang: GPU) and is
skipped with the precise reason elsewhere. Select them with `pytest -m engine`.
"""

import json
import urllib.request
from pathlib import Path

import pytest
from harness import (
    Sequence,
    compare,
    detect_platform,
    engine_env,
    engine_sequence,
    engine_skip_reason,
    free_port,
    run_engine_runner,
    running_server,
    sglang_sequence,
    sglang_server_cmd,
    transformers_greedy,
    vllm_server_cmd,
)


pytestmark = pytest.mark.engine

PROMPTS = [[1, 40, 41, 42, 43, 44, 45], [1, 300, 17, 99, 250]]
MAX_TOKENS = 8
MESSAGES = [{"role": "user", "content": "Hello! How are you today?"}]
SERVER_TIMEOUT = 300


@pytest.fixture(scope="module")
def platform():
    return detect_platform()


@pytest.fixture(scope="module")
def reference(repo, needs_weights, platform):
    return transformers_greedy(repo, platform, PROMPTS, MAX_TOKENS)


def chat_reference(repo, platform) -> Sequence:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(repo)
    prompt = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=True, return_dict=True)
    return transformers_greedy(repo, platform, [list(prompt["input_ids"])], MAX_TOKENS)[0]


def run_offline(engine: str, repo: Path, platform, tmp_path: Path, tp: int = 1) -> dict:
    args = [engine, str(repo), json.dumps(PROMPTS), str(MAX_TOKENS), str(tp)]
    proc, result = run_engine_runner(repo, args, engine_env(repo, platform, tmp_path, tp))
    assert result is not None, f"{engine} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    return result


def assert_matches(reference, result_sequences, exact):
    for ref, got in zip(reference, result_sequences, strict=True):
        problem = compare(ref, engine_sequence(got), exact)
        assert problem is None, problem


def http_json(url: str, payload: dict) -> dict:
    req = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def skip_unless(engine, text_config_json, platform, tp=1):
    reason = engine_skip_reason(
        engine, platform, text_config_json["head_dim"], tp, text_config_json["num_attention_heads"]
    )
    if reason:
        pytest.skip(reason)


# ---- vLLM -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tp", [1, 2], ids=["tp1", "tp2"])
def test_vllm_offline_greedy_matches_transformers(repo, text_config_json, platform, reference, tmp_path, tp):
    skip_unless("vllm", text_config_json, platform, tp)
    result = run_offline("vllm", repo, platform, tmp_path, tp)
    print(f"vLLM {result['version']} on {result['device']} ({result['dtype']}), tp={tp}: {result['architectures']}")
    assert result["transformers_backend"] is True, (
        f"vLLM did not use its Transformers backend: {result['architectures']}"
    )
    assert_matches(reference, result["sequences"], platform.exact)


def test_vllm_openai_server(repo, text_config_json, platform, reference, tmp_path):
    skip_unless("vllm", text_config_json, platform)
    pytest.importorskip("openai", reason="the OpenAI client is not installed: pip install openai")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = vllm_server_cmd(repo, port, platform)
    with running_server(
        cmd,
        url,
        engine_env(repo, platform, tmp_path),
        "/health",
        SERVER_TIMEOUT,
        tmp_path,
    ):
        # Completions on the same prompt ids as transformers' greedy run.
        for prompt, ref in zip(PROMPTS, reference, strict=True):
            out = http_json(
                f"{url}/v1/completions",
                {
                    "model": "model",
                    "prompt": prompt,
                    "max_tokens": MAX_TOKENS,
                    "temperature": 0,
                    "logprobs": 5,
                    "return_tokens_as_token_ids": True,
                },
            )
            choice = out["choices"][0]
            tokens = [int(t.split(":")[1]) for t in choice["logprobs"]["tokens"]]
            steps = [{int(k.split(":")[1]): v for k, v in s.items()} for s in choice["logprobs"]["top_logprobs"]]
            problem = compare(ref, Sequence(tokens=tokens, top_logprobs=steps), platform.exact)
            assert problem is None, problem

        # Chat through the repo's chat template, with the official OpenAI client; tokens compared as ids.
        from openai import OpenAI

        client = OpenAI(base_url=f"{url}/v1", api_key="unused")
        chat = client.chat.completions.create(
            model="model",
            messages=MESSAGES,
            max_tokens=MAX_TOKENS,
            temperature=0,
            logprobs=True,
            top_logprobs=5,
            extra_body={"return_tokens_as_token_ids": True},
        )
        content = chat.choices[0].logprobs.content
        chat_tokens = [int(item.token.split(":")[1]) for item in content]
        chat_steps = [{int(t.token.split(":")[1]): t.logprob for t in item.top_logprobs} for item in content]
        assert isinstance(chat.choices[0].message.content, str)

    chat_ref = chat_reference(repo, platform)
    problem = compare(chat_ref, Sequence(tokens=chat_tokens, top_logprobs=chat_steps), platform.exact)
    assert problem is None, f"chat: {problem}"


# ---- SGLang ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tp", [1, 2], ids=["tp1", "tp2"])
def test_sglang_offline_greedy_matches_transformers(repo, text_config_json, platform, reference, tmp_path, tp):
    skip_unless("sglang", text_config_json, platform, tp)
    result = run_offline("sglang", repo, platform, tmp_path, tp)
    print(f"SGLang {result['version']} on {result['device']} ({result['dtype']}), tp={tp}")
    assert_matches(reference, result["sequences"], platform.exact)


def test_sglang_server(repo, text_config_json, platform, reference, tmp_path):
    skip_unless("sglang", text_config_json, platform)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = sglang_server_cmd(repo, port, platform)
    with running_server(
        cmd,
        url,
        engine_env(repo, platform, tmp_path),
        "/health",
        SERVER_TIMEOUT,
        tmp_path,
    ):
        for prompt, ref in zip(PROMPTS, reference, strict=True):
            out = http_json(
                f"{url}/generate",
                {
                    "input_ids": prompt,
                    "sampling_params": {"max_new_tokens": MAX_TOKENS, "temperature": 0},
                    "return_logprob": True,
                    "top_logprobs_num": 5,
                },
            )
            problem = compare(ref, sglang_sequence(out["meta_info"]), platform.exact)
            assert problem is None, problem
        out = http_json(
            f"{url}/v1/completions",
            {
                "model": "model",
                "prompt": PROMPTS[0],
                "max_tokens": MAX_TOKENS,
                "temperature": 0,
            },
        )
        assert out["choices"][0]["text"] is not None
