"""The generated repo is complete, lint-clean and cookiecutter-compatible; its tests are a short declaration over
tf-scaffold's harness (an installed pytest plugin), pass with it, and say how to get it without."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from tf_scaffold import commands
from tf_scaffold.render import render, template_dir
from tf_scaffold.spec import build_spec

BLOCK_SCAFFOLD = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tf_scaffold" or name.startswith("tf_scaffold."):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, _Block())
"""


def test_repo_files(tiny_repo):
    names = {p.relative_to(tiny_repo).as_posix() for p in tiny_repo.rglob("*") if p.is_file()}
    for expected in (
        "config.json",
        "generation_config.json",
        "configuration_acme_lm.py",
        "modeling_acme_lm.py",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
        ".gitattributes",
        ".tf-scaffold.json",
        "tests/test_acme_lm.py",
        "tests/requirements.txt",
    ):
        assert expected in names, expected
    assert not any("__pycache__" in n for n in names)
    assert not list(tiny_repo.parent.glob(".*tf-scaffold-tmp*")), "staging folder left behind"


def test_config_json_contract(tiny_repo):
    cfg = json.loads((tiny_repo / "config.json").read_text())
    assert cfg["architectures"] == ["AcmeLmForCausalLM"]
    assert cfg["model_type"] == "acme_lm"
    assert cfg["auto_map"] == {
        "AutoConfig": "configuration_acme_lm.AcmeLmConfig",
        "AutoModel": "modeling_acme_lm.AcmeLmModel",
        "AutoModelForCausalLM": "modeling_acme_lm.AcmeLmForCausalLM",
    }
    for key in (
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
        "tie_word_embeddings",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "hidden_size",
        "num_hidden_layers",
        "vocab_size",
    ):
        assert cfg.get(key) is not None, key
    assert cfg["rope_parameters"] == {"rope_type": "default", "rope_theta": 10000.0}
    assert cfg["head_dim"] == 64  # vLLM's CPU attention supports it


def test_checkpoint_keys_and_size(tiny_repo):
    with safe_open(tiny_repo / "model.safetensors", "pt") as f:
        keys = list(f.keys())
    assert all(k.startswith("model.") or k.startswith("lm_head.") for k in keys)
    assert "lm_head.weight" not in keys  # tied: stored once, as the engines expect
    assert (tiny_repo / "model.safetensors").stat().st_size < 5 * 2**20


def test_weights_are_deterministic_for_a_seed(tmp_path, tiny_repo):
    from tf_scaffold import commands

    again = commands.new({"name": "acme-lm"}, tmp_path / "same").path
    other = commands.new({"name": "acme-lm", "seed": 1}, tmp_path / "other").path
    assert (again / "model.safetensors").read_bytes() == (tiny_repo / "model.safetensors").read_bytes()
    assert (other / "model.safetensors").read_bytes() != (tiny_repo / "model.safetensors").read_bytes()
    assert (again / "tokenizer.json").read_bytes() == (tiny_repo / "tokenizer.json").read_bytes()


def test_ruff_clean(every_kind):
    """`ruff check` and `ruff format --check` inside the repo, under the `ruff.toml` it ships, find nothing (the
    Python code blocks of the model card included, which ruff formats too)."""
    repo = every_kind
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    assert "line-length = 119" in (repo / "ruff.toml").read_text()
    assert len(list(repo.rglob("*.py"))) >= 3
    check = subprocess.run([ruff, "check", "--no-cache", "."], capture_output=True, text=True, cwd=repo)
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run([ruff, "format", "--no-cache", "--check", "."], capture_output=True, text=True, cwd=repo)
    assert fmt.returncode == 0, fmt.stdout


