"""A small evaluator of `__init__` code: what a module's `self.<attr>`s hold and which submodules it builds for the
repo's config, as far as the source shows (UNKNOWN where it does not), and the base model's module tree built that
way. Enough to tell what `is_causal` each attention gets, or which branch of `if config.x:` builds the layers."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from tf_scaffold.conformance import astutil
from tf_scaffold.conformance.classes import ClassRef

if TYPE_CHECKING:
    from tf_scaffold.conformance.files import Repo

MAX_EVAL_DEPTH = 32
# The module tree of the base model, as its __init__s build it: how deep and how many modules are followed.
MAX_TREE_DEPTH, MAX_TREE_MODULES = 8, 400


class _Unknown:
    """A value the source does not show (a runtime argument, a computed expression)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(frozen=True, eq=False)
class Module:
    """One submodule of the base model as its __init__s build it: its path (`encoder.layer.*.attention.self`), its
    class, and the `self.<attr>` values its __init__ gives (UNKNOWN where the source does not show them)."""

    path: str
    ref: ClassRef
    attrs: dict

    def is_causal(self, repo: Repo):
        """What `module.is_causal` is for the engines: the __init__'s value, else the class attribute, else their
        default True (`getattr(module, "is_causal", True)`); UNKNOWN when the source does not show it."""
        if "is_causal" in self.attrs:
            return self.attrs["is_causal"]
        node, _ = repo.class_attr(self.ref, "is_causal")
        if node is None:
            return True
        value = astutil.literal(node)
        return value if isinstance(value, bool) else UNKNOWN


