"""No import circles in empathy_tf/, baselines/ and experiments/, and the layers' directions.

The graph is read from the sources with `ast` (nothing is imported): an edge A -> B for every
`import B` / `from B import x` in A, at the top level or inside a function (a lazy import defers
loading; it still makes A depend on B). `from P import m` names the module P.m when m is one.
Edges from a module to its own parent packages are left out: Python loads those first anyway.

    python -m tests.import_graph_test          # prints every circle, exit code 1 if any
    python -m pytest -q -n 0 tests/import_graph_test.py
"""

import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("empathy_tf", "baselines", "experiments")


def source_modules(root=ROOT, packages=PACKAGES):
    """{dotted module name: path} of every .py file under the packages."""
    out = {}
    for package in packages:
        for folder, _, files in os.walk(os.path.join(root, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    dotted = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                    out[dotted.removesuffix(".__init__")] = path
    return out


def imports_of(name, path, modules):
    """The modules of `modules` that the module `name` (file `path`) imports anywhere."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:   # relative: from .x import y
                parent = package
                for _ in range(node.level - 1):
                    parent = parent.rpartition(".")[0]
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    out.add(f"{base}.{alias.name}")
                elif base in modules:
                    out.add(base)
    # A module's own parent packages are loaded before it: never a circle.
    return {m for m in out if m != name and not name.startswith(m + ".")}


def import_graph(root=ROOT, packages=PACKAGES):
    modules = source_modules(root, packages)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_cycles_finds_a_circle_through_a_lazy_import(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from pkg.c import x\n")
    (package / "c.py").write_text("import pkg.a\nx = 1\n")
    (package / "d.py").write_text("import pkg\nfrom pkg import a\n")
    graph = import_graph(str(tmp_path), ("pkg",))
    assert graph["pkg.d"] == {"pkg.a"}          # its own package left out
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_library_imports_neither_baselines_nor_the_application():
    graph = import_graph()
    for name, imported in graph.items():
        if name.startswith("empathy_tf"):
            assert not {m for m in imported if m.startswith("baselines")}, name
            # The Python API runs the registry's experiments (imported inside its functions).
            if name != "empathy_tf.api":
                assert not {m for m in imported if m.startswith("experiments")}, name


if __name__ == "__main__":
    found = cycles(import_graph())
    for component in found:
        print("import circle: " + " <-> ".join(component))
    print(f"{len(found)} import circle(s) in {', '.join(PACKAGES)}")
    sys.exit(1 if found else 0)
