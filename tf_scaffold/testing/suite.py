"""The harness every generated repo runs: a repo's `tests/` declares what it is by subclassing one of these classes,
the way transformers' per-model tests subclass `CausalLMModelTest`, and pytest runs the inherited tests on it.

    from tf_scaffold.testing import CausalLMRepoTests

    class TestAcmeLm(CausalLMRepoTests):
        prompts = [[1, 40, 41, 42]]   # optional: prompt ids for the engine comparisons

Tests carry the `engine` marker where they start a real engine; every test that cannot run here is skipped with the
precise reason. A deprecation raised from the repo's own code (imported as `transformers_modules.*` through
`trust_remote_code`) fails the test it happens in.
"""

from __future__ import annotations

import contextlib
import json
import math
import urllib.request
from pathlib import Path

import pytest

from tf_scaffold.engines import limits, machine, server
from tf_scaffold.engines.runner import run_offline
from tf_scaffold.facts import GENERATING_AUTO_CLASSES, MOE_EXPERT_COUNT_KEYS
from tf_scaffold.testing import harness

ATOL = 1e-5
DEPRECATIONS_FROM_THE_REPO = [
    pytest.mark.filterwarnings("error::FutureWarning:transformers_modules"),
    pytest.mark.filterwarnings("error::DeprecationWarning:transformers_modules"),
]
SERVER_TIMEOUT = 300


def _skip_unless(engine: str, text_config: dict, platform, tp: int = 1) -> None:
    reason = limits.engine_skip_reason(engine, platform, text_config, tp)
    if reason:
        pytest.skip(reason)


def _padded_batch(vocab_size: int, pad_id: int, rows: int = 2, length: int = 12, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab_size, (rows, length), generator=g)
    mask = torch.ones_like(ids)
    if rows > 1:
        ids[1, :5], mask[1, :5] = pad_id, 0  # left padding, as `generate()` uses
    return ids, mask


