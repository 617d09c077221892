"""The minimap: shows every card, the visible area, and moves the view when clicked."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from engine.model.commands import AddNode, UndoStack
from engine.model.graph import Node
from engine.model.project import load_project
from presets import presets_dir


@pytest.fixture
def resnet_view(qtbot):
    from gui.canvas.scene import GraphScene
    from gui.canvas.view import GraphView

    project = load_project(presets_dir() / "resnet50.json")
    for block in project.graph.blocks.values():  # every card drawn: a tall graph
        block.collapsed = False
    stack = UndoStack(project)
    scene = GraphScene(project, stack)
    view = GraphView(scene)
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    qtbot.waitExposed(view)
    view.fit()
    return view, stack


def centre(view) -> QPointF:
    return view.mapToScene(view.viewport().rect().center())


def test_minimap_shows_every_card_and_sits_in_the_corner(resnet_view):
    view, _stack = resnet_view
    minimap = view.minimap
    assert minimap.isVisible()  # the model does not fit: the overview helps
    assert len(minimap.cards) == len(view.graph_scene().node_items())
    port = view.viewport().geometry()
    assert port.contains(minimap.geometry())
    assert minimap.geometry().bottom() > port.center().y()


def test_clicking_the_minimap_moves_the_view_there(resnet_view, qtbot):
    view, _stack = resnet_view
    minimap = view.minimap
    before = centre(view)
    target = QPoint(minimap.width() // 2, minimap.height() - 12)  # near the model's end
    qtbot.mouseClick(minimap, Qt.MouseButton.LeftButton, pos=target)
    after = centre(view)
    wanted = minimap.to_scene(QPointF(target))
    assert after.y() > before.y() + 5000  # from the input to the far end
    assert abs(after.y() - wanted.y()) < 200
    # the frame follows the view
    frame = minimap.to_minimap(minimap.visible_rect())
    assert abs(frame.center().y() - target.y()) < 4


def test_dragging_the_frame_pans(resnet_view, qtbot):
    view, _stack = resnet_view
    minimap = view.minimap
    frame = minimap.to_minimap(minimap.visible_rect())
    start = frame.center().toPoint()
    before = centre(view)
    qtbot.mousePress(minimap, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(minimap, start + QPoint(0, 60))
    qtbot.mouseRelease(minimap, Qt.MouseButton.LeftButton, pos=start + QPoint(0, 60))
    moved = centre(view).y() - before.y()
    expected = minimap.to_scene(QPointF(0, 60)).y() - minimap.to_scene(QPointF(0, 0)).y()
    assert abs(moved - expected) < 150


def test_minimap_follows_edits_and_hides_when_everything_fits(resnet_view, qtbot):
    view, stack = resnet_view
    minimap = view.minimap
    n = len(minimap.cards)
    stack.push(AddNode(Node("extra", "Dense", {"units": 3}, (3000.0, 0.0))))
    qtbot.waitUntil(lambda: len(minimap.cards) == n + 1, timeout=2000)
    view.set_zoom(0.08)
    view.centerOn(view.graph_scene().items_rect().center())
    small = load_project(presets_dir() / "mlp.json")
    view.graph_scene().set_project(small, UndoStack(small))
    view.fit()
    qtbot.waitUntil(lambda: len(minimap.cards) == len(small.graph.nodes), timeout=2000)
    assert not minimap.isVisible()
