"""Shared fixtures for GUI tests (pytest-qt, offscreen)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from engine.model.commands import UndoStack
from engine.model.graph import Edge, Node
from engine.model.project import Project


def make_project(
    nodes: list[tuple[str, str, dict, tuple[float, float]]], edges: list[tuple[str, str, int]]
) -> Project:
    """A project with the given ``(id, type, params, position)`` nodes and wires."""
    project = Project(name="test")
    for node_id, node_type, params, pos in nodes:
        project.graph.add_node(Node(node_id, node_type, dict(params), pos))
    for source, target, port in edges:
        project.graph.connect(Edge(source, target, port))
    return project


@pytest.fixture(autouse=True, scope="session")
def _release_clipboard_at_exit():
    """Qt crashes at interpreter exit while the clipboard owns our mime data."""
    yield
    from gui.canvas import clipboard

    clipboard.release()


@pytest.fixture
def small_project() -> Project:
    """input -> conv -> flatten -> dense, plus a spare Dense and an Add (unwired)."""
    return make_project(
        [
            ("input", "Input", {"shape": [8, 8, 1]}, (0, 0)),
            ("conv", "Conv2D", {"filters": 6, "kernel_size": 3}, (0, 120)),
            ("flatten", "Flatten", {}, (0, 240)),
            ("dense", "Dense", {"units": 10}, (0, 360)),
            ("spare", "Dense", {"units": 4}, (300, 240)),
            ("add", "Add", {}, (300, 360)),
        ],
        [("input", "conv", 0), ("conv", "flatten", 0), ("flatten", "dense", 0)],
    )


@pytest.fixture
def canvas(qtbot, small_project):
    """A shown ``GraphView`` on ``small_project``: ``(scene, view, undo_stack)``."""
    from gui.canvas.scene import GraphScene
    from gui.canvas.view import GraphView

    stack = UndoStack(small_project)
    scene = GraphScene(small_project, stack)
    view = GraphView(scene)
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    qtbot.waitExposed(view)
    view.fit()
    return scene, view, stack
