"""The prose of the generated docstrings and model cards is filled to 119 columns, whatever the length of the names in
it; code, doctests, tables, argument headers and list structure stay as written."""

from tf_scaffold.reflow import reflow_markdown, reflow_python


def greedy(lines: list[str], width: int = 119) -> bool:
    """No line of a paragraph could have taken the first word of the next one."""
    return all(len(a) + 1 + len(b.split()[0]) > width for a, b in zip(lines, lines[1:], strict=False))


def test_a_ragged_paragraph_is_refilled_greedily():
    words = [f"word{i}" for i in range(60)]
    ragged = "\n".join([" ".join(words[:3]), " ".join(words[3:40]), " ".join(words[40:])]) + "\n"
    out = reflow_markdown(ragged).splitlines()
    assert " ".join(out).split() == words  # the same words in the same order
    assert all(len(line) <= 119 for line in out) and greedy(out)
    assert reflow_markdown(reflow_markdown(ragged)) == reflow_markdown(ragged)


def test_markdown_structure_stays():
    text = (
        "---\nlibrary_name: transformers\ntags:\n  - custom_code\n---\n\n# Title\n\n"
        "| a | b |\n|---|---|\n| " + "x " * 80 + "|\n\n"
        "```bash\n" + "echo " * 40 + "\n```\n\n"
        "Intro:\n- first item with a short line\n  that continues here\n- 1. second item\n"
    )
    out = reflow_markdown(text)
    assert out.startswith("---\nlibrary_name: transformers\ntags:\n  - custom_code\n---\n\n# Title\n")
    assert "| " + "x " * 80 + "|" in out and "echo " * 40 in out  # tables and code blocks are not prose
    assert "- first item with a short line that continues here\n- 1. second item\n" in out


def test_a_line_never_starts_with_a_list_marker():
    text = "word " * 22 + "- not a list item, a dash in the sentence " + "word " * 10 + "\n"
    out = reflow_markdown(text).splitlines()
    assert not any(line.startswith(("- ", "-\n")) for line in out[1:]), out


def test_docstrings_are_refilled_and_their_blocks_kept():
    source = '''"""Module: a summary
that was cut short.

- a list item whose text
  goes on here
"""


class A:
    r"""
    Short
    line, then more.

    name (`int`, *optional*, defaults to 3):
        Its description,
        cut short.

    ```python
    >>> a = A()   # kept as written
    ```
    """

    def f(self):
        """One line."""
'''
    out = reflow_python(source)
    compile(out, "x.py", "exec")
    assert out.startswith('"""Module: a summary that was cut short.\n\n- a list item whose text goes on here\n"""')
    assert "    Short line, then more.\n\n    name (`int`, *optional*, defaults to 3):\n" in out
    assert "        Its description, cut short.\n" in out
    assert "    >>> a = A()   # kept as written\n" in out and '"""One line."""' in out
    assert reflow_python(out) == out


def test_the_closing_quotes_move_down_when_the_last_line_is_full():
    source = '    """' + " ".join(["word"] * 40) + '"""\n'
    source = "def f():\n" + source.replace('"""w', '"""w', 1) + "    pass\n"
    source = source.replace(" word word word word word", "\n    word word word word word", 1)
    out = reflow_python(source)
    compile(out, "x.py", "exec")
    assert all(len(line) <= 119 for line in out.splitlines())


def test_a_code_span_is_never_broken():
    text = (
        "word " * 20 + "`[0, ..., config.num_labels - 1]` and `model(input_ids=..., position_ids=...)` " + "word " * 20
    )
    out = reflow_markdown(text.strip() + "\n")
    for span in ("`[0, ..., config.num_labels - 1]`", "`model(input_ids=..., position_ids=...)`"):
        assert any(span in line for line in out.splitlines()), out  # whole, on one line
