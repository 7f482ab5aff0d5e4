"""The package's architecture, checked: no import cycles (counting imports inside functions),
the engine imports nothing of the method or the applications, and nothing imports the apps."""

import ast
from pathlib import Path

import weightprint_fast

ROOT = Path(weightprint_fast.__file__).parent


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    p = ROOT.parent / dotted.replace(".", "/")
    return p.is_dir() or p.with_suffix(".py").exists() or p.with_suffix(".pyi").exists()


def _imports() -> dict[str, set[str]]:
    """Module -> the package modules it imports, anywhere in its body."""
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        name = _module(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        out = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    out.add(sub if _is_module(sub) else target)
    return {k: {m for m in v if m in graph or m.startswith("weightprint_fast")} for k, v in graph.items()}


def test_no_import_cycles_even_through_function_level_imports():
    graph = _imports()
    # The package __init__ re-exports everything; cycles through it are not architecture.
    graph = {k: {m for m in v if m != "weightprint_fast"} for k, v in graph.items()}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in graph.get(m, ()):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(n) :], n]))
            if n not in state:
                visit(n, [*stack, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_the_engine_imports_only_the_native_core():
    for name, deps in _imports().items():
        if name.startswith("weightprint_fast.engine"):
            outside = {
                d for d in deps if not d.startswith(("weightprint_fast.engine", "weightprint_fast._core"))
            }
            assert not outside, f"{name} imports {outside}"


def test_nothing_but_the_entry_points_imports_the_applications():
    for name, deps in _imports().items():
        if name.startswith("weightprint_fast.apps") or name in (
            "weightprint_fast",
            "weightprint_fast.__main__",
        ):
            continue
        assert not {d for d in deps if d.startswith("weightprint_fast.apps")}, name
