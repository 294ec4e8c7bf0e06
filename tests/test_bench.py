"""`tf-scaffold bench`: its statistics against their definition, the native twin against transformers' own class, the
transformers side against greedy decoding written out here, the measuring loop's order and stopping rule, and its
command line. The engines' sides run in CI (`.ci/run`) and in benchmarks/bench_engines.py."""

import json
import random
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tf_scaffold import commands
from tf_scaffold.bench import report
from tf_scaffold.bench.measure import EnginePhase, measure
from tf_scaffold.bench.plan import make_prompts, special_ids
from tf_scaffold.bench.settings import BenchError, Settings
from tf_scaffold.bench.sides import SideSpec
from tf_scaffold.bench.stats import median_interval, paired_ratios, settled
from tf_scaffold.bench.summary import summarise
from tf_scaffold.bench.twins import Twin, native_copy, twin_for
from tf_scaffold.cli import app

# ---- statistics -----------------------------------------------------------------------------------------------------


def test_median_interval_covers_the_true_median_as_often_as_it_says():
    """Samples from a skewed distribution with a known median (exponential: ln 2): the interval must hold it in at
    least its stated share of draws (Monte Carlo, 4000 draws; the binomial noise of that estimate is ~0.4 %)."""
    rng = random.Random(1)
    for n in (6, 9, 15, 30):
        hits, coverage = 0, None
        for _ in range(4000):
            iv = median_interval([rng.expovariate(1.0) for _ in range(n)])
            hits += iv.low <= 0.6931471805599453 <= iv.high
            coverage = iv.coverage
        assert coverage >= 0.95
        assert hits / 4000 >= coverage - 0.015, (n, hits / 4000, coverage)


def test_median_interval_with_too_few_samples_says_what_it_covers():
    iv = median_interval([3.0, 1.0, 2.0])
    assert (iv.median, iv.low, iv.high) == (2.0, 1.0, 3.0)
    assert iv.coverage == pytest.approx(1 - 2 / 2**3)  # P(min <= median <= max) = 1 - 2 * (1/2)^n
    assert not settled(iv, precision=10.0)  # not 95 %: never settled, however narrow


def test_median_interval_narrows_with_more_samples_and_is_order_free():
    rng = random.Random(2)
    xs = [rng.gauss(1.0, 0.05) for _ in range(40)]
    small, large = median_interval(xs[:8]), median_interval(xs)
    assert large.half_width < small.half_width
    assert median_interval(list(reversed(xs))) == large
    assert large.median == statistics.median(xs)


def test_paired_ratios():
    assert paired_ratios([2.0, 3.0], [1.0, 4.0]) == [2.0, 0.75]
    with pytest.raises(ValueError):
        paired_ratios([1.0], [1.0, 2.0])


def test_prompts_avoid_every_special_id_of_the_config(tiny_vl_repo):
    """A vision-language config's image placeholder (id 4 in a generated one) in a text prompt would ask for an image
    that is not there; pad, bos and eos are no prompt tokens either."""
    config = json.loads((tiny_vl_repo / "config.json").read_text())
    avoid = special_ids(config)
    assert config["image_token_id"] in avoid and config["text_config"]["eos_token_id"] in avoid
    prompts = make_prompts(32, 64, config["text_config"]["vocab_size"], avoid)
    used = {i for p in prompts for i in p}
    assert not used & avoid and min(used) >= 4 and max(used) < config["text_config"]["vocab_size"]
    assert make_prompts(32, 64, 1024, avoid) == prompts  # seeded: every side and every run get the same


