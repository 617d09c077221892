"""Architecture rules that must fail the build, not a review."""

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parents[1]
QT_IMPORT = re.compile(r"^\s*(from|import)\s+(PySide6|pyqtgraph|shiboken6|qtpy|gui)\b", re.M)


def test_engine_never_imports_qt_or_gui():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "engine").rglob("*.py")
        if QT_IMPORT.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_importing_every_engine_module_loads_no_tensorflow_or_qt():
    names = [f"engine.{m.name}" for m in pkgutil.iter_modules(engine.__path__)]
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
