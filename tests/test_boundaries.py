"""Architecture rules that must fail the build, not a review.

`make test` also runs the import contracts of pyproject.toml (`lint-imports`): the
engine's layers, no cycles between siblings, no GUI in the engine, no TensorFlow in
gui/. These tests add what the contracts cannot say: every module, walked through
every subpackage, imports without TensorFlow, and no module is part of an import
cycle, counting imports inside functions.
"""

import ast
import functools
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import grimp

import engine

ROOT = Path(__file__).resolve().parents[1]
QT_IMPORT = re.compile(r"^\s*(from|import)\s+(PySide6|pyqtgraph|shiboken6|qtpy|gui)\b", re.M)
TF_IMPORT = re.compile(r"^\s*(from|import)\s+(tensorflow|keras)\b", re.M)


def modules_of(package) -> list[str]:
    """Every module of a package, subpackages included."""
    found = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not info.name.endswith("__main__"):
            found.append(info.name)
    return found


def test_modules_of_walks_subpackages():
    names = modules_of(engine)
    assert "engine.model.graph" in names
    assert "engine.train.distributed.run" in names
    assert len(names) > 40


def test_engine_never_imports_qt_or_gui():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "engine").rglob("*.py")
        if QT_IMPORT.search(p.read_text(encoding="utf-8"))
        and p.relative_to(ROOT).as_posix() != "engine/cli/window.py"
    ]
    assert offenders == []


def test_gui_never_imports_tensorflow_or_keras_even_lazily():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "gui").rglob("*.py")
        if TF_IMPORT.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_importing_every_engine_module_loads_no_tensorflow_or_qt():
    names = modules_of(engine)
    code = (
        "import sys\n"
        + "".join(f"import {n}\n" for n in names)
        + "bad = sorted(m for m in ('tensorflow', 'keras', 'PySide6', 'pyqtgraph') "
        "if m in sys.modules)\nprint(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_opening_the_window_imports_no_tensorflow():
    code = (
        "import sys\nimport gui.app, gui.main_window\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def import_cycles(graph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(edges[node]):
                work.append((node, i + 1))
                nxt = edges[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return cycles


def test_import_cycles_finder_finds_a_planted_cycle():
    class Planted:
        imports = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

        def find_modules_directly_imported_by(self, m):
            return self.imports[m]

    assert import_cycles(Planted(), {"a", "b", "c", "d"}) == [["a", "b", "c"]]


def test_no_import_cycles_counting_imports_inside_functions():
    graph = grimp.build_graph("engine", "gui", include_external_packages=False)
    modules = {m for m in graph.modules if m.split(".")[0] in ("engine", "gui")}
    assert import_cycles(graph, modules) == []


@functools.cache  # one parse per module, not one per import of it
def top_level_names(path: Path) -> frozenset[str]:
    """Names a module defines itself (functions, classes, assignments), not ones it imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return frozenset(names)


def source_of(module: str) -> Path | None:
    for path in (ROOT / (module.replace(".", "/") + ".py"), ROOT / module.replace(".", "/")):
        if path.is_file():
            return path
        if (path / "__init__.py").is_file():
            return path / "__init__.py"
    return None


def python_files() -> list[Path]:
    return [
        p for d in ("engine", "gui", "tests", "bench", "presets") for p in (ROOT / d).rglob("*.py")
    ]


def test_every_import_names_the_module_that_defines_it():
    """No facades: ``from engine.x import name`` finds ``name`` defined in ``engine.x``."""
    offenders = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            if node.module.split(".")[0] not in ("engine", "gui", "presets"):
                continue
            source = source_of(node.module)
            defined = top_level_names(source) if source else set()
            for alias in node.names:
                if alias.name not in defined and not source_of(f"{node.module}.{alias.name}"):
                    where = path.relative_to(ROOT)
                    offenders.append(f"{where}:{node.lineno} {alias.name} from {node.module}")
    assert offenders == []


#: Imports that may sit inside functions: heavy or optional libraries, loaded when used.
LAZY_LIBRARIES = {
    "tensorflow",
    "keras",
    "h5py",
    "sklearn",
    "onnxruntime",
    "ai_edge_litert",
    "pyarrow",
    "optuna",  # engine/tune: ~1 s to import, only for a search
}
#: Declared exceptions: the launcher opens the window; the training tab's views pull in
#: pyqtgraph (~0.6 s), so the dock imports them when it is first shown.
LAZY_MODULES = {
    ("engine/cli/window.py", "gui.app"),
    ("gui/training/dock.py", "gui.training.data_panel"),
    ("gui/training/dock.py", "gui.training.evaluation_view"),
    ("gui/training/dock.py", "gui.training.experiments_view"),
    ("gui/training/dock.py", "gui.training.live_view"),
    ("gui/training/dock.py", "gui.training.inside_view"),
    ("gui/training/dock.py", "gui.training.training_panel"),
    ("gui/training/data_panel.py", "pyqtgraph"),  # made before the views, to check the data
}


def test_imports_sit_at_the_top_except_lazy_heavy_ones():
    offenders = []
    for path in [p for d in ("engine", "gui") for p in (ROOT / d).rglob("*.py")]:
        where = path.relative_to(ROOT).as_posix()
        for func in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    if module.split(".")[0] in LAZY_LIBRARIES or (where, module) in LAZY_MODULES:
                        continue
                    offenders.append(f"{where}:{node.lineno} {module}")
    assert offenders == []