# ---- the native twin ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "twin"),
    [
        ({}, "LlamaForCausalLM"),
        ({"moe": True}, "Qwen3MoeForCausalLM"),
        ({"qk_norm": True}, "Qwen3ForCausalLM"),
        ({"attention_bias": True}, "Qwen2ForCausalLM"),
    ],
)
def test_native_copy_is_transformers_own_class_with_the_same_logits(tmp_path, answers, twin):
    """The copy the engines load natively is, to transformers too, its in-library class with every weight loaded and
    the generated model's logits: the independent reference the backend is timed against."""
    from transformers import AutoModelForCausalLM

    repo = commands.new({"name": "twin-probe", **answers}, tmp_path).path
    found = twin_for(repo)
    assert found.architecture == twin
    native = native_copy(repo, tmp_path / "native", found)
    assert not list(native.glob("*.py")) and "auto_map" not in json.loads((native / "config.json").read_text())
    ours = AutoModelForCausalLM.from_pretrained(repo, trust_remote_code=True, dtype=torch.float32).eval()
    theirs, info = AutoModelForCausalLM.from_pretrained(native, dtype=torch.float32, output_loading_info=True)
    assert type(theirs).__name__ == twin
    assert not any(info.values()), info
    ids = torch.randint(3, 1000, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(ours(ids).logits, theirs.eval()(ids).logits)


def test_twin_for_other_repos(tmp_path, tiny_vl_repo):
    assert twin_for(tiny_vl_repo).architecture is None and "multimodal" in twin_for(tiny_vl_repo).reason
    (tmp_path / "config.json").write_text("{}")
    assert "--native" in twin_for(tmp_path).reason  # hand-written: no answers to read
    assert twin_for(tmp_path, "Qwen3ForCausalLM").model_type == "qwen3"
    assert twin_for(tmp_path, "none").architecture is None
    with pytest.raises(Exception, match="choose one of"):
        twin_for(tmp_path, "GPT2LMHeadModel")


# ---- the transformers side, in its worker process -------------------------------------------------------------------


def test_transformers_worker_generates_exactly_n_greedy_tokens_through_eos(tiny_repo, tmp_path):
    """The worker's tokens are greedy decoding written out here (full forward each step, no cache), for exactly N
    tokens even where the model's EOS comes up: the engines, told to ignore EOS, keep it and go on."""
    from transformers import AutoModelForCausalLM

    prompts = [[5, 60, 70, 80, 90, 100], [7, 8, 9, 10, 11, 12]]
    model = AutoModelForCausalLM.from_pretrained(tiny_repo, trust_remote_code=True, dtype=torch.float32).eval()
    seq = torch.tensor(prompts)
    with torch.no_grad():
        for _ in range(10):
            seq = torch.cat([seq, model(seq).logits[:, -1].argmax(-1, keepdim=True)], 1)
    expected = seq[:, 6:].tolist()
    # make a token the model generates mid-way its EOS
    repo = tmp_path / "eos"
    subprocess.run(["cp", "-r", str(tiny_repo), str(repo)], check=True)
    for name in ("config.json", "generation_config.json"):
        cfg = json.loads((repo / name).read_text())
        cfg["eos_token_id"] = expected[0][2]
        (repo / name).write_text(json.dumps(cfg))
    args = {"side": "transformers", "repo": str(repo), "dtype": "float32", "device": "cpu", "threads": 1}
    requests = json.dumps({"op": "run", "prompts": prompts, "new_tokens": 10}) + '\n{"op": "exit"}\n'
    proc = subprocess.run(
        [sys.executable, "-m", "tf_scaffold.bench.worker", json.dumps(args)],
        input=requests,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0 and answers[0]["ready"], proc.stderr[-2000:]
    assert answers[1]["tokens"] == expected
    assert answers[1]["seconds"] > 0


# ---- the measuring loop, with sides that answer from a script ------------------------------------------------------


class ScriptedSide:
    """A side whose runs take the seconds `speed(batch)` says and give fixed tokens; it records when it ran."""

    def __init__(self, name, speed, log, tokens=lambda prompt: [prompt[0], 1, 2]):
        self.spec = SideSpec(name, "transformers", "vllm", sys.executable, Path("."), backend=name == "vllm")
        self.info = {"start_seconds": 1.0, "fused": None}
        self.speed, self.log, self.tokens = speed, log, tokens

    def request(self, obj, timeout=0):
        self.log.append((self.spec.name, len(obj["prompts"])))
        return {"seconds": self.speed(len(obj["prompts"])), "tokens": [self.tokens(p) for p in obj["prompts"]]}


def settings(**kw):
    base = dict(
        batch_sizes=[2, 4],
        new_tokens=3,
        prompt_len=4,
        budget=1e9,
        precision=0.02,
        min_rounds=6,
        max_rounds=40,
        compiled=False,
        threads=1,
        cores=[0],
        dtype="float32",
        device="cpu",
    )
    return Settings(**{**base, **kw})


def phase_with(sides):
    phase = EnginePhase(engine="vllm", python=sys.executable)
    phase.sides = sides
    return phase


def test_rounds_alternate_the_order_and_stop_once_the_ratio_is_settled():
    log = []
    rng = random.Random(0)
    sides = [
        ScriptedSide("transformers", lambda b: 1.0 * b, log),
        ScriptedSide("vllm", lambda b: 0.1 * b * rng.uniform(0.995, 1.005), log),
        ScriptedSide("vllm-native", lambda b: 0.1 * b * rng.uniform(0.995, 1.005), log),
    ]
    phase = phase_with(sides)
    prompts = [[i, 9, 9, 9] for i in range(4)]
    measure(phase, prompts, settings(), {}, lambda text: None)
    assert phase.rounds == 6 and "narrowed" in phase.stopped  # a ±0.5 % noise settles at the first chance
    timed = log[2 * 3 :]  # after the warm-up (one run per side and batch size)
    first, second = [name for name, _ in timed[:3]], [name for name, _ in timed[3:6]]
    assert first == ["transformers", "vllm", "vllm-native"] and second == first[::-1]
    result = summarise(
        Path("repo"), {"architectures": ["X"]}, Twin("LlamaForCausalLM", "test"), [phase], {}, settings()
    )
    overall = result["engines"]["vllm"]["overall"]
    assert overall["speedup"]["median"] == pytest.approx(10.0, rel=0.02)
    assert overall["backend_vs_native"]["low"] <= 1.0 <= overall["backend_vs_native"]["high"]


def test_noisy_sides_run_until_the_budget_and_say_so():
    log = []
    rng = random.Random(0)
    sides = [
        ScriptedSide("vllm", lambda b: rng.uniform(0.5, 1.5), log),
        ScriptedSide("vllm-native", lambda b: rng.uniform(0.5, 1.5), log),
    ]
    phase = phase_with(sides)
    measure(phase, [[1, 2, 3, 4]] * 4, settings(max_rounds=8), {}, lambda text: None)
    assert phase.rounds == 8 and "--max-rounds 8" in phase.stopped


def test_a_side_with_other_tokens_is_an_error_naming_it():
    log = []
    sides = [
        ScriptedSide("transformers", lambda b: 1.0, log),
        ScriptedSide("vllm", lambda b: 1.0, log, tokens=lambda p: [p[0], 1, 7]),
    ]
    with pytest.raises(
        BenchError, match=r"vllm generated other tokens than transformers at batch 2 \(prompt 0, token 2"
    ):
        measure(phase_with(sides), [[1, 2, 3, 4]] * 4, settings(), {}, lambda text: None)


def test_fusing_less_than_the_twin_is_a_warning_naming_the_kind_and_the_rule():
    log = []
    backend = ScriptedSide("vllm", lambda b: 1.0, log)
    native = ScriptedSide("vllm-native", lambda b: 1.0, log)
    backend.info["fused"] = {"qkv": 0, "gate_up": 2, "rms_norm": 5, "moe": 0, "plain_linear": 6}
    backend.info["fusion_log"] = ["<class 'AcmeAttention'> is not compatible with QKV fusion"]
    native.info["fused"] = {"qkv": 2, "gate_up": 2, "rms_norm": 5, "moe": 0, "plain_linear": 0}
    phase = phase_with([backend, native])
    measure(phase, [[1, 2, 3, 4]] * 4, settings(max_rounds=6), {}, lambda text: None)
    result = summarise(
        Path("acme"), {"architectures": ["X"]}, Twin("LlamaForCausalLM", "test"), [phase], {}, settings()
    )
    (warning,) = result["warnings"]
    assert "fused 0 qkv module(s) in acme but 2 in its twin LlamaForCausalLM" in warning
    assert "sibling nn.Linear" in warning and "not compatible with QKV fusion" in warning


def test_report_files(tmp_path):
    log = []
    sides = [ScriptedSide("transformers", lambda b: 2.0, log), ScriptedSide("vllm", lambda b: 1.0, log)]
    phase = phase_with(sides)
    measure(phase, [[1, 2, 3, 4]] * 4, settings(min_rounds=6), {}, lambda text: None)
    result = summarise(Path("repo"), {"architectures": ["X"]}, Twin(None, "no twin"), [phase], {}, settings())
    written = report.write(result, tmp_path / "out")
    assert [p.name for p in written] == ["bench.png", "bench.md", "bench.json"]
    assert (tmp_path / "out" / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (tmp_path / "out" / "bench.md").read_text()
    assert "| 2 | 3 | 6 | 2.00 [2.00, 2.00] |" in text  # 2 prompts x 3 tokens in 2 s and in 1 s
    assert "backend / native" not in text.split("\n\n")[3]  # no native side: no such column
    assert json.loads((tmp_path / "out" / "bench.json").read_text())["engines"]["vllm"]["rounds"] == 6


# ---- the command line -----------------------------------------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(app, ["bench", *map(str, args)], catch_exceptions=False)


def one_line_error(result, code=2):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_bad_input_is_one_line(tmp_path, tiny_repo, tiny_vl_repo, tiny_encoder_repo):
    assert "does not exist" in one_line_error(run(tmp_path / "missing"))
    assert "has no config.json" in one_line_error(run(tmp_path, "--out", tmp_path / "o"))
    assert "text generation" in one_line_error(run(tiny_encoder_repo, "--out", tmp_path / "o"))
    assert "--batch-sizes" in one_line_error(run(tiny_repo, "--batch-sizes", "4,x"))
    assert "--batch-sizes" in one_line_error(run(tiny_repo, "--batch-sizes", "0"))
    assert "unknown engine" in one_line_error(run(tiny_repo, "--engines", "tgi", "--out", tmp_path / "o"))
    # asked for by name, in an interpreter that does not have it: an environment failure, exit 4
    line = one_line_error(
        run(tiny_repo, "--engines", "sglang", "--python", sys.executable, "--out", tmp_path / "o"), 4
    )
    assert "SGLang is not installed" in line or "tf-scaffold is not installed" in line
    line = one_line_error(run(tiny_repo, "--python", tmp_path / "nope", "--out", tmp_path / "o"), 4)
    assert "does not exist" in line
    assert "nothing to time" in one_line_error(run(tiny_vl_repo, "--no-transformers", "--out", tmp_path / "o"))
    assert "choose one of" in one_line_error(run(tiny_repo, "--native", "GPT2LMHeadModel", "--out", tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_earlier_results_are_kept_unless_forced(tmp_path, tiny_repo):
    out = tmp_path / "out"
    out.mkdir()
    (out / "bench.json").write_text("{}")
    assert "--force" in one_line_error(run(tiny_repo, "--out", out))
    assert (out / "bench.json").read_text() == "{}"