def test_transformers_mlinter_clean(every_kind):
    """transformers-mlinter (the Hugging Face linter for model files) finds nothing with its default rules."""
    proc = subprocess.run(
        [sys.executable, "-m", "mlinter", "--no-progress", "--no-cache", str(every_kind)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "violation" not in proc.stdout


# The files of a repo people read and edit; the JSON files are written by transformers and tokenizers
# (`chat_template.jinja` is one line: its whitespace is part of the prompt).
TEXT_FILES = (".py", ".md", ".txt", ".toml", ".gitattributes")


def test_every_line_fits_in_119_columns(every_kind):
    """transformers' line length, in the code, the card, `tests/` and `ruff.toml` alike."""
    files = [p for p in every_kind.rglob("*") if p.is_file() and (p.suffix in TEXT_FILES or p.name in TEXT_FILES)]
    assert len(files) >= 6
    long = [
        f"{path.relative_to(every_kind)}:{no}: {len(line)} columns"
        for path in files
        for no, line in enumerate(path.read_text().splitlines(), 1)
        if len(line) > 119
    ]
    assert not long, "\n".join(long)


def test_prose_is_filled_to_119_columns(every_kind):
    """The docstrings and the model card hold names whose length depends on the answers: their paragraphs are filled
    for this repo's names (refilling them changes nothing), not wrapped once by hand for other ones."""
    from tf_scaffold.reflow import reflow_markdown, reflow_python

    ragged = []
    for path in sorted(every_kind.rglob("*")):
        text = path.read_text() if path.suffix in (".py", ".md") else None
        if text is not None and (reflow_python if path.suffix == ".py" else reflow_markdown)(text) != text:
            ragged.append(str(path.relative_to(every_kind)))
    assert not ragged, f"paragraphs not filled in {ragged}"


def test_no_comment_inside_parentheses(generated):
    """The formatter never had to wrap a statement around a comment (`x = (\n    True  # ...\n)`)."""
    import re

    for path in generated.glob("*.py"):
        assert not re.search(r"= \(\n\s+\S[^\n]*  # [^\n]*\n\s*\)", path.read_text()), path.name


def test_no_template_residue(generated):
    for path in generated.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".md", ".json"):
            text = path.read_text()
            for residue in ("{{", "{%", "cookiecutter"):
                if path.name in ("tokenizer_config.json", "chat_template.jinja"):
                    continue  # the chat template is Jinja by design
                assert residue not in text, f"{residue!r} left in {path.name}"


@pytest.mark.parametrize(
    "answers",
    [
        {"name": "acme-lm"},
        {"name": "acme-vl", "multimodal": True},
        {"name": "acme-moe", "moe": True},
        {"name": "acme-sw", "qk_norm": True, "attention_bias": True, "sliding_window": 16, "layer_types": "sliding"},
        {"name": "acme-encoder", "arch": "encoder", "pooling": "mean", "normalize": False},
        {"name": "acme-classifier", "arch": "encoder", "task": "classify", "type_vocab_size": 0},
    ],
    ids=["text", "vl", "moe", "window", "encoder", "classifier"],
)
def test_cookiecutter_renders_the_same_files(tmp_path, answers):
    """The template folder is a real cookiecutter template: cookiecutter itself renders what `render` renders
    (its post-generation hook removes the files of the other variant, which render empty)."""
    from cookiecutter.main import cookiecutter

    from tf_scaffold.render import context, format_python

    spec = build_spec(answers)
    ctx = context(spec)
    out = cookiecutter(str(template_dir()), no_input=True, extra_context=ctx, output_dir=str(tmp_path))
    produced = {p.relative_to(out).as_posix(): p.read_text() for p in Path(out).rglob("*") if p.is_file()}
    ours = render(spec)
    assert sorted(produced) == sorted(ours)
    produced = format_python(produced)
    for rel, text in ours.items():
        assert produced[rel] == text, rel


@pytest.mark.parametrize(
    "answers",
    [
        {"name": "doc-lm"},
        {"name": "doc-vl", "multimodal": True},
        {"name": "doc-moe", "moe": True},
        {"name": "doc-sw", "qk_norm": True, "attention_bias": True, "sliding_window": 16, "layer_types": "sliding"},
        {"name": "doc-encoder", "arch": "encoder", "task": "classify"},
    ],
    ids=["text", "vl", "moe", "window", "encoder"],
)
def test_auto_docstring_finds_every_argument_documented(tmp_path, answers, capfd):
    """transformers' `@auto_docstring` reads each forward's docstring when the module is imported and prints an
    [ERROR] line for an argument it cannot find documented (a line starting with "Return" ends its argument list)."""
    import transformers

    repo = commands.new(answers, tmp_path).path
    head = "AutoModelForImageTextToText" if answers.get("multimodal") else "AutoModelForCausalLM"
    if answers.get("arch") == "encoder":
        head = "AutoModelForSequenceClassification"
        transformers.AutoModel.from_pretrained(repo, trust_remote_code=True)
    getattr(transformers, head).from_pretrained(repo, trust_remote_code=True)
    out, err = capfd.readouterr()
    errors = [line for line in (out + err).splitlines() if "[ERROR]" in line]
    assert not errors, "\n".join(errors)


def _documented(repo: Path):
    """(qualified name, rendered docstring, hand-written prose) of every public class of the repo's Python files, as
    `trust_remote_code` loads them, and of their documented methods. The hand-written prose is the `custom_intro`
    given to `@auto_docstring`, else the class docstring up to its first argument, section or code block."""
    import ast
    import re

    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    def prose(text: str | None) -> str:
        text = re.split(r"\n\s*(?:\w+ \(`|```|Args:|Returns?:|Example)", text or "", maxsplit=1)[0]
        return " ".join(text.split())

    for path in sorted(repo.glob("*.py")):
        tree = ast.parse(path.read_text())
        public = next(
            (
                ast.literal_eval(n.value)
                for n in tree.body
                if isinstance(n, ast.Assign) and n.targets[0].id == "__all__"
            ),
            [],
        )
        for node in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in public):
            intro = next(
                (
                    kw.value.value
                    for dec in node.decorator_list
                    if isinstance(dec, ast.Call)
                    for kw in dec.keywords
                    if kw.arg == "custom_intro"
                ),
                ast.get_docstring(node),
            )
            cls = get_class_from_dynamic_module(f"{path.stem}.{node.name}", repo)
            yield node.name, cls.__doc__ or "", prose(intro)
            for name in ("__init__", "forward", "get_image_features", "__call__"):
                method = cls.__dict__.get(name)
                if method is not None and method.__doc__:
                    yield f"{node.name}.{name}", method.__doc__, ""


