"""The real engines serve this repo through their Transformers backend, with transformers' greedy output.

Each test runs where its engine is importable (vLLM and SGLang: CPU or GPU, tensor parallel 2 included) and is
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


@pytest.fixture(scope="module")
def chat_prompt(repo) -> list[int]:
    """The prompt ids of MESSAGES through the repo's chat template, as the servers' chat endpoints build them."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(repo)
    return list(
        tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=True, return_dict=True)[
            "input_ids"
        ]
    )


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
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def skip_unless(engine, text_config_json, platform, tp=1):
    reason = engine_skip_reason(engine, platform, text_config_json, tp)
    if reason:
        pytest.skip(reason)


def openai_client(url: str):
    pytest.importorskip("openai", reason="the OpenAI client is not installed: pip install openai")
    from openai import OpenAI

    return OpenAI(base_url=f"{url}/v1", api_key="unused")


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


def test_vllm_openai_server(repo, text_config_json, platform, reference, chat_prompt, tmp_path):
    skip_unless("vllm", text_config_json, platform)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client = openai_client(url)
    cmd = vllm_server_cmd(repo, port, platform)
    with running_server(cmd, url, engine_env(repo, platform, tmp_path), "/health", SERVER_TIMEOUT, tmp_path) as server:
        assert "Resolved architecture: Transformers" in server.log_text(), "vLLM did not use its Transformers backend"
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

    chat_ref = transformers_greedy(repo, platform, [chat_prompt], MAX_TOKENS)[0]
    problem = compare(chat_ref, Sequence(tokens=chat_tokens, top_logprobs=chat_steps), platform.exact)
    assert problem is None, f"chat: {problem}"


# ---- SGLang ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tp", [1, 2], ids=["tp1", "tp2"])
def test_sglang_offline_greedy_matches_transformers(repo, text_config_json, platform, reference, tmp_path, tp):
    skip_unless("sglang", text_config_json, platform, tp)
    result = run_offline("sglang", repo, platform, tmp_path, tp)
    print(f"SGLang {result['version']} on {result['device']} ({result['dtype']}), tp={tp}")
    assert result["transformers_backend"] is True, "SGLang did not log that it used its Transformers backend"
    assert_matches(reference, result["sequences"], platform.exact)


def test_sglang_server(repo, text_config_json, platform, reference, chat_prompt, tmp_path):
    skip_unless("sglang", text_config_json, platform)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client = openai_client(url)
    cmd = sglang_server_cmd(repo, port, platform)
    with running_server(cmd, url, engine_env(repo, platform, tmp_path), "/health", SERVER_TIMEOUT, tmp_path) as server:
        assert "Using Transformers backend" in server.log_text(), "SGLang did not use its Transformers backend"
        # SGLang's native endpoint: token ids in, token ids and logprobs out.
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
            assert problem is None, f"/generate: {problem}"

        # OpenAI completions on the same prompt ids (the official client; SGLang returns the token ids it generated).
        for prompt, ref in zip(PROMPTS, reference, strict=True):
            completion = client.completions.create(
                model="model",
                prompt=prompt,
                max_tokens=MAX_TOKENS,
                temperature=0,
                extra_body={"return_token_ids": True},
            )
            tokens = completion.choices[0].model_extra["token_ids"]
            assert tokens == ref.tokens, f"/v1/completions: transformers {ref.tokens} vs SGLang {tokens}"

        # Chat through the repo's chat template: the prompt SGLang built and the tokens it generated, as ids.
        chat = client.chat.completions.create(
            model="model",
            messages=MESSAGES,
            max_tokens=MAX_TOKENS,
            temperature=0,
            logprobs=True,
            top_logprobs=5,
            extra_body={"return_token_ids": True, "return_prompt_token_ids": True},
        )
        choice = chat.choices[0]
        chat_tokens = choice.model_extra["response_token_ids"]
        chat_steps = [{token: item.logprob} for token, item in zip(chat_tokens, choice.logprobs.content, strict=True)]
        assert choice.model_extra["prompt_token_ids"] == chat_prompt, "SGLang applied another chat template"
        assert isinstance(choice.message.content, str)

    chat_ref = transformers_greedy(repo, platform, [chat_prompt], MAX_TOKENS)[0]
    problem = compare(chat_ref, Sequence(tokens=chat_tokens, top_logprobs=chat_steps), platform.exact)
    assert problem is None, f"/v1/chat/completions: {problem}"
