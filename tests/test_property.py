"""Property: any name and sizes either give a repo that loads and runs, or one error line with exit 2 and no files."""

import string

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from tf_scaffold.cli import app

runner = CliRunner()

valid_names = st.from_regex(r"\A[a-z][a-z0-9]{2,6}(-[a-z0-9]{1,3})?\Z")
names = st.one_of(
    valid_names,
    valid_names,
    valid_names,
    st.text(alphabet=string.ascii_letters + string.digits + "-_ ./\\{}%#", min_size=0, max_size=14),
    st.sampled_from(["llama", "mistral", "class", "acme-lm", "A", "x9", "def", "bert", "my.model", "{{x}}", "a--b"]),
)
small = st.one_of(st.integers(min_value=1, max_value=3), st.integers(min_value=-2, max_value=8))


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=names,
    num_heads=st.one_of(st.sampled_from([1, 2, 4]), st.integers(min_value=-1, max_value=4)),
    num_kv_heads=st.sampled_from([1, 1, 1, 2, 3, 0]),
    head_dim=st.sampled_from([None, None, None, 8, 16, 7, 0]),
    hidden_mult=st.integers(min_value=1, max_value=8),
    hidden_extra=st.sampled_from([0, 0, 0, 0, 0, 3]),
    num_layers=small,
    vocab_size=st.sampled_from([512, 512, 300, 512, 100]),
)
def test_new_either_loads_or_fails_cleanly(
    tmp_path_factory, name, num_heads, num_kv_heads, head_dim, hidden_mult, hidden_extra, num_layers, vocab_size
):
    out = tmp_path_factory.mktemp("prop")
    hidden = max(num_heads, 1) * 8 * hidden_mult + hidden_extra
    args = [
        "new",
        name,
        "-o",
        str(out),
        "--no-input",
        "--hidden-size",
        str(hidden),
        "--num-heads",
        str(num_heads),
        "--num-kv-heads",
        str(num_kv_heads),
        "--num-layers",
        str(num_layers),
        "--vocab-size",
        str(vocab_size),
        "--intermediate-size",
        "32",
    ]
    if head_dim is not None:
        args += ["--head-dim", str(head_dim)]
    result = runner.invoke(app, args, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    event(f"rejected: {result.output.split(':')[1].strip()[:40]}" if result.exit_code else "generated")
    if result.exit_code != 0:
        assert result.exit_code == 2
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), result.output
        assert list(out.iterdir()) == [], "a failed run left files behind"
        return
    repos = list(out.iterdir())
    assert len(repos) == 1
    model = AutoModelForCausalLM.from_pretrained(repos[0], trust_remote_code=True).eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[1, 5, 9, 3]])).logits
    assert logits.shape == (1, 4, vocab_size)
    assert torch.isfinite(logits).all()
