"""Prose wrapping of the generated files: the model card's paragraphs and the Python docstrings, filled to 119 columns.

The templates hold prose with slots (class names, sizes, the Hub id) whose length depends on the answers, so no hand
wrapping fits every repo. After rendering, each paragraph is refilled greedily: every line as long as it can be
without passing the width, words never split. What is not prose stays as written: code blocks, doctests, tables,
headings, front matter, argument headers (`name (`type`):`) and section titles (`Returns:`).
"""

from __future__ import annotations

import ast
import re

WIDTH = 119

_LIST_ITEM = re.compile(r"^(\s*)([-*]|\d+\.) ")
_ARG_HEADER = re.compile(r"^\s*\**[\w.]+ \(.*\):$")  # `cache (`Cache`, *optional*):`, `**kwargs (...):`
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Raises|Example|Examples|Attributes):\s*$")


# A word that would change the meaning of a line it starts: a list marker, a heading, a quote, and the words that
# start a section for transformers' `@auto_docstring` (before 5.20 any line starting with "Return" ends the arguments).
_NOT_FIRST = re.compile(r"^([-*+>]|\d+[.)]|#+|Returns?\b.*|Example.*)$")


def _fill(words: list[str], first_prefix: str, prefix: str, width: int) -> list[str]:
    """Greedy fill: each line takes words while they fit. A word like `-` or `Returns` never starts a line: the word
    before it comes down with it."""
    lines: list[str] = []
    current, count = first_prefix, 0
    for word in words:
        if count and len(current) + 1 + len(word) > width:
            if _NOT_FIRST.match(word) and count > 1:
                head, moved = current.rsplit(" ", 1)
                lines.append(head)
                current, count = f"{prefix}{moved} {word}", 2
            else:
                lines.append(current)
                current, count = prefix + word, 1
        else:
            current, count = f"{current} {word}" if count else current + word, count + 1
    lines.append(current)
    return lines


def _code_spans_whole(words: list[str]) -> list[str]:
    """The words, with each `code span` that holds spaces joined into one word, so that no line break falls inside it
    (unchanged when a span does not close)."""
    out: list[str] = []
    for word in words:
        if out and out[-1].count("`") % 2:
            out[-1] += " " + word
        else:
            out.append(word)
    return words if out and out[-1].count("`") % 2 else out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def reflow_lines(lines: list[str], verbatim: list[bool], width: int = WIDTH, hang: int | None = None) -> list[str]:
    """Refill the paragraphs of `lines`. A paragraph is a run of prose lines with one indentation (a list item: its
    marker line and the lines under its text); `verbatim[i]` keeps line i, and ends the paragraph around it. With
    `hang`, the first line is the start of a docstring, after its quotes: its paragraph continues at `hang` columns."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if verbatim[i] or not line.strip() or _ARG_HEADER.match(line) or _SECTION.match(line):
            out.append(line)
            i += 1
            continue
        item = _LIST_ITEM.match(line)
        first_prefix = line[: _indent(line)]
        prefix = " " * len(item.group(0)) if item else first_prefix
        if i == 0 and hang is not None:
            prefix = " " * hang
        words = line.split()
        j = i + 1
        while j < len(lines):
            nxt = lines[j]
            if (
                verbatim[j]
                or not nxt.strip()
                or _indent(nxt) != len(prefix)
                or _LIST_ITEM.match(nxt)
                or _ARG_HEADER.match(nxt)
                or _SECTION.match(nxt)
            ):
                break
            words += nxt.split()
            line = nxt
            j += 1
        out += _fill(_code_spans_whole(words), first_prefix, prefix, width)
        i = j
    return out


def reflow_markdown(text: str, width: int = WIDTH) -> str:
    """A model card with its prose paragraphs refilled; front matter, fenced code, tables, headings and HTML stay."""
    lines = text.split("\n")
    verbatim, fence, front = [], False, text.startswith("---\n")
    for no, line in enumerate(lines):
        stripped = line.strip()
        if front:
            verbatim.append(True)
            front = not (no > 0 and stripped == "---")
            continue
        if stripped.startswith("```"):
            fence = not fence
            verbatim.append(True)
            continue
        verbatim.append(fence or stripped.startswith(("|", "#", "<", "!")) or line.endswith("  "))
    return "\n".join(reflow_lines(lines, verbatim, width))


def _prose_strings(tree: ast.AST):
    """The string constants that are prose: module, class and function docstrings, and the `custom_intro` given to
    `@auto_docstring`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                if isinstance(first.value.value, str):
                    yield first.value
        elif isinstance(node, ast.keyword) and node.arg == "custom_intro" and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                yield node.value


def _column(line: str, byte_offset: int) -> int:
    """ast's column (UTF-8 bytes) as a character index into `line`."""
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


def reflow_python(text: str, width: int = WIDTH) -> str:
    """Python source with the prose of its docstrings (and `custom_intro` strings) refilled; doctests, code blocks
    and one-line strings stay as written. Returns the text unchanged if it does not parse."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text
    lines = text.split("\n")
    # bottom up, so that the line numbers of the strings still to do stay valid
    for node in sorted(_prose_strings(tree), key=lambda n: n.lineno, reverse=True):
        start, end = node.lineno - 1, node.end_lineno - 1
        if start == end:
            continue
        first, last = lines[start], lines[end]
        col, end_col = _column(first, node.col_offset), _column(last, node.end_col_offset)
        opening = re.match(r'[rRbBuU]*"""', first[col:])
        if not opening or not last[:end_col].endswith('"""'):
            continue
        quote, head = first[: col + opening.end()], first[col + opening.end() :]
        closing, suffix = last[: end_col - 3], last[end_col:]  # suffix: what follows the string (`,` or `)`)
        body = [" " * len(quote) + head if head.strip() else "", *lines[start + 1 : end], closing]
        closing_alone = not closing.strip()  # the closing quotes on a line of their own
        if closing_alone:
            body = body[:-1]
        verbatim, fence = [], False
        for line in body:
            stripped = line.strip()
            if stripped.startswith("```"):
                fence = not fence
                verbatim.append(True)
                continue
            verbatim.append(fence or stripped.startswith((">>>", "...")))
        new = reflow_lines(body, verbatim, width, hang=_indent(first) if head.strip() else None)
        new[0] = quote + new[0][len(quote) :] if new[0].strip() else quote
        if closing_alone:
            new.append(closing + '"""' + suffix)
        elif len(new[-1]) + 3 + len(suffix) <= width:
            new[-1] += '"""' + suffix
        else:  # no room for the closing quotes: they go on a line of their own
            new.append(" " * _indent(first) + '"""' + suffix)
        lines[start : end + 1] = new
    return "\n".join(lines)
