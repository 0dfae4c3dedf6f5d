"""The package's structure: no import cycles, the core never imports an
integration, and one writer of the fitted state."""

import ast
import pathlib

import pytest

import skbn

PACKAGE = pathlib.Path(skbn.__file__).parent

#: The core: statistics, averaging, state, affine map, validation, estimator
#: (``skbn._interop``, the estimator's bridge methods, imports the bridges
#: lazily, inside those methods: see its own test).
CORE = {
    "skbn._stats",
    "skbn._blocks",
    "skbn._sparse",
    "skbn._averaging",
    "skbn._state",
    "skbn._affine",
    "skbn._array_api",
    "skbn._validation",
    "skbn._collections",
    "skbn._scaler",
    "skbn._input",
    "skbn._mapping",
}
#: Integrations: imported by the core only lazily, by name, through a seam.
INTEGRATIONS = {
    "skbn._dask",
    "skbn._torch",
    "skbn._keras",
    "skbn._flax",
    "skbn.onnx",
    "skbn.river",
    "skbn.spark",
    "skbn.cli",
    "skbn.io",
}


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list:
    """The skbn modules an ``from ... import ...`` names (relative or absolute)."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("skbn"):
        return []
    # "from . import _stats" names submodules; other names come from the module
    names = [f"{target}.{alias.name}" for alias in node.names]
    submodules = [n for n in names if n in MODULES]
    return submodules + ([target] if len(submodules) < len(names) else [])


def _in_type_checking(node, parents) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


# Python modules, and the compiled extension modules built from C sources
MODULES = {_module_name(p) for pattern in ("*.py", "*.c") for p in PACKAGE.rglob(pattern)}


def _skbn_imports() -> dict:
    """Module -> the skbn module names it imports anywhere (module level or
    inside functions), ``TYPE_CHECKING`` blocks aside, whether they exist or not."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    imports = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        parents = {
            child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)
        }
        targets = set()
        for node in ast.walk(tree):
            if _in_type_checking(node, parents):
                continue
            if isinstance(node, ast.ImportFrom):
                targets.update(_resolve(name, path.name == "__init__.py", node))
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("skbn"))
        imports[name] = targets
    return imports


def import_graph() -> dict:
    """Module -> the skbn modules it imports anywhere (module level or inside
    functions), ``TYPE_CHECKING`` blocks aside."""
    graph = {name: set() for name in MODULES}  # a compiled module imports nothing of skbn
    graph.update(
        (name, {t for t in targets if t in MODULES and t != name})
        for name, targets in _skbn_imports().items()
    )
    return graph


def test_every_import_of_skbn_names_a_module_that_exists():
    """A relative import inside a function runs only when it is called: one
    that a move left pointing nowhere (``from ._scaler`` in a subpackage)
    fails here, not in the user's hands."""
    broken = {name: sorted(targets - MODULES) for name, targets in _skbn_imports().items()}
    assert {name: t for name, t in broken.items() if t} == {}


def _cycles(graph: dict) -> list:
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_the_walker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_anywhere():
    assert _cycles(import_graph()) == []


def _integrations(modules: set) -> set:
    """The integrations among ``modules``, a module of an integration's
    package (``skbn.spark._fit``, ``skbn.io._engine``) counting as one."""
    return {m for m in modules if any(m == i or m.startswith(i + ".") for i in INTEGRATIONS)}


def test_a_module_of_an_integration_package_is_an_integration():
    assert _integrations({"skbn.spark._fit", "skbn.spark", "skbn._stats"}) == {
        "skbn.spark._fit",
        "skbn.spark",
    }


@pytest.mark.parametrize("module", sorted(CORE))
def test_the_core_never_imports_an_integration(module):
    graph = import_graph()
    assert module in graph, module
    assert not _integrations(graph[module]), (module, _integrations(graph[module]))


def test_interop_imports_its_bridges_only_inside_methods():
    tree = ast.parse((PACKAGE / "_interop.py").read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    named = {n.module for n in top if isinstance(n, ast.ImportFrom)}
    assert not {"_torch", "_keras", "_flax", "_dask"} & named


def test_bridges_never_import_the_estimator():
    graph = import_graph()
    for bridge in ("skbn._torch", "skbn._keras", "skbn._flax", "skbn._weights", "skbn._dask"):
        if bridge in graph:
            assert "skbn._scaler" not in graph[bridge], bridge
            assert "skbn._interop" not in graph[bridge], bridge


def test_one_writer_of_the_fitted_state():
    """Only ``_publish`` assigns the fitted attributes of the estimator."""
    source = (PACKAGE / "_scaler.py").read_text() + (PACKAGE / "_interop.py").read_text()
    tree = ast.parse(source)
    fitted = {"moving_mean_", "moving_var_", "gamma_", "beta_", "n_features_in_"}
    writers = set()
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef):
            continue
        for node in ast.walk(func):
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Attribute) and t.attr in fitted:
                        writers.add(func.name)
            if isinstance(node, ast.Attribute) and node.attr == "__dict__":
                parent_calls = [
                    n
                    for n in ast.walk(func)
                    if isinstance(n, ast.Call)
                    and isinstance(n.func, ast.Attribute)
                    and n.func.attr in ("update", "pop", "clear")
                    and isinstance(n.func.value, ast.Attribute)
                    and n.func.value.attr == "__dict__"
                ]
                if parent_calls:
                    writers.add(func.name)
    assert writers <= {"_publish", "__setstate__"}, writers


def test_each_averaging_mode_is_one_table_entry():
    from skbn import _averaging

    names = [_averaging.mode_of(m).name for m in (0.0, 0.9, None, "pooled")]
    assert names == ["last", "exponential", "cumulative", "pooled"]
    assert set(_averaging.MODES) == set(names)
    assert _averaging.KEYWORDS == {"pooled"}