def _http_json(url: str, payload: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def _openai_client(url: str):
    pytest.importorskip("openai", reason="the OpenAI client is not installed: pip install openai")
    from openai import OpenAI

    return OpenAI(base_url=f"{url}/v1", api_key="unused")


# what each engine's server logs when it builds the model with its Transformers backend
SERVER_BACKEND_LOG = {"vllm": "Resolved architecture: Transformers", "sglang": "Using Transformers backend"}


@contextlib.contextmanager
def _serving(engine: str, repo: Path, platform, tmp_path: Path):
    """The engine's server on a free local port, its log checked for the Transformers backend: (url, OpenAI client).
    Stopped (its whole process group) on the way out, failed test or not."""
    port = server.free_port()
    url = f"http://127.0.0.1:{port}"
    client = _openai_client(url)
    cmd = (server.vllm_server_cmd if engine == "vllm" else server.sglang_server_cmd)(repo, port, platform)
    env = server.engine_env(repo, platform, tmp_path)
    with server.running_server(cmd, url, env, "/health", SERVER_TIMEOUT, tmp_path) as running:
        assert SERVER_BACKEND_LOG[engine] in running.log_text(), f"{engine} did not use its Transformers backend"
        yield url, client


class RepoTests:
    """What every kind of repo shares: where it is, its config and weights, the platform, and conformance."""

    pytestmark = DEPRECATIONS_FROM_THE_REPO
    family = "decoder"  # what `check` takes the repo for: which dynamic rules apply

    @pytest.fixture(scope="class")
    @classmethod
    def repo(cls, request) -> Path:
        """The repo: the folder above the `tests/` folder holding the declaring test module."""
        return Path(request.path).resolve().parents[1]

    @pytest.fixture(scope="class")
    @classmethod
    def config_json(cls, repo) -> dict:
        return json.loads((repo / "config.json").read_text())

    @pytest.fixture(scope="class")
    @classmethod
    def needs_weights(cls, repo):
        if not any(repo.glob("*.safetensors")):
            pytest.skip(
                "this repo has no weights (generated with --no-weights): add model.safetensors to run this test"
            )

    @pytest.fixture(scope="class")
    @classmethod
    def platform(cls):
        return machine.detect_platform()

    @pytest.fixture(scope="class")
    @classmethod
    def tokenizer(cls, repo):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(repo)

    @pytest.fixture(scope="class")
    @classmethod
    def conformance(cls, repo):
        from tf_scaffold.conformance import check

        return check(repo, trust_remote_code=True, lint=False)

    # ---- conformance: `tf-scaffold check --trust-remote-code`, one test per rule ------------------------------------

    def test_static_conformance(self, repo):
        from tf_scaffold.conformance import ERROR, INTERNAL, static_checks

        findings, _ran, _skipped = static_checks(repo)
        bad = [f for f in findings if f.severity in (ERROR, INTERNAL)]
        assert not bad, "\n".join(map(str, bad))

    def test_dynamic_conformance(self, conformance, check_id):
        from tf_scaffold.conformance import RULES

        if check_id in conformance.skipped:
            pytest.skip(f"{check_id}: {conformance.skipped[check_id]}")
        assert check_id in conformance.ran, f"{check_id} neither ran nor was skipped with a reason"
        bad = [f for f in conformance.findings if f.id == check_id]
        assert not bad, f"{RULES[check_id].title}:\n" + "\n".join(map(str, bad))


class CausalLMRepoTests(RepoTests):
    """A text decoder repo: `AutoModelForCausalLM` (or the repo's head auto class) over a base model the engines build."""

    prompts: list[list[int]] = [[1, 40, 41, 42, 43, 44, 45], [1, 300, 17, 99, 250]]
    messages: list[dict] = [{"role": "user", "content": "Hello! How are you today?"}]
    max_tokens: int = 8

    # ---- fixtures ---------------------------------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def text_config_json(cls, config_json) -> dict:
        """The decoder's part of config.json: nested under `text_config` in a composite repo."""
        return config_json.get("text_config", config_json)

    @pytest.fixture(scope="class")
    @classmethod
    def head_auto_class(cls, config_json):
        import transformers

        name = next((k for k in GENERATING_AUTO_CLASSES if k in config_json.get("auto_map", {})), None)
        if name is None:
            pytest.fail(f"config.json's auto_map names no head class ({', '.join(GENERATING_AUTO_CLASSES)})")
        return getattr(transformers, name)

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, repo, needs_weights, head_auto_class):
        import torch

        return head_auto_class.from_pretrained(repo, trust_remote_code=True, dtype=torch.float32).eval()

    @pytest.fixture(scope="class")
    @classmethod
    def reference(cls, repo, needs_weights, platform):
        return harness.transformers_greedy(repo, platform, cls.prompts, cls.max_tokens)

    @pytest.fixture(scope="class")
    @classmethod
    def sglang_overrides(cls, text_config_json) -> dict:
        """Where SGLang is known to serve another model than transformers runs (a sliding window one token wider in
        0.5.23), the config change that makes transformers compute what SGLang serves: the SGLang tests compare with
        that, so they pass on the known defect, state it, and fail once SGLang changes."""
        overrides = limits.sglang_window_overrides(text_config_json, machine.package_version("sglang"))
        if overrides:
            print(
                f"SGLang {machine.package_version('sglang')} windows sliding layers one token wider than transformers:"
                f" comparing with transformers at {overrides}"
            )
        return overrides

    @pytest.fixture(scope="class")
    @classmethod
    def sglang_reference(cls, repo, needs_weights, platform, reference, sglang_overrides):
        if not sglang_overrides:
            return reference
        return harness.transformers_greedy(repo, platform, cls.prompts, cls.max_tokens, **sglang_overrides)

    @pytest.fixture(scope="class")
    @classmethod
    def chat_prompt(cls, tokenizer) -> list[int]:
        """The prompt ids of `messages` through the repo's chat template, as the servers' chat endpoints build them."""
        prompt = tokenizer.apply_chat_template(
            cls.messages, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return list(prompt["input_ids"])

    # ---- loading, tokenizer, generation -----------------------------------------------------------------------------

    def test_auto_classes_resolve_to_this_repo(self, repo, config_json, head_auto_class):
        import torch
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.from_pretrained(repo, trust_remote_code=True)
        auto_map = config_json["auto_map"]
        assert type(config).__name__ == auto_map["AutoConfig"].split(".")[-1]
        with torch.device("meta"):
            base = AutoModel.from_config(config, trust_remote_code=True)
            head = head_auto_class.from_config(config, trust_remote_code=True)
        # The engines build only the base model; the head class must wrap exactly that base model.
        assert type(base).__name__ == auto_map["AutoModel"].split(".")[-1]
        assert (
            type(head).__name__ == auto_map[head_auto_class.__name__].split(".")[-1] == config_json["architectures"][0]
        )
        assert type(head.model) is type(base)

    def test_checkpoint_matches_model(self, repo, needs_weights, head_auto_class):
        _model, info = head_auto_class.from_pretrained(repo, trust_remote_code=True, output_loading_info=True)
        for key in ("missing_keys", "unexpected_keys", "mismatched_keys"):
            assert not info[key], f"{key}: {info[key]}"

    def test_tokenizer_matches_config(self, tokenizer, text_config_json):
        assert tokenizer.pad_token_id == text_config_json["pad_token_id"]
        assert tokenizer.bos_token_id == text_config_json["bos_token_id"]
        assert tokenizer.eos_token_id == text_config_json["eos_token_id"]
        assert len(tokenizer) <= text_config_json["vocab_size"]
        text = "Backend-ready models run in vLLM and SGLang. Ünïcödé ✓"
        assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text

    def test_chat_template_and_generate(self, model, tokenizer):
        prompt = tokenizer.apply_chat_template(
            self.messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        out = model.generate(**prompt, max_new_tokens=8, min_new_tokens=8, do_sample=False)
        length = prompt["input_ids"].shape[1]
        assert out.shape == (1, length + 8) and (out[0, :length] == prompt["input_ids"][0]).all()

    def test_rotary_buffer_restored_after_loading(self, model, text_config_json):
        # `inv_freq` is non-persistent: built on the meta device it is garbage unless something restores it.
        import torch

        rotary = model.get_decoder().rotary_emb
        rope = text_config_json["rope_parameters"]
        if rope.get("rope_type", "default") != "default":
            pytest.skip(f"rope_type {rope['rope_type']!r}: its frequencies are not the plain formula's")
        dim, theta = text_config_json["head_dim"], rope["rope_theta"]
        expected = torch.tensor([1.0 / theta ** (i / dim) for i in range(0, dim, 2)], dtype=torch.float64)
        torch.testing.assert_close(rotary.inv_freq.double(), expected, rtol=1e-6, atol=0)

    def test_eager_and_sdpa_agree_on_non_pad_positions(self, repo, needs_weights, head_auto_class, text_config_json):
        import torch

        ids, mask = _padded_batch(text_config_json["vocab_size"], text_config_json["pad_token_id"])
        logits = {}
        for impl in ("eager", "sdpa"):
            m = head_auto_class.from_pretrained(repo, trust_remote_code=True, attn_implementation=impl).eval()
            assert m.config._attn_implementation == impl
            with torch.no_grad():
                logits[impl] = m(input_ids=ids, attention_mask=mask).logits
        keep = mask.bool()
        torch.testing.assert_close(logits["eager"][keep], logits["sdpa"][keep], atol=ATOL, rtol=0)
        assert torch.isfinite(logits["eager"][keep]).all()

    def test_kv_cache_decoding_equals_full_forward(self, model, text_config_json):
        import torch
        from transformers import DynamicCache

        from tf_scaffold.conformance.dynamic import cache_argument

        ids, _ = _padded_batch(text_config_json["vocab_size"], 0, rows=2, length=10, seed=1)
        name, cache = cache_argument(model), DynamicCache(config=model.config)
        with torch.no_grad():
            full = model(input_ids=ids, use_cache=False).logits
            steps = [model(input_ids=ids[:, :4], use_cache=True, **{name: cache}).logits]
            for t in range(4, ids.shape[1]):
                steps.append(model(input_ids=ids[:, t : t + 1], use_cache=True, **{name: cache}).logits)
        assert cache.get_seq_length() == ids.shape[1]
        torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=ATOL, rtol=0)

    @pytest.mark.parametrize("rows", ["one prompt", "left-padded batch"])
    def test_generate_equals_greedy_decoding_without_cache(self, model, text_config_json, rows):
        # `generate()` of the installed transformers drives the KV cache (it passes it as `cache` from 5.24 on and as
        # `past_key_values` before): its tokens must be those of re-running the whole sequence at every step.
        from tf_scaffold.conformance.dynamic import generate_mismatch

        ids, mask = _padded_batch(
            text_config_json["vocab_size"], text_config_json["pad_token_id"], 1 if rows == "one prompt" else 2, 9, 2
        )
        problem = generate_mismatch(model, ids, mask, max_new_tokens=10)
        assert problem is None, problem

    def test_hidden_states_and_attentions_are_returned(self, repo, needs_weights, head_auto_class, text_config_json):
        import torch

        model = head_auto_class.from_pretrained(repo, trust_remote_code=True, attn_implementation="eager")
        with torch.no_grad():
            out = model(
                input_ids=torch.tensor([[1, 40, 41, 42, 43]]), output_hidden_states=True, output_attentions=True
            )
        layers, heads = text_config_json["num_hidden_layers"], text_config_json["num_attention_heads"]
        assert len(out.hidden_states) == layers + 1  # the embeddings, then one per layer
        assert len(out.attentions) == layers and out.attentions[0].shape == (1, heads, 5, 5)
        torch.testing.assert_close(out.attentions[0].sum(-1), torch.ones(1, heads, 5), atol=1e-5, rtol=0)

    def test_attention_scaling_is_inverse_sqrt_head_dim(self, model, text_config_json):
        attn = model.get_decoder().layers[0].self_attn
        assert math.isclose(attn.scaling, text_config_json["head_dim"] ** -0.5)

    # ---- the real engines ------------------------------------------------------------------------------------------

    def _offline(self, engine: str, repo: Path, platform, tmp_path: Path, tp: int = 1) -> dict:
        args = [engine, str(repo), json.dumps(self.prompts), str(self.max_tokens), str(tp)]
        proc, result = run_offline(args, server.engine_env(repo, platform, tmp_path, tp, offline=True))
        assert result is not None, f"{engine} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        return result

    @staticmethod
    def _assert_matches(reference, sequences, exact: bool) -> None:
        for ref, got in zip(reference, sequences, strict=True):
            problem = harness.compare(ref, harness.engine_sequence(got), exact)
            assert problem is None, problem

    @pytest.mark.engine
    @pytest.mark.parametrize("tp", [1, 2], ids=["tp1", "tp2"])
    def test_vllm_offline_greedy_matches_transformers(self, repo, text_config_json, platform, reference, tmp_path, tp):
        _skip_unless("vllm", text_config_json, platform, tp)
        result = self._offline("vllm", repo, platform, tmp_path, tp)
        print(
            f"vLLM {result['version']} on {result['device']} ({result['dtype']}), tp={tp}: {result['architectures']}"
        )
        assert result["transformers_backend"] is True, (
            f"vLLM did not use its Transformers backend: {result['architectures']}"
        )
        self._assert_matches(reference, result["sequences"], platform.exact)
        if result.get("fused") is not None:
            self._assert_fused(result["fused"], text_config_json)

    @staticmethod
    def _assert_fused(fused: dict, text_config: dict) -> None:
        """vLLM fused every layer's q/k/v, its gate/up (or, in an MoE model, the whole MoE block) and both norms,
        and left no plain Linear: a model that loses a fusion serves correctly but slower."""
        print(f"vLLM fused modules: {fused}")
        layers = text_config["num_hidden_layers"]
        moe = any(text_config.get(k) for k in MOE_EXPERT_COUNT_KEYS)
        expected = {"qkv": layers, "moe" if moe else "gate_up": layers, "plain_linear": 0}
        wrong = {kind: fused.get(kind) for kind, count in expected.items() if fused.get(kind) != count}
        assert not wrong, f"vLLM fused {wrong}, expected {expected} ({layers} layers): a layer lost its fusion"
        assert fused.get("rms_norm", 0) >= 2 * layers + 1, f"vLLM fused only {fused.get('rms_norm')} RMSNorms"

    @pytest.mark.engine
    def test_vllm_openai_server(self, repo, text_config_json, platform, reference, chat_prompt, tmp_path):
        _skip_unless("vllm", text_config_json, platform)
        with _serving("vllm", repo, platform, tmp_path) as (url, client):
            for prompt, ref in zip(self.prompts, reference, strict=True):
                out = _http_json(
                    f"{url}/v1/completions",
                    {
                        "model": "model",
                        "prompt": prompt,
                        "max_tokens": self.max_tokens,
                        "temperature": 0,
                        "logprobs": 5,
                        "return_tokens_as_token_ids": True,
                    },
                )
                choice = out["choices"][0]
                tokens = [int(t.split(":")[1]) for t in choice["logprobs"]["tokens"]]
                steps = [{int(k.split(":")[1]): v for k, v in s.items()} for s in choice["logprobs"]["top_logprobs"]]
                problem = harness.compare(ref, harness.Sequence(tokens=tokens, top_logprobs=steps), platform.exact)
                assert problem is None, f"/v1/completions: {problem}"
            chat = client.chat.completions.create(
                model="model",
                messages=self.messages,
                max_tokens=self.max_tokens,
                temperature=0,
                logprobs=True,
                top_logprobs=5,
                extra_body={"return_tokens_as_token_ids": True},
            )
            content = chat.choices[0].logprobs.content
            chat_seq = harness.Sequence(
                tokens=[int(item.token.split(":")[1]) for item in content],
                top_logprobs=[{int(t.token.split(":")[1]): t.logprob for t in item.top_logprobs} for item in content],
            )
            assert isinstance(chat.choices[0].message.content, str)
        chat_ref = harness.transformers_greedy(repo, platform, [chat_prompt], self.max_tokens)[0]
        problem = harness.compare(chat_ref, chat_seq, platform.exact)
        assert problem is None, f"chat: {problem}"

    @pytest.mark.engine
    @pytest.mark.parametrize("tp", [1, 2], ids=["tp1", "tp2"])
    def test_sglang_offline_greedy_matches_transformers(
        self, repo, text_config_json, platform, sglang_reference, tmp_path, tp
    ):
        _skip_unless("sglang", text_config_json, platform, tp)
        result = self._offline("sglang", repo, platform, tmp_path, tp)
        print(f"SGLang {result['version']} on {result['device']} ({result['dtype']}), tp={tp}")
        assert result["transformers_backend"] is True, "SGLang did not log that it used its Transformers backend"
        self._assert_matches(sglang_reference, result["sequences"], platform.exact)

    @pytest.mark.engine
    def test_sglang_server(
        self, repo, text_config_json, platform, sglang_reference, sglang_overrides, chat_prompt, tmp_path
    ):
        _skip_unless("sglang", text_config_json, platform)
        reference = sglang_reference
        with _serving("sglang", repo, platform, tmp_path) as (url, client):
            for prompt, ref in zip(self.prompts, reference, strict=True):  # native endpoint: ids and logprobs
                out = _http_json(
                    f"{url}/generate",
                    {
                        "input_ids": prompt,
                        "sampling_params": {"max_new_tokens": self.max_tokens, "temperature": 0},
                        "return_logprob": True,
                        "top_logprobs_num": 5,
                    },
                )
                problem = harness.compare(ref, harness.sglang_sequence(out["meta_info"]), platform.exact)
                assert problem is None, f"/generate: {problem}"
            for prompt, ref in zip(self.prompts, reference, strict=True):  # OpenAI completions, the ids it generated
                completion = client.completions.create(
                    model="model",
                    prompt=prompt,
                    max_tokens=self.max_tokens,
                    temperature=0,
                    extra_body={"return_token_ids": True},
                )
                tokens = completion.choices[0].model_extra["token_ids"]
                assert tokens == ref.tokens, f"/v1/completions: transformers {ref.tokens} vs SGLang {tokens}"
            chat = client.chat.completions.create(
                model="model",
                messages=self.messages,
                max_tokens=self.max_tokens,
                temperature=0,
                logprobs=True,
                top_logprobs=5,
                extra_body={"return_token_ids": True, "return_prompt_token_ids": True},
            )
            choice = chat.choices[0]
            tokens = choice.model_extra["response_token_ids"]
            chat_seq = harness.Sequence(
                tokens=tokens,
                top_logprobs=[{t: item.logprob} for t, item in zip(tokens, choice.logprobs.content, strict=True)],
            )
            assert choice.model_extra["prompt_token_ids"] == chat_prompt, "SGLang applied another chat template"
        chat_ref = harness.transformers_greedy(repo, platform, [chat_prompt], self.max_tokens, **sglang_overrides)[0]
        problem = harness.compare(chat_ref, chat_seq, platform.exact)
        assert problem is None, f"/v1/chat/completions: {problem}"


class ImageTextToTextRepoTests(CausalLMRepoTests):
    """A vision-language repo: the decoder's tests, plus the processor and image prompts, in transformers and in the
    engines. The token-count contract (`_get_num_multimodal_tokens`, `pixel_values` rows, `get_image_features` rows,
    `mm_token_type_ids`, the two ways of merging features) is checked for many image sizes by the conformance tests."""

    family = "multimodal"
    # (height, width, seed): different sizes and aspect ratios, one of them smaller than the model's input.
    images: list[list[int]] = [[240, 320, 0], [900, 17, 1], [40, 50, 2]]

    @pytest.fixture(scope="class")
    @classmethod
    def processor(cls, repo):
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(repo, trust_remote_code=True)

    def chat(self, processor, num_images: int) -> str:
        content = [{"type": "image"} for _ in range(num_images)]
        content.append({"type": "text", "text": "Describe the pictures."})
        return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)

    def test_processor_loads_with_the_image_token(self, processor, config_json):
        assert type(processor).__name__ == config_json["auto_map"]["AutoProcessor"].split(".")[-1]
        assert processor.image_token_id == config_json["image_token_id"]

    @pytest.mark.parametrize("num_images", [1, 3])
    def test_chat_with_images_generates(self, processor, model, num_images):
        images = [harness.noise_image(*spec) for spec in self.images[:num_images]]
        prompt = self.chat(processor, num_images)
        assert prompt.count(processor.image_token) == num_images
        inputs = processor(text=prompt, images=images, return_tensors="pt")
        counts = processor._get_num_multimodal_tokens(image_sizes=[[im.height, im.width] for im in images])
        assert int((inputs["input_ids"] == processor.image_token_id).sum()) == sum(counts.num_image_tokens)
        assert inputs["pixel_values"].shape[0] == sum(counts.num_image_patches)
        out = model.generate(**inputs, max_new_tokens=self.max_tokens, min_new_tokens=self.max_tokens, do_sample=False)
        assert out.shape == (1, inputs["input_ids"].shape[1] + self.max_tokens)

    def test_generate_with_images_equals_greedy_decoding_without_cache(self, processor, model):
        # With the KV cache `generate()` passes the pixels on the first step only; without it every step re-reads them.
        from tf_scaffold.conformance.dynamic import generate_mismatch

        images = [harness.noise_image(*spec) for spec in self.images]
        inputs = processor(text=self.chat(processor, len(images)), images=images, return_tensors="pt")
        problem = generate_mismatch(
            model, inputs["input_ids"], inputs["attention_mask"], self.max_tokens, pixel_values=inputs["pixel_values"]
        )
        assert problem is None, problem

    def test_generated_tokens_depend_on_the_image(self, processor, model):
        # The placeholder weights are large enough that the image changes the answer: an engine that dropped or
        # misplaced the image features would not reproduce transformers' tokens.
        prompt, answers = self.chat(processor, 1), set()
        for spec in self.images:
            inputs = processor(text=prompt, images=[harness.noise_image(*spec)], return_tensors="pt")
            out = model.generate(**inputs, max_new_tokens=self.max_tokens, do_sample=False)
            answers.add(tuple(out[0, inputs["input_ids"].shape[1] :].tolist()))
        assert len(answers) > 1

    def test_pixels_reach_the_model_on_the_first_step_only(self, processor, model):
        seen = []
        hook = model.model.register_forward_pre_hook(
            lambda _module, _args, kwargs: seen.append(kwargs.get("pixel_values") is not None), with_kwargs=True
        )
        try:
            inputs = processor(
                text=self.chat(processor, 1), images=[harness.noise_image(*self.images[0])], return_tensors="pt"
            )
            model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
        finally:
            hook.remove()
        assert seen == [True, False, False, False]

    @pytest.mark.engine
    @pytest.mark.parametrize("engine", ["vllm", "sglang"])
    def test_engine_serves_an_image_prompt_like_transformers(
        self, repo, needs_weights, text_config_json, processor, engine, tmp_path
    ):
        platform = machine.detect_platform()
        reason = limits.engine_skip_reason(engine, platform, text_config_json)
        if engine == "sglang":
            reason = reason or limits.sglang_cpu_multimodal_reason(platform)
        if reason:
            pytest.skip(reason)
        prompt = self.chat(processor, len(self.images))
        images = [harness.noise_image(*spec) for spec in self.images]
        reference = harness.transformers_image_greedy(repo, platform, prompt, images, self.max_tokens)
        args = [f"{engine}-image", str(repo), prompt, json.dumps(self.images), str(self.max_tokens)]
        proc, result = run_offline(args, server.engine_env(repo, platform, tmp_path, offline=True))
        assert result is not None, f"{engine} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        print(f"{engine} {result['version']} on {result['device']} ({result['dtype']}): {result.get('architectures')}")
        assert result["transformers_backend"] is True, f"{engine} did not use its Transformers backend"
        problem = harness.compare(reference, harness.engine_sequence(result["sequences"][0]), platform.exact)
        assert problem is None, problem


