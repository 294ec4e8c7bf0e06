"""Small `ast` helpers shared by the rules. Iterative only (`ast.walk`): a deep tree never overflows the stack."""

from __future__ import annotations

import ast
import contextlib


def method(cls: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    return next(
        (n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name), None
    )


def assigned(node: ast.AST) -> list[ast.AST]:
    """Targets of an assignment that has a value (`x = v`, `x: T = v`); [] for anything else."""
    if isinstance(node, ast.Assign):
        return node.targets
    if isinstance(node, ast.AnnAssign) and node.value is not None:
        return [node.target]
    return []


def self_assignments(func: ast.FunctionDef | None) -> dict[str, ast.AST]:
    """{attr: value} for every `self.attr = value` in a function (first one wins)."""
    out: dict[str, ast.AST] = {}
    if func is None:
        return out
    for node in ast.walk(func):
        for target in assigned(node):
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                out.setdefault(target.attr, node.value)
    return out


def all_self_assignments(func: ast.FunctionDef | None) -> dict[str, list[ast.AST]]:
    """{attr: [values]} for every `self.attr = value` in a function, every branch's, `a if c else b` split in two."""
    out: dict[str, list[ast.AST]] = {}
    if func is None:
        return out
    for node in ast.walk(func):
        for target in assigned(node):
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                pending = [node.value]
                while pending:
                    value = pending.pop()
                    if isinstance(value, ast.IfExp):
                        pending += [value.body, value.orelse]
                    else:
                        out.setdefault(target.attr, []).append(value)
    return out


def class_assignments(cls: ast.ClassDef) -> dict[str, ast.AST]:
    """{name: value} of the class body's assignments (`x = v`, `x: T = v`)."""
    out: dict[str, ast.AST] = {}
    for node in cls.body:
        for target in assigned(node):
            if isinstance(target, ast.Name):
                out.setdefault(target.id, node.value)
    return out


def call_name(node: ast.AST) -> str | None:
    """`f` for `f(...)`, `nn.Linear` -> `Linear`; the last name of what is called or referenced."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def dotted(node: ast.AST) -> str | None:
    """`a.b.c` for an attribute chain of names, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def kwarg_name(func: ast.FunctionDef) -> str | None:
    return func.args.kwarg.arg if func.args.kwarg else None


def param_names(func: ast.FunctionDef) -> set[str]:
    args = func.args
    return {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}


def passes_kwargs(call: ast.Call, kwname: str) -> bool:
    return any(kw.arg is None and isinstance(kw.value, ast.Name) and kw.value.id == kwname for kw in call.keywords)


def self_call_target(call: ast.Call) -> str | None:
    """`x` for a call `self.x(...)` (a submodule or a method), else None."""
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
        return func.attr
    return None


def literal(node: ast.AST | None):
    if node is None:
        return None
    with contextlib.suppress(ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return ast.literal_eval(node)
    return None


def unparse(node: ast.AST | None) -> str:
    if node is None:
        return "nothing"
    try:
        text = ast.unparse(node)
    except (RecursionError, MemoryError, ValueError, AttributeError):
        return "<expression>"
    return text if len(text) < 80 else text[:77] + "..."
