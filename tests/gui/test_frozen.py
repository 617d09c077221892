"""Frozen layers in the window (issue 14): the inspector's Trainable box, the canvas's
freeze actions and lock, the summary's non-trainable counts."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from engine.model.commands import UndoStack
from engine.model.graph import Node
from gui.canvas.items import NodeItem
from gui.inspector.panel import Inspector
from gui.problems import SummaryTable
from tests.gui.conftest import make_project


def _chain():
    """input -> conv -> norm -> flatten -> dense, and a spare Dense beside it."""
    return make_project(
        [
            ("input", "Input", {"shape": [8, 8, 1]}, (0, 0)),
            ("conv", "Conv2D", {"filters": 4, "kernel_size": 3}, (0, 120)),
            ("norm", "BatchNormalization", {}, (0, 240)),
            ("flatten", "Flatten", {}, (0, 360)),
            ("dense", "Dense", {"units": 3}, (0, 480)),
            ("spare", "Dense", {"units": 2}, (300, 360)),
        ],
        [
            ("input", "conv", 0),
            ("conv", "norm", 0),
            ("norm", "flatten", 0),
            ("flatten", "dense", 0),
        ],
    )


def _inspector(qtbot, project):
    stack = UndoStack(project)
    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.set_project(project, stack)
    inspector.show()
    return inspector, stack


@pytest.fixture
def canvas_chain(qtbot):
    from gui.canvas.scene import GraphScene
    from gui.canvas.view import GraphView

    project = _chain()
    stack = UndoStack(project)
    scene = GraphScene(project, stack)
    view = GraphView(scene)
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    qtbot.waitExposed(view)
    view.fit()
    scene.view_for_test = view  # keep the view alive
    return scene, stack


def frozen(project) -> list[str]:
    return project.graph.frozen_ids()


def test_trainable_check_box_freezes_one_layer_in_one_undo_step(qtbot):
    project = _chain()
    inspector, stack = _inspector(qtbot, project)
    inspector.show_nodes(["dense"])
    box = inspector.trainable
    assert box.isVisible() and box.checkState() == Qt.CheckState.Checked
    box.click()
    assert frozen(project) == ["dense"]
    assert box.checkState() == Qt.CheckState.Unchecked
    assert stack.undo_text == "Freeze 'dense'"
    assert "training leaves its weights" in inspector.frozen_note.text()
    stack.undo()
    assert frozen(project) == [] and box.checkState() == Qt.CheckState.Checked
    assert not stack.can_undo
    inspector.show_nodes(["input"])
    assert not box.isVisible(), "an Input has no weights to freeze"


def test_frozen_batch_normalization_says_it_runs_in_inference_mode(qtbot):
    project = _chain()
    inspector, _stack = _inspector(qtbot, project)
    inspector.show_nodes(["norm"])
    assert not inspector.frozen_note.isVisible()
    inspector.trainable.click()
    assert frozen(project) == ["norm"]
    assert inspector.frozen_note.isVisible()
    assert "inference mode" in inspector.frozen_note.text()


def test_multi_selection_is_frozen_and_unfrozen_at_once(qtbot):
    project = _chain()
    inspector, stack = _inspector(qtbot, project)
    project.graph.set_trainable("dense", False)
    inspector.show_nodes(["dense", "spare"])  # one type: the form, a partly checked box
    box = inspector.trainable
    assert box.checkState() == Qt.CheckState.PartiallyChecked
    assert "1 of 2" in inspector.frozen_note.text()
    box.click()
    assert frozen(project) == [], "a partly checked box makes every selected layer trainable"
    assert box.checkState() == Qt.CheckState.Checked
    box.click()
    assert frozen(project) == ["dense", "spare"]
    assert stack.undo_text == "Freeze 2 layers"
    stack.undo()
    assert frozen(project) == []
    # Layers of different types: no form, but the box is there.
    inspector.show_nodes(["input", "conv", "norm", "spare"])
    mixed = inspector.mixed_trainable
    assert mixed.isVisible() and not inspector.trainable.isVisible()
    mixed.click()
    assert frozen(project) == ["conv", "norm", "spare"], "the Input is left alone"
    assert mixed.checkState() == Qt.CheckState.Unchecked
    stack.undo()
    assert frozen(project) == []


def test_freeze_up_to_here_freezes_the_layer_and_its_ancestors_in_one_step(canvas_chain):
    scene, stack = canvas_chain
    menu = scene.context_menu(scene.node_item("norm").scenePos())
    action = next(a for a in menu.actions() if a.text() == "Freeze from the Inputs Up to Here")
    action.trigger()
    assert frozen(stack.project) == ["conv", "norm"]
    assert stack.undo_text == "Freeze 2 layers up to 'norm'"
    assert scene.node_item("conv").frozen and scene.node_item("norm").frozen
    assert not scene.node_item("dense").frozen
    # The menu now offers Unfreeze for the frozen selection.
    menu = scene.context_menu(scene.node_item("norm").scenePos())
    texts = [a.text() for a in menu.actions() if a.text()]
    assert "Unfreeze" in texts and "Freeze" not in texts
    stack.undo()
    assert frozen(stack.project) == []
    assert not scene.node_item("conv").frozen
    scene.select_ids(["dense", "spare"])
    assert scene.set_trainable(["dense", "spare"], False)
    assert frozen(stack.project) == ["dense", "spare"] and stack.undo_text == "Freeze 2 layers"


def test_frozen_card_has_a_lock_and_muted_colours(canvas_chain, tmp_path):
    scene, stack = canvas_chain
    scene.freeze_up_to("conv")
    item: NodeItem = scene.node_item("conv")
    assert item.frozen and "Frozen" in item.toolTip()
    path = tmp_path / "frozen.png"
    views = scene.views()
    views[0].grab().save(str(path))
    assert path.stat().st_size > 0
    # The frozen card's fill differs from a trainable card's (muted).
    image = views[0].grab().toImage()
    for nid in ("conv", "dense"):
        pos = views[0].mapFromScene(scene.node_item(nid).scenePos())
        assert 0 <= pos.x() < image.width() and 0 <= pos.y() < image.height()
    conv = image.pixelColor(views[0].mapFromScene(scene.node_item("conv").scenePos()))
    dense = image.pixelColor(views[0].mapFromScene(scene.node_item("dense").scenePos()))
    assert conv != dense
    # Copy and paste keeps the freeze.
    scene.select_ids(["conv"])
    scene.copy_selection()
    (new,) = scene.paste()
    assert not stack.project.graph.nodes[new].trainable


def test_summary_table_shows_non_trainable_counts_and_frozen_rows(qtbot):
    table = SummaryTable()
    qtbot.addWidget(table)
    table.set_rows(
        [
            ("input", "Input", (None, 4), 0, 0, False),
            ("base", "Dense", (None, 8), 40, 40, True),
            ("head", "Dense", (None, 3), 27, 0, False),
        ]
    )
    table.set_totals(67, 27, 40)
    rows = table.rows()
    assert rows[1] == ["base", "Dense · frozen", "(None, 8)", "40", "40"]
    assert rows[2][4] == "0"
    assert "Non-trainable: 40" in table.totals.text()
    table.set_rows([("x", "Input", None, None)])  # the old four-column rows still work
    assert table.rows() == [["x", "Input", "—", "—", "—"]]


def test_pasted_node_copy_keeps_trainable():
    node = Node("a", "Dense", {"units": 2}, trainable=False)
    assert not node.copy().trainable
