"""The package's architecture, checked: every module sits in one layer of CONTRIBUTING.md's
layering and imports only from layers below it (or its own package), counting imports inside
functions; no import cycles; nothing imports the apps."""

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


# CONTRIBUTING.md "Layout", bottom first: a module may import its own package and lower layers.
LAYERS = [
    ("weightprint_fast._core", "weightprint_fast._version"),
    ("weightprint_fast.errors",),
    ("weightprint_fast.engine",),
    (
        "weightprint_fast.arrays",
        "weightprint_fast.vectors",
        "weightprint_fast.architecture",
        "weightprint_fast.display",
    ),
    (
        "weightprint_fast.settings",
        "weightprint_fast.naming",
        "weightprint_fast.invariants",
        "weightprint_fast.probes",
        "weightprint_fast.sketches",
    ),
    ("weightprint_fast.readers",),
    ("weightprint_fast.fingerprint",),
    ("weightprint_fast.compare",),
    ("weightprint_fast.zoo",),
    ("weightprint_fast.apps",),
    ("weightprint_fast", "weightprint_fast.__main__"),
]


def _layer(module: str) -> tuple[int, str]:
    """(layer index, the layer entry it belongs to) of a module; the longest entry wins."""
    best = None
    for i, entries in enumerate(LAYERS):
        for e in entries:
            if (module == e or module.startswith(e + ".")) and (best is None or len(e) > len(best[1])):
                best = (i, e)
    assert best is not None, f"{module} is in no layer: place it in CONTRIBUTING.md and LAYERS"
    return best


def test_every_module_imports_only_its_own_package_and_lower_layers():
    graph = _imports()
    for name, deps in graph.items():
        layer, entry = _layer(name)
        for d in deps:
            dep_layer, dep_entry = _layer(d)
            assert dep_entry == entry or dep_layer < layer, (
                f"{name} (layer {layer}) imports {d} (layer {dep_layer})"
            )


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
