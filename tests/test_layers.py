"""The package's layers (docs/architecture.md): a module imports only from its own layer and the layers below it, and
the modules import each other without cycles. Every import counts, those inside functions too."""

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tf_scaffold"

# layer: (the top-level modules and subpackages of tf_scaffold it holds, the layers it may import from)
LAYERS = {
    "foundation": ({"__init__", "errors", "facts", "versions", "installed", "record", "fs"}, set()),
    "answers": ({"names", "spec", "variants"}, {"foundation"}),
    "generator": ({"render", "reflow", "write", "artifacts", "update", "commands"}, {"foundation", "answers"}),
    "checker": ({"conformance"}, {"foundation"}),
    "engines": ({"engines"}, {"foundation"}),
    "harness": ({"testing"}, {"foundation", "checker", "engines"}),
    "bench": ({"bench"}, {"foundation", "engines"}),
    "cli": ({"cli", "__main__"}, {"foundation", "answers", "generator", "checker", "engines", "harness", "bench"}),
}


def modules(package: Path) -> dict[str, Path]:
    """{dotted name: file} of every module of the package."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(module: str, path: Path) -> list[tuple[str, bool]]:
    """(imported name, whether the import runs when the module is imported) for every tf_scaffold import of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    at_import = {
        id(n) for stmt in tree.body if not isinstance(stmt, ast.FunctionDef | ast.ClassDef) for n in ast.walk(stmt)
    }
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join([*base, *([node.module] if node.module else [])])
            names = [source, *(f"{source}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out += [(name, id(node) in at_import) for name in names if name.split(".")[0] == "tf_scaffold"]
    return out


def layer_of(module: str) -> str:
    part = module.split(".")[1] if "." in module else "__init__"
    return next((layer for layer, (members, _) in LAYERS.items() if part in members), "?")


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module an imported name lives in (`tf_scaffold.a.b` for `from tf_scaffold.a.b import c`)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def violations(package: Path) -> list[str]:
    """Every import of a module from a layer its own may not import from."""
    known = modules(package)
    wrong = set()
    for module, path in known.items():
        layer = layer_of(module)
        allowed = LAYERS.get(layer, (set(), set()))[1] | {layer}
        for name, _ in imports(module, path):
            target = resolve(name, known)
            if target is not None and layer_of(target) not in allowed:
                wrong.add(f"{module} ({layer}) imports {target} ({layer_of(target)})")
    return sorted(wrong)


def cycles(package: Path) -> list[str]:
    """Every cycle of the imports that run when a module is imported."""
    known = modules(package)
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in known.items():
        for name, at_import in imports(module, path):
            target = resolve(name, known)
            # a package's own __init__ importing its submodules is how packages expose them, not a cycle
            if at_import and target is not None and target != module and not target.startswith(module + "."):
                graph[module].add(target)
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(known):
        if node not in state:
            visit(node, [node])
    return found


def test_every_module_belongs_to_a_layer():
    tops = {m.split(".")[1] if "." in m else "__init__" for m in modules(PACKAGE)}
    placed = set().union(*(members for members, _ in LAYERS.values()))
    assert tops <= placed, f"place these in a layer (docs/architecture.md and LAYERS here): {sorted(tops - placed)}"
    assert placed <= tops, f"LAYERS names modules that do not exist: {sorted(placed - tops)}"


def test_no_module_imports_a_higher_layer():
    wrong = violations(PACKAGE)
    assert not wrong, "\n".join(wrong)


def test_module_level_imports_have_no_cycles():
    found = cycles(PACKAGE)
    assert not found, "\n".join(found)


def test_a_checker_importing_the_generator_and_a_cycle_are_both_seen(tmp_path):
    fake = tmp_path / "tf_scaffold"
    (fake / "conformance").mkdir(parents=True)
    for rel, text in {
        "__init__.py": "",
        "render.py": "",
        "errors.py": "from tf_scaffold import facts\n",
        "facts.py": "from tf_scaffold.errors import ScaffoldError\n",
        "conformance/__init__.py": "",
        "conformance/x.py": "def f():\n    from tf_scaffold.render import render\n",
    }.items():
        (fake / rel).write_text(text)
    assert violations(fake) == ["tf_scaffold.conformance.x (checker) imports tf_scaffold.render (generator)"]
    assert cycles(fake) == ["tf_scaffold.errors -> tf_scaffold.facts -> tf_scaffold.errors"]