# What transformers' `@auto_docstring` writes where it cannot tell the model's name: it reads it from the file's path
# inside `transformers/models/`, and Hub code lives elsewhere.
NAMELESS = re.compile(
    r"\bNone (?:Model|Text Model|model|Vision)\b|\bof a None\b|\[`None`\]|"
    r"\b(?:image_processor_class|processor_class|tokenizer_class|model_name|config_class)\b|\{\w+\}"
)


def test_docs_read_right_when_loaded_with_trust_remote_code(every_kind):
    """`help()` on every public class (and its forward) of a repo loaded from the Hub: the model's own names and the
    hand-written intros, never the placeholders transformers fills in for its own models only."""
    seen, wrong = 0, []
    for name, doc, intro in _documented(every_kind):
        seen += 1
        for match in NAMELESS.finditer(doc):
            line = doc[: match.end()].splitlines()[-1].strip()
            wrong.append(f"{name}: {match.group(0)!r} in {line!r}")
        if intro and intro not in " ".join(doc.split()):
            wrong.append(f"{name}: the hand-written intro is not in __doc__: {intro[:80]!r}...")
    assert seen >= 5
    assert not wrong, "\n".join(wrong)


def test_generated_tests_derive_their_prompts_from_the_tokenizer(every_kind):
    """No list of token ids in the repo's tests: the prompts are text through the repo's own tokenizer."""
    import ast

    path = next((every_kind / "tests").glob("test_*.py"))
    tree = ast.parse(path.read_text())
    literals = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.List) and len(node.elts) >= 3 and all(isinstance(e, ast.Constant) for e in node.elts)
    ]
    assert not literals, f"token ids written out in {path.name}: {literals}"
    assert "AutoTokenizer.from_pretrained(" in path.read_text()


OWN_TESTS = {
    "text": "test_last_logits_depend_on_the_first_token",
    "sliding": "test_last_logits_depend_on_the_first_token",
    "multimodal": "test_image_features_fill_the_placeholders",
    "embed": "test_pooler_output_starts_the_classifier",
    "classify": "test_pooler_output_starts_the_classifier",
}


@pytest.mark.parametrize("kind", list(OWN_TESTS))
def test_the_repos_own_tests_pass(request, kind, tmp_path):
    """The tests written in the repo (an example of a model-specific test for each kind; the multimodal one puts an
    image through the model) pass, and the engine prompts are sequences of the repo's tokenizer."""
    from conftest import EVERY_KIND

    repo = tmp_path / kind
    shutil.copytree(request.getfixturevalue(EVERY_KIND[kind]), repo)
    env = {k: v for k, v in os.environ.items() if k != "HF_MODULES_CACHE"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", "-k", OWN_TESTS[kind]],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
    probe = (
        "import sys; sys.path.insert(0, 'tests'); import importlib; "
        f"m = importlib.import_module('{next((repo / 'tests').glob('test_*.py')).stem}'); "
        "cls = next(v for k, v in vars(m).items() if k.startswith('Test')); "
        "print(m.TOKENIZER.batch_decode(cls.prompts))"
    )
    decoded = subprocess.run([sys.executable, "-c", probe], cwd=repo, env=env, capture_output=True, text=True)
    assert decoded.returncode == 0, decoded.stderr[-2000:]
    assert any(word in decoded.stdout for word in ("Hello", "ncoders", "engines")), decoded.stdout


@pytest.mark.slow
def test_generated_tests_run_on_the_installed_harness(generated, tmp_path):
    """The repo's tests are a declaration: every harness test comes from the installed plugin, and without
    tf-scaffold they fail at once with the way to get it."""
    repo = tmp_path / generated.name
    shutil.copytree(generated, repo)
    env = {k: v for k, v in os.environ.items() if k != "HF_MODULES_CACHE"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", "-m", "not engine"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    passed = int(proc.stdout.split(" passed")[0].split()[-1])
    assert passed >= 12 and "failed" not in proc.stdout  # the inherited tests ran, not just the repo's own
    lines = sum(len(p.read_text().splitlines()) for p in (repo / "tests").rglob("*") if p.is_file())
    assert lines < 150, f"tests/ has {lines} lines: it should declare the repo, not vendor the harness"
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(BLOCK_SCAFFOLD)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:tf_scaffold", "tests"],
        cwd=repo,
        env={**env, "PYTHONPATH": str(block)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and "pip install -r tests/requirements.txt" in proc.stdout + proc.stderr


def test_cookiecutter_json_lists_every_slot():
    """`cookiecutter.json` documents exactly the slots `render` fills (its defaults are the default repo's)."""
    from tf_scaffold.render import context

    defaults = json.loads((template_dir() / "cookiecutter.json").read_text())
    assert defaults == json.loads(json.dumps(context(build_spec({"name": "acme-lm"}))))
