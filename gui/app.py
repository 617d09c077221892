"""Starting the application: the window (``main``) and offscreen screenshots.

Only Qt and the engine's pure-Python modules are imported here; TensorFlow is
loaded in the background after the window is shown (see
:mod:`gui.validation_controller`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication

from engine.catalog.table import CATALOG
from engine.model.project import Project, ProjectError, load_project
from gui import theme
from gui.canvas import clipboard
from gui.main_window import MainWindow


def _load(project_path: str | os.PathLike | None) -> Project | None:
    """The project at ``project_path`` (None for the default one).

    Raises:
        ProjectError: The file cannot be opened; the message names it.
    """
    return load_project(project_path) if project_path else None


def _application():
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("LayerLab")
        app.setOrganizationName("LayerLab")
        app.setApplicationDisplayName("LayerLab")
    return app


def main(project_path: str | os.PathLike | None = None) -> int:
    """Open the LayerLab window (on ``project_path`` if given) and run until it closes.

    Returns:
        The exit status: 0, or 2 when the project file cannot be opened.
    """
    try:
        project = _load(project_path)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = _application()
    theme.apply_theme(app)
    window = MainWindow(project, start_page=project is None)
    if project is not None:
        window._add_recent(Path(project_path))
    window.show()
    app.aboutToQuit.connect(clipboard.release)
    return int(app.exec())


def parse_size(size: str) -> tuple[int, int]:
    """``"1400x900"`` -> ``(1400, 900)``.

    Raises:
        ValueError: naming the text when it is not WIDTHxHEIGHT.
    """
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 1400x900; got '{size}'") from None
    if w < 200 or h < 150:
        raise ValueError(f"--size {size} is too small (at least 200x150)")
    return w, h


def screenshot(
    project_path: str | os.PathLike, out_png: str | os.PathLike, size: str = "1400x900"
) -> int:
    """Render the main window with ``project_path`` loaded to ``out_png``.

    Shapes are computed first (this waits for TensorFlow) and the graph is fitted
    in the view. Runs offscreen unless a Qt platform is already chosen.

    Returns:
        0 on success, 2 when the project cannot be opened or the size is wrong.
    """
    try:
        width, height = parse_size(size)
        project = load_project(project_path)
    except (ProjectError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = _application()
    theme.apply_theme(app)
    window = MainWindow(
        project, load_tensorflow=False, check_recovery=False, use_settings=False, autosave=False
    )
    window.resize(width, height)
    window.show()
    app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents)
    window.validation.load_tensorflow_now()
    if not window.validation.problems:
        window.show_summary()  # nothing to report: the layer table says more
    featured = _featured_node(project)
    if featured:
        window.scene.select_ids([featured])
    for _ in range(3):
        app.processEvents()
    window.view.fit(min_zoom=0.5)
    app.processEvents()
    image = window.grab()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out)):
        print(f"error: cannot write {out}", file=sys.stderr)
        return 2
    window.undo_stack.set_clean()
    window.close()
    return 0


def _featured_node(project: Project) -> str | None:
    """A layer worth showing in the inspector: the first with several parameters."""
    for node in project.graph.nodes.values():
        spec = CATALOG.get(node.type)
        if spec is not None and len(spec.params) >= 3 and node.type != "Input":
            return node.id
    return next(iter(project.graph.nodes), None)
