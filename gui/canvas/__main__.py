"""Open the canvas on its own for development: ``python -m gui.canvas [PROJECT.json]``.

Keys: Ctrl+Z / Ctrl+Shift+Z undo and redo, F fit, L auto layout, T light/dark.
Without a project it shows a small residual network.
"""

from __future__ import annotations

import sys

from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QMainWindow

from engine.model.commands import UndoStack
from engine.model.graph import Edge, Node
from engine.model.layout import layered_layout
from engine.model.project import Project, load_project
from gui.canvas.scene import GraphScene
from gui.canvas.view import GraphView


def demo_project() -> Project:
    """input -> conv -> bn -> conv -> add(+skip) -> pool -> flatten -> dense."""
    project = Project(name="Canvas preview")
    g = project.graph
    for node_id, node_type, params in [
        ("input", "Input", {"shape": [8, 8, 1]}),
        (
            "conv1",
            "Conv2D",
            {"filters": 16, "kernel_size": 3, "padding": "same", "activation": "relu"},
        ),
        ("bn", "BatchNormalization", {}),
        ("conv2", "Conv2D", {"filters": 16, "kernel_size": 3, "padding": "same"}),
        ("skip", "Conv2D", {"filters": 16, "kernel_size": 1}),
        ("add", "Add", {}),
        ("pool", "MaxPooling2D", {}),
        ("flatten", "Flatten", {}),
        ("dense", "Dense", {"units": 10, "activation": "softmax"}),
    ]:
        g.add_node(Node(node_id, node_type, params))
    for source, target, port in [
        ("input", "conv1", 0),
        ("conv1", "bn", 0),
        ("bn", "conv2", 0),
        ("input", "skip", 0),
        ("conv2", "add", 0),
        ("skip", "add", 1),
        ("add", "pool", 0),
        ("pool", "flatten", 0),
        ("flatten", "dense", 0),
    ]:
        g.connect(Edge(source, target, port))
    for node_id, pos in layered_layout(g).items():
        g.nodes[node_id].position = pos
    return project


def main(argv: list[str]) -> int:
    app = QApplication.instance() or QApplication(argv)
    project = load_project(argv[1]) if len(argv) > 1 else demo_project()
    stack = UndoStack(project)
    scene = GraphScene(project, stack)
    view = GraphView(scene)
    window = QMainWindow()
    window.setWindowTitle(f"Canvas preview — {project.name}")
    window.setCentralWidget(view)
    scene.status_message.connect(lambda text: window.statusBar().showMessage(text, 5000))
    dark = [False]

    def toggle_theme() -> None:
        dark[0] = not dark[0]
        scene.set_dark(dark[0])

    for keys, action in (
        (QKeySequence.StandardKey.Undo, stack.undo),
        (QKeySequence.StandardKey.Redo, stack.redo),
        ("F", view.fit),
        ("L", scene.auto_layout),
        ("T", toggle_theme),
    ):
        QShortcut(QKeySequence(keys), window, action)
    window.resize(1100, 800)
    window.show()
    view.fit(min_zoom=0.5)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