class Evaluation:
    """The evaluator, over the repo's config.json and its config class's defaults."""

    def constructed(self, owner: ClassRef, func: ast.AST, scope: dict | None = None) -> list[ClassRef]:
        """The classes a constructor call in `owner`'s __init__ may build: the class it names, or, for a local
        variable (`attention_class = A if cross else B; self.x = attention_class(...)`), the classes assigned to it,
        the branch chosen where `scope` (else the __init__'s defaults) decides the condition."""
        ref = self.resolve(owner.source, func)
        if ref is not None:
            return [ref]
        init = astutil.method(owner.node, "__init__")
        if not isinstance(func, ast.Name) or init is None:
            return []
        scope = self.defaults(init) if scope is None else scope
        out: list[ClassRef] = []
        for node in ast.walk(init):
            if any(isinstance(t, ast.Name) and t.id == func.id for t in astutil.assigned(node)):
                pending = [node.value]
                while pending:
                    value = pending.pop()
                    if isinstance(value, ast.IfExp):
                        test = self.evaluate(value.test, scope)
                        pending += (
                            [value.body, value.orelse] if test is UNKNOWN else [value.body if test else value.orelse]
                        )
                    elif (found := self.resolve(owner.source, value)) is not None and found not in out:
                        out.append(found)
        return out

    def config_value(self, key: str):
        """A field of the (text) config as the modeling code reads it: config.json's, else the default of the config
        class (its parents' too); UNKNOWN when neither says."""
        for section in (self.section("text_config"), self.config or {}):
            if key in section:
                return section[key]
        node, _ = self.class_attr(self.text_config_class, key)
        if isinstance(node, ast.Constant):
            return node.value
        for current in self.chain(self.text_config_class):  # an __init__ parameter's default (configs before v5)
            init = astutil.method(current.node, "__init__")
            if init is not None and key in (defaults := self.defaults(init)):
                return defaults[key]
        return UNKNOWN

    def evaluate(self, node: ast.AST | None, scope: dict, depth: int = 0):
        """The value of an expression of an __init__ where `scope` holds its arguments, locals and `self.<attr>`
        values, and `config.<field>` is read from the repo's config; UNKNOWN where the source does not tell."""
        if node is None or depth > MAX_EVAL_DEPTH:
            return UNKNOWN
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return scope.get(node.id, UNKNOWN)
        if isinstance(node, ast.Attribute):
            name = astutil.dotted(node)
            if name in scope:
                return scope[name]
            if name in (f"config.{node.attr}", f"self.config.{node.attr}"):
                return self.config_value(node.attr)
            return UNKNOWN
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            value = self.evaluate(node.operand, scope, depth + 1)
            return UNKNOWN if value is UNKNOWN else not value
        if isinstance(node, ast.BoolOp):
            values = [self.evaluate(v, scope, depth + 1) for v in node.values]
            is_and = isinstance(node.op, ast.And)
            if any(v is not UNKNOWN and bool(v) != is_and for v in values):
                return not is_and  # `x and False`, `x or True`: decided whatever x is
            return UNKNOWN if any(v is UNKNOWN for v in values) else is_and
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = (
                self.evaluate(node.left, scope, depth + 1),
                self.evaluate(node.comparators[0], scope, depth + 1),
            )
            ops = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Is: lambda a, b: a is b}
            ops[ast.IsNot] = lambda a, b: a is not b
            op = ops.get(type(node.ops[0]))
            if op is None or left is UNKNOWN or right is UNKNOWN:
                return UNKNOWN
            return op(left, right)
        if isinstance(node, ast.IfExp):
            test = self.evaluate(node.test, scope, depth + 1)
            if test is not UNKNOWN:
                return self.evaluate(node.body if test else node.orelse, scope, depth + 1)
            body, orelse = self.evaluate(node.body, scope, depth + 1), self.evaluate(node.orelse, scope, depth + 1)
            return body if body is not UNKNOWN and orelse is not UNKNOWN and body == orelse else UNKNOWN
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
            if len(node.args) in (2, 3) and astutil.dotted(node.args[0]) in ("config", "self.config"):
                key = node.args[1]
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    value = self.config_value(key.value)
                    if value is UNKNOWN and len(node.args) == 3:
                        return self.evaluate(node.args[2], scope, depth + 1)
                    return value
        return UNKNOWN

    def defaults(self, init: ast.FunctionDef) -> dict:
        """{parameter: default value} of a function (UNKNOWN for a parameter without one)."""
        args = init.args
        positional = [*args.posonlyargs, *args.args]
        out = {a.arg: UNKNOWN for a in [*positional, *args.kwonlyargs]}
        for arg, default in zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=False):
            out[arg.arg] = self.evaluate(default, {})
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=False):
            if default is not None:
                out[arg.arg] = self.evaluate(default, {})
        out.pop("self", None)
        return out

    def _bind(self, ref: ClassRef, call: ast.Call | None, env: dict) -> dict:
        """The arguments `ref.__init__` receives from `call`, evaluated where the call is made."""
        init, _ = self.method(ref, "__init__")
        if init is None:
            return {}
        scope = self.defaults(init)
        if call is None:
            return scope
        params = [a.arg for a in [*init.args.posonlyargs, *init.args.args]][1:]
        given: set[str] = set()
        for i, (name, arg) in enumerate(zip(params, call.args, strict=False)):
            if isinstance(arg, ast.Starred):  # `*args`: whatever it holds, from here on
                scope.update({p: UNKNOWN for p in params[i:]})
                break
            scope[name] = self.evaluate(arg, env)
            given.add(name)
        for keyword in call.keywords:
            if keyword.arg is not None:
                scope[keyword.arg] = self.evaluate(keyword.value, env)
                given.add(keyword.arg)
        if any(keyword.arg is None for keyword in call.keywords):  # `**kwargs` may hold any parameter not given
            scope.update({name: UNKNOWN for name in scope if name not in given})
        return scope

    def _run_init(self, ref: ClassRef, scope: dict) -> tuple[dict, list]:
        """Run the __init__s of a class and its parents (parents first) as far as the source shows: the values its
        `self.<attr>`s get, and the submodules it builds as (attr, class, the arguments they receive). An `if` the
        config decides runs one branch; one it does not decide runs both."""
        attrs: dict = {}
        built: list[tuple[str, ClassRef, dict]] = []
        for current in reversed(self.chain(ref)):
            init = astutil.method(current.node, "__init__")
            if init is None:
                continue
            env = {**self.defaults(init), **scope, **{f"self.{k}": v for k, v in attrs.items()}}
            self._run_block(current, init.body, env, attrs, built, 0)
        return attrs, built

    def _run_block(self, owner: ClassRef, body: list[ast.stmt], env: dict, attrs: dict, built: list, depth: int):
        if depth > MAX_EVAL_DEPTH:
            return
        for stmt in body:
            if isinstance(stmt, ast.If):
                test = self.evaluate(stmt.test, env)
                if test is UNKNOWN:
                    branches = []
                    for block in (stmt.body, stmt.orelse):
                        branch_env, branch_attrs = dict(env), dict(attrs)
                        self._run_block(owner, block, branch_env, branch_attrs, built, depth + 1)
                        branches.append((branch_env, branch_attrs))
                    for target, (a, b) in (
                        (env, (branches[0][0], branches[1][0])),
                        (attrs, (branches[0][1], branches[1][1])),
                    ):
                        for key in set(a) | set(b):
                            target[key] = a[key] if key in a and key in b and a[key] == b[key] else UNKNOWN
                else:
                    self._run_block(owner, stmt.body if test else stmt.orelse, env, attrs, built, depth + 1)
            elif isinstance(stmt, ast.For | ast.AsyncFor | ast.While | ast.With | ast.AsyncWith | ast.Try):
                if isinstance(stmt, ast.For | ast.AsyncFor):
                    for node in ast.walk(stmt.target):
                        if isinstance(node, ast.Name):
                            env[node.id] = UNKNOWN
                for block in ("body", "orelse", "finalbody"):
                    self._run_block(owner, getattr(stmt, block, []) or [], env, attrs, built, depth + 1)
                for handler in getattr(stmt, "handlers", []):
                    self._run_block(owner, handler.body, env, attrs, built, depth + 1)
            else:
                for target in astutil.assigned(stmt):
                    value = self.evaluate(stmt.value, env)
                    if isinstance(target, ast.Name):
                        env[target.id] = value
                    elif isinstance(target, ast.Tuple | ast.List):
                        env.update({n.id: UNKNOWN for n in ast.walk(target) if isinstance(n, ast.Name)})
                    elif astutil.dotted(target) == f"self.{getattr(target, 'attr', '')}":
                        attrs[target.attr] = env[f"self.{target.attr}"] = value
                        built += self._submodules(owner, target.attr, stmt.value, env)

    def _submodules(self, owner: ClassRef, attr: str, value: ast.AST, env: dict) -> list:
        """(attr, class, arguments) of what `self.<attr> = value` builds: a class, a branch of `a if c else b`, the
        elements of an nn.ModuleList (`attr.*`)."""
        pending, out = [value], []
        while pending:
            node = pending.pop()
            if isinstance(node, ast.IfExp):
                test = self.evaluate(node.test, env)
                pending += [node.body, node.orelse] if test is UNKNOWN else [node.body if test else node.orelse]
            elif isinstance(node, ast.Call) and astutil.call_name(node) in ("ModuleList", "Sequential", "ModuleDict"):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Call) and inner is not node:
                        out += [
                            (f"{attr}.*", ref, self._bind(ref, inner, env))
                            for ref in self.constructed(owner, inner.func, env)
                        ]
            elif isinstance(node, ast.Call):
                out += [(attr, ref, self._bind(ref, node, env)) for ref in self.constructed(owner, node.func, env)]
        return out

    @cached_property
    def modules(self) -> list[Module]:
        """The base model's module tree as its __init__s build it for this config, breadth first, each kind of
        submodule once per path (a ModuleList's elements are one `attr.*` path)."""
        if self.base_model is None:
            return []
        out: list[Module] = []
        queue = [("", self.base_model, self._bind(self.base_model, None, {}), 0)]
        while queue and len(out) < MAX_TREE_MODULES:
            path, ref, scope, depth = queue.pop(0)
            attrs, built = self._run_init(ref, scope)
            out.append(Module(path, ref, attrs))
            if depth < MAX_TREE_DEPTH:
                queue += [(f"{path}.{attr}" if path else attr, child, args, depth + 1) for attr, child, args in built]
        return out

    @cached_property
    def noncausal_modules(self) -> list[Module]:
        """The modules whose `is_causal` is False. One is enough: vLLM (`_get_attn_cls`) then gives every layer of a
        text-only model its encoder-only attention, SGLang (`_create_attention_instances`) its encoder attention."""
        return [m for m in self.modules if m.is_causal(self) is False]

    @cached_property
    def attention_modules(self) -> list[Module]:
        """The modules of the tree that call the attention interface: those the engines give their attention."""
        return [m for m in self.modules if self.dispatches(m.ref)]
