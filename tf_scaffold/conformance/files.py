"""Reading a repo as data: nothing here may crash, hang or leave the repo, whatever the files hold.

- Only regular files are opened (a FIFO or a device would block or never end), each through a path resolved inside the
  repo (an `auto_map` entry like `../../etc/passwd.X` is refused), each size-bounded.
- JSON is parsed and then checked for the shape the rules expect before anything reads it: the accessors below return
  the value or None and record what was wrong, never raise.
- Python sources are decoded by Python's own rules (a UTF-8 BOM, a PEP 263 `coding:` line) and parsed with `ast`,
  with the recursion and memory errors a pathological expression causes turned into findings. Files over
  `FULL_PARSE_BYTES` are parsed a class at a time, only the classes the rules need (a 5 MB modeling file is checked in
  well under a second).
"""

from __future__ import annotations

import ast
import io
import itertools
import json
import os
import re
import stat
import struct
import tokenize
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

MAX_JSON_BYTES = 16 * 2**20
MAX_SOURCE_BYTES = 64 * 2**20
MAX_SAFETENSORS_HEADER = 100 * 2**20
FULL_PARSE_BYTES = 1 * 2**20


def confined(root: Path, rel: str) -> Path | None:
    """`root/rel` if it stays inside the repo once symlinks are resolved, else None."""
    try:
        base = root.resolve()
        path = (base / rel).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return path if path == base or base in path.parents else None


def regular_file(path: Path) -> bool:
    """Whether `path` is a regular file (not a FIFO, socket, device or folder): the only kind ever opened."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def read_bytes(path: Path, limit: int) -> tuple[bytes | None, str | None]:
    """The file's bytes, or (None, why not)."""
    if not regular_file(path):
        return None, f"{path.name} is not a regular file"
    try:
        size = os.stat(path).st_size
        if size > limit:
            return None, f"{path.name} is {size / 2**20:.0f} MB, more than the {limit // 2**20} MB read"
        with open(path, "rb") as f:
            return f.read(limit + 1), None
    except OSError as err:
        return None, f"cannot read {path.name}: {err.strerror or err}"


def read_json(path: Path) -> tuple[object, str | None]:
    data, problem = read_bytes(path, MAX_JSON_BYTES)
    if data is None:
        return None, problem
    try:
        return json.loads(data), None
    except (ValueError, RecursionError) as err:
        return None, f"invalid JSON: {str(err)[:200]}"


# ---- JSON shapes ----------------------------------------------------------------------------------------------------


def as_dict(value) -> dict | None:
    return value if isinstance(value, dict) else None


def as_str(value) -> str | None:
    return value if isinstance(value, str) else None