class EncoderRepoTests(RepoTests):
    """A BERT-class encoder repo (`tf-scaffold new --arch encoder`): its base model is an embedding model, its
    `AutoModelForSequenceClassification` a classifier, and `config.architectures` says which of them the checkpoint
    holds and the engines serve."""

    family = "encoder"
    # Prompt ids ([CLS] ... [SEP]) the engines' embeddings or scores are compared with transformers' on.
    prompts: list[list[int]] = [[2, 40, 41, 42, 43, 3], [2, 300, 17, 99, 250, 60, 61, 3]]

    # ---- fixtures ---------------------------------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def task(cls, config_json) -> str:
        """`embed` when the checkpoint is the base model, `classify` when it is the sequence classifier."""
        return "classify" if config_json["architectures"][0].endswith("ForSequenceClassification") else "embed"

    @pytest.fixture(scope="class")
    @classmethod
    def engine_config(cls, config_json) -> dict:
        """config.json with the head size the engine checks read."""
        return {**config_json, "head_dim": config_json["hidden_size"] // config_json["num_attention_heads"]}

    @pytest.fixture(scope="class")
    @classmethod
    def base_model(cls, repo, needs_weights):
        import torch
        from transformers import AutoModel

        return AutoModel.from_pretrained(repo, trust_remote_code=True, dtype=torch.float32).eval()

    @pytest.fixture(scope="class")
    @classmethod
    def classifier(cls, repo, needs_weights):
        """The sequence classifier, from this checkpoint (an embedding checkpoint gets a freshly initialised head)."""
        import torch
        from transformers import AutoModelForSequenceClassification

        torch.manual_seed(0)
        return AutoModelForSequenceClassification.from_pretrained(
            repo, trust_remote_code=True, dtype=torch.float32
        ).eval()

    @pytest.fixture(scope="class")
    @classmethod
    def reference(cls, repo, needs_weights, platform, task) -> list[list[float]]:
        return harness.transformers_pooled(repo, platform, cls.prompts, task)

    # ---- loading, tokenizer, the encoder ----------------------------------------------------------------------------

    def test_auto_classes_resolve_to_this_repo(self, repo, config_json, task):
        import torch
        from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

        config = AutoConfig.from_pretrained(repo, trust_remote_code=True)
        auto_map = config_json["auto_map"]
        assert type(config).__name__ == auto_map["AutoConfig"].split(".")[-1]
        with torch.device("meta"):
            base = AutoModel.from_config(config, trust_remote_code=True)
            head = AutoModelForSequenceClassification.from_config(config, trust_remote_code=True)
        assert type(base).__name__ == auto_map["AutoModel"].split(".")[-1]
        assert type(head).__name__ == auto_map["AutoModelForSequenceClassification"].split(".")[-1]
        # the engines tell an embedding model from a classifier by the architecture's name
        served = base if task == "embed" else head
        assert type(served).__name__ == config_json["architectures"][0]
        # vLLM drops the base model's pooler when the classifier's encoder has none, and applies `classifier` alone
        assert type(head.model) is type(base) and head.model.pooler is None
        assert isinstance(getattr(head, "classifier", None), torch.nn.Module)

    def test_checkpoint_matches_model(self, repo, needs_weights, task):
        from transformers import AutoModel, AutoModelForSequenceClassification

        auto = AutoModel if task == "embed" else AutoModelForSequenceClassification
        _model, info = auto.from_pretrained(repo, trust_remote_code=True, output_loading_info=True)
        for key in ("missing_keys", "unexpected_keys", "mismatched_keys"):
            assert not info[key], f"{key}: {info[key]}"

    def test_tokenizer_wraps_sequences_in_cls_and_sep(self, tokenizer, config_json):
        assert tokenizer.pad_token_id == config_json["pad_token_id"]
        assert len(tokenizer) <= config_json["vocab_size"]
        ids = tokenizer("Backend-ready encoders run in vLLM.")["input_ids"]
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert tokenizer.mask_token_id is not None and tokenizer.unk_token_id is not None
        pair = tokenizer("first segment", "second segment")
        assert pair["input_ids"].count(tokenizer.sep_token_id) == 2
        if "token_type_ids" in pair:
            assert set(pair["token_type_ids"]) == {0, 1}
        for prompt in self.prompts:  # the engine prompts are well-formed sequences of this tokenizer
            assert prompt[0] == tokenizer.cls_token_id and prompt[-1] == tokenizer.sep_token_id

    def test_attention_is_bidirectional(self, base_model):
        # The first position sees the last token (a causal model's could not), and every attention module says so.
        import torch

        ids = torch.tensor([[2, 40, 41, 42, 43, 3], [2, 40, 41, 42, 99, 3]])
        with torch.no_grad():
            first = base_model(input_ids=ids).last_hidden_state[:, 0]
        assert not torch.allclose(first[0], first[1])
        flags = [m.is_causal for m in base_model.modules() if hasattr(m, "is_causal")]
        assert flags and not any(flags), f"attention modules with is_causal={flags}: the engines would run causal"

    def test_padding_does_not_change_the_sequence(self, base_model, config_json):
        # A right-padded batch gives each sequence the hidden states it has alone, on its real tokens.
        import torch

        long, short = self.prompts[1], self.prompts[0]
        padded = short + [config_json["pad_token_id"]] * (len(long) - len(short))
        ids = torch.tensor([long, padded])
        mask = torch.tensor([[1] * len(long), [1] * len(short) + [0] * (len(long) - len(short))])
        with torch.no_grad():
            batch = base_model(input_ids=ids, attention_mask=mask).last_hidden_state
            alone = base_model(input_ids=torch.tensor([short])).last_hidden_state
        torch.testing.assert_close(batch[1, : len(short)], alone[0], atol=ATOL, rtol=0)

    def test_eager_and_sdpa_agree_on_non_pad_positions(self, repo, needs_weights, config_json):
        import torch
        from transformers import AutoModel

        ids, mask = _padded_batch(config_json["vocab_size"], config_json["pad_token_id"])
        hidden = {}
        for impl in ("eager", "sdpa"):
            m = AutoModel.from_pretrained(repo, trust_remote_code=True, attn_implementation=impl).eval()
            assert m.config._attn_implementation == impl
            with torch.no_grad():
                hidden[impl] = m(input_ids=ids, attention_mask=mask).last_hidden_state
        keep = mask.bool()
        torch.testing.assert_close(hidden["eager"][keep], hidden["sdpa"][keep], atol=ATOL, rtol=0)
        assert torch.isfinite(hidden["eager"][keep]).all()

    def test_hidden_states_and_attentions_are_returned(self, repo, needs_weights, config_json):
        import torch
        from transformers import AutoModel

        model = AutoModel.from_pretrained(repo, trust_remote_code=True, attn_implementation="eager")
        with torch.no_grad():
            out = model(input_ids=torch.tensor([self.prompts[0]]), output_hidden_states=True, output_attentions=True)
        layers, heads, length = (
            config_json["num_hidden_layers"],
            config_json["num_attention_heads"],
            len(self.prompts[0]),
        )
        assert len(out.hidden_states) == layers + 1  # the embeddings, then one per layer
        assert len(out.attentions) == layers and out.attentions[0].shape == (1, heads, length, length)
        torch.testing.assert_close(out.attentions[0].sum(-1), torch.ones(1, heads, length), atol=1e-5, rtol=0)

    def test_classifier_computes_everything_after_the_encoder(self, classifier):
        # vLLM runs the encoder, pools the first token and applies `classifier` to it, shaped (N, 1, hidden): that
        # call alone must give the classifier's logits.
        import torch

        ids = torch.tensor([self.prompts[1]])
        with torch.no_grad():
            logits = classifier(input_ids=ids).logits
            first = classifier.model(input_ids=ids).last_hidden_state[:, :1]
            engine_logits = classifier.classifier(first)
        torch.testing.assert_close(engine_logits, logits, atol=ATOL, rtol=0)
        assert logits.shape == (1, classifier.config.num_labels)

    def test_classifier_trains(self, classifier):
        import torch

        labels = torch.tensor([0])
        out = classifier(input_ids=torch.tensor([self.prompts[0]]), labels=labels)
        assert out.loss is not None and torch.isfinite(out.loss)

    def test_embeddings_follow_the_pooling_files(self, repo, config_json, task):
        # sentence-transformers (and vLLM) pool as modules.json says, SGLang as config.json says: they must agree.
        if task != "embed":
            pytest.skip("a classifier's checkpoint: the engines apply its head, not a pooling configuration")
        mode, normalize = harness.sentence_transformers_pooling(repo)
        assert (repo / "modules.json").is_file(), (
            "no modules.json: vLLM and sentence-transformers fall back to defaults"
        )
        assert config_json.get("pooling_type", "LAST").upper() == mode.upper(), (
            f"modules.json pools {mode}, config.pooling_type (what SGLang reads) is {config_json.get('pooling_type')}"
        )
        assert bool(config_json.get("normalize", True)) == normalize

    # ---- the real engines ------------------------------------------------------------------------------------------

    def _pooling(self, engine: str, repo: Path, platform, tmp_path: Path, task: str):
        args = [f"{engine}-pooling", str(repo), json.dumps(self.prompts)] + ([task] if engine == "vllm" else [])
        return run_offline(args, server.engine_env(repo, platform, tmp_path, offline=True))

    @staticmethod
    def _assert_close(reference: list[list[float]], vectors: list[list[float]], exact: bool) -> None:
        import torch

        atol = ATOL if exact else 2e-2  # fp32 on CPU; bf16 on GPU
        assert len(vectors) == len(reference)
        for i, (ref, got) in enumerate(zip(reference, vectors, strict=True)):
            diff = (torch.tensor(ref) - torch.tensor(got)).abs().max().item()
            print(f"prompt {i}: max abs diff {diff:.3g}")
            assert diff <= atol, f"prompt {i}: the engine's vector differs from transformers' by {diff:.3g} (> {atol})"

    @pytest.mark.engine
    def test_vllm_serves_like_transformers(self, repo, engine_config, platform, reference, task, tmp_path):
        _skip_unless("vllm", engine_config, platform)
        proc, result = self._pooling("vllm", repo, platform, tmp_path, task)
        assert result is not None, f"vLLM failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        call = "LLM.embed" if task == "embed" else "LLM.classify"
        print(
            f"vLLM {result['version']} on {result['device']} ({result['dtype']}): {result['architecture']},"
            f" {call}, pooling {result['pooling']}, fused {result['fused']}"
        )
        assert result["transformers_backend"] is True, f"vLLM did not use its Transformers backend: {result}"
        expected = "TransformersEmbeddingModel" if task == "embed" else "TransformersForSequenceClassification"
        assert result["architecture"] == expected
        assert result["error"] is None, (
            f"{call} failed: {result['error']} (LLM.encode(pooling_task='classify') returned the scores): the"
            " classifier must read the first position of the (N, 1, hidden) input vLLM gives it"
        )
        self._assert_close(reference, result["vectors"], platform.exact)
        layers = engine_config["num_hidden_layers"]
        assert result["fused"]["qkv"] == layers, f"vLLM fused q/k/v in {result['fused']['qkv']} of {layers} layers"

    @pytest.mark.engine
    def test_vllm_openai_embeddings_server(self, repo, engine_config, platform, reference, task, tmp_path):
        _skip_unless("vllm", engine_config, platform)
        if task != "embed":
            pytest.skip("a classifier: the embeddings endpoint serves embedding models")
        port = server.free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = server.vllm_server_cmd(repo, port, platform, extra=("--runner", "pooling"))
        env = server.engine_env(repo, platform, tmp_path)
        with server.running_server(cmd, url, env, "/health", SERVER_TIMEOUT, tmp_path) as running:
            assert SERVER_BACKEND_LOG["vllm"] in running.log_text(), "vLLM did not use its Transformers backend"
            out = _http_json(f"{url}/v1/embeddings", {"model": "model", "input": self.prompts})
        vectors = [item["embedding"] for item in sorted(out["data"], key=lambda item: item["index"])]
        self._assert_close(reference, vectors, platform.exact)

    @pytest.mark.engine
    def test_sglang_serves_like_transformers(self, repo, engine_config, platform, reference, task, tmp_path):
        _skip_unless("sglang", engine_config, platform)
        version = machine.package_version("sglang")
        proc, result = self._pooling("sglang", repo, platform, tmp_path, task)
        known = limits.sglang_encoder_defect(version)
        if known is not None:
            # a known defect of this release: the test shows it happen, and fails once SGLang fixes it
            log = proc.stdout + proc.stderr
            assert result is None, f"SGLang {version} served this encoder: drop it from SGLANG_ENCODER_DEFECT"
            assert known in log, f"SGLang {version} failed otherwise than known:\n{log[-4000:]}"
            line = next(line for line in log.splitlines() if known in line)
            pytest.xfail(
                f"SGLang {version}'s Transformers backend cannot run encoders (it builds their attention as"
                f" cross-attention, which an embedding request has no cache slots for): {line.strip()[:300]}"
            )
        assert result is not None, f"SGLang failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        assert result["transformers_backend"] is True, "SGLang did not log that it used its Transformers backend"
        self._assert_close(reference, result["vectors"], platform.exact)
