"""Running the real engines: building their environments (`tf-scaffold env`) and running a repo's harness in one
(`tf-scaffold test`)."""

from tf_scaffold.engines.envs import build_sglang_cpu_env, build_vllm_cpu_env
from tf_scaffold.engines.run import ENGINES, TestOutcome, TestReport, parse_junit, run_harness

__all__ = [
    "ENGINES",
    "TestOutcome",
    "TestReport",
    "build_sglang_cpu_env",
    "build_vllm_cpu_env",
    "parse_junit",
    "run_harness",
]