def as_str_list(value) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def type_name(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def auto_map_target(value) -> str | None:
    """The `module.Class` an auto_map entry names: a string, or the first of a [slow, fast] tokenizer pair."""
    if isinstance(value, list) and value and isinstance(value[0], str):
        value = value[0]
    return value if isinstance(value, str) else None


def split_target(target: str) -> tuple[str, str] | None:
    """("module", "Class") of `[repo--]module.Class`, or None when it is not of that form."""
    target = target.split("--")[-1]
    if "." not in target:
        return None
    module, name = target.rsplit(".", 1)
    if not name.isidentifier() or not all(part.isidentifier() for part in module.split(".")):
        return None
    return module, name


# ---- Python sources --------------------------------------------------------------------------------------------------


def decode_source(data: bytes) -> str:
    """Text of a Python source by Python's own rules: BOM, PEP 263 coding line, else UTF-8 (errors replaced)."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except (SyntaxError, LookupError):
        encoding = "utf-8"
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        text = data.decode("utf-8", errors="replace")
    return text.removeprefix("\ufeff")


def parse(text: str, filename: str) -> tuple[ast.Module | None, str | None, int]:
    """(tree, problem, line): a syntax error, or an expression too deep for the parser, is a problem, not a crash."""
    try:
        return ast.parse(text, filename=filename), None, 0
    except SyntaxError as err:
        return None, f"syntax error: {err.msg}", err.lineno or 0
    except (RecursionError, MemoryError):
        return None, "an expression is nested too deeply for Python's parser", 0
    except ValueError as err:  # e.g. null bytes
        return None, f"cannot parse: {err}", 0


_CLASS_LINE = re.compile(r"^class\s+([A-Za-z_]\w*)", re.M)
_TOP_LEVEL = re.compile(r"^(?=[^\s#)\]}])", re.M)
_IMPORT_LINE = re.compile(r"^(?:from\s+\S+\s+import\s+|import\s+)", re.M)


@dataclass
class Source:
    """One Python module: of the repo, or of the installed transformers (read, never imported)."""

    name: str  # dotted module name: `modeling_acme` in a repo, `transformers.models.llama.modeling_llama` outside
    path: Path
    text: str
    in_repo: bool = True
    problem: str | None = None  # why it could not be parsed (the whole file)
    problem_line: int = 0
    _classes: dict[str, ast.ClassDef | None] = field(default_factory=dict)

    @cached_property
    def _tree(self) -> ast.Module | None:
        if len(self.text) > FULL_PARSE_BYTES:
            return None
        tree, problem, line = parse(self.text, str(self.path))
        if tree is None:
            self.problem, self.problem_line = problem, line
        return tree

    @property
    def large(self) -> bool:
        return len(self.text) > FULL_PARSE_BYTES

    def parsed(self) -> bool:
        """Whether the module parses (large files: whether its imports and classes parse, as they are read)."""
        return self._tree is not None if not self.large else self.problem is None

    @cached_property
    def class_lines(self) -> dict[str, int]:
        """{class name: line} of the top-level classes."""
        if self._tree is not None:
            return {n.name: n.lineno for n in self._tree.body if isinstance(n, ast.ClassDef)}
        if not self.large:
            return {}
        return {m.group(1): self.text.count("\n", 0, m.start()) + 1 for m in _CLASS_LINE.finditer(self.text)}

    def cls(self, name: str) -> ast.ClassDef | None:
        if self._tree is not None:
            return next((n for n in self._tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)
        if name not in self.class_lines:
            return None
        if name not in self._classes:
            self._classes[name] = self._parse_class(name)
        return self._classes[name]

    def _parse_class(self, name: str) -> ast.ClassDef | None:
        """Parse one class of a large file: from its `class` line (and decorators) to the next top-level line,
        widened to the following top-level lines while the segment does not parse (a string at column 0)."""
        match = re.search(rf"^class\s+{re.escape(name)}\b", self.text, re.M)
        start = match.start()
        first_line = self.text.count("\n", 0, start)
        # the next 20 top-level lines at most, not every one of a 5 MB file
        boundaries = [m.start() for m in itertools.islice(_TOP_LEVEL.finditer(self.text, match.end()), 20)]
        for attempt, end in enumerate([*boundaries, len(self.text)]):
            tree, problem, _ = parse("\n" * first_line + self.text[start:end], str(self.path))
            if tree is not None:
                node = next((n for n in tree.body if isinstance(n, ast.ClassDef)), None)
                if node is not None:
                    return node
            if attempt == 20:
                break
        self.problem = problem or f"cannot parse class {name}"
        self.problem_line = first_line + 1
        return None

    @cached_property
    def top_level(self) -> list[ast.stmt]:
        """Imports and module-level assignments (of a large file: its import statements only)."""
        if self._tree is not None:
            return [n for n in self._tree.body if not isinstance(n, ast.ClassDef | ast.FunctionDef)]
        if not self.large:
            return []
        statements: list[ast.stmt] = []
        for match in _IMPORT_LINE.finditer(self.text):
            end = self.text.find("\n", match.start())
            segment = self.text[match.start() : end if end >= 0 else len(self.text)]
            if "(" in segment and ")" not in segment:
                close = self.text.find(")", match.start())
                segment = self.text[match.start() : close + 1]
            tree, _, _ = parse(segment, str(self.path))
            if tree is not None:
                statements.extend(tree.body)
        return statements

    @cached_property
    def imports(self) -> dict[str, tuple[str, str | None, int]]:
        """{local name: (module, imported name or None for a module, relative level)}."""
        out: dict[str, tuple[str, str | None, int]] = {}
        for node in self.top_level:
            for inner in ast.walk(node) if isinstance(node, ast.If | ast.Try) else (node,):
                if isinstance(inner, ast.ImportFrom):
                    for alias in inner.names:
                        out[alias.asname or alias.name] = (inner.module or "", alias.name, inner.level)
                elif isinstance(inner, ast.Import):
                    for alias in inner.names:
                        out[alias.asname or alias.name.split(".")[0]] = (
                            alias.name if alias.asname else alias.name.split(".")[0],
                            None,
                            0,
                        )
        return out

    @cached_property
    def aliases(self) -> dict[str, str]:
        """Module-level `A = B` name aliases ({"A": "B"})."""
        out = {}
        for node in self.top_level:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        out[target.id] = node.value.id
        return out

    def nodes(self) -> list[ast.AST]:
        """Every node of the parsed file (of a large file: of the classes parsed so far)."""
        if self._tree is not None:
            return list(ast.walk(self._tree))
        return [n for cls in self._classes.values() if cls is not None for n in ast.walk(cls)]


def load_source(name: str, path: Path, in_repo: bool) -> Source:
    data, problem = read_bytes(path, MAX_SOURCE_BYTES)
    if data is None:
        return Source(name=name, path=path, text="", in_repo=in_repo, problem=problem)
    source = Source(name=name, path=path, text=decode_source(data), in_repo=in_repo)
    if not source.large:
        source.parsed()  # sets `problem` for a file that does not parse
    return source


# ---- safetensors ----------------------------------------------------------------------------------------------------


def safetensors_keys(root: Path) -> dict[str, list[str] | str]:
    """{file: tensor names, or why the header cannot be read} from the safetensors headers (8-byte length + JSON),
    without loading a tensor. Only regular files inside the repo are opened."""
    out: dict[str, list[str] | str] = {}
    try:
        candidates = sorted(root.glob("*.safetensors"))
    except OSError:
        return out
    for path in candidates:
        if confined(root, path.name) is None or not regular_file(path):
            out[path.name] = "not a regular file inside the repo"
            continue
        try:
            with open(path, "rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    raise ValueError("shorter than a safetensors header")
                (length,) = struct.unpack("<Q", head)
                if length > MAX_SAFETENSORS_HEADER:
                    raise ValueError(f"header of {length} bytes")
                header = json.loads(f.read(length))
        except (OSError, ValueError, RecursionError, struct.error) as err:
            out[path.name] = f"unreadable header: {str(err)[:120]}"
            continue
        if not isinstance(header, dict):
            out[path.name] = f"the header is {type_name(header)}, not an object of tensors"
            continue
        bad = [k for k, v in header.items() if k != "__metadata__" and not (isinstance(v, dict) and "dtype" in v)]
        if bad:
            out[path.name] = f"header entry {str(bad[0])[:60]!r} is not a tensor description"
            continue
        out[path.name] = [k for k in header if k != "__metadata__"]
    return out
