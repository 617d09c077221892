"""Blocks' rough edges in the window (issue 18): wires onto and from a collapsed card,
copy/paste of a collapsed block, "Save to My Blocks" off the UI thread, and
zoomed-out ids inside a block."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtTest import QTest

from engine.model.blocks import Block
from engine.model.commands import GroupBlock, UndoStack
from engine.model.graph import Edge
from gui.canvas.detail import ELLIPSIS, meaningful_id
from gui.canvas.scene import GraphScene
from gui.canvas.view import GraphView
from gui.palette import LayerPalette

from .conftest import make_project

LEFT, NO_MOD = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
RES = ["res_conv", "res_bn", "res_relu"]


def project():
    """img -> stem, then an unwired block res (conv -> bn -> relu), and a spare Dense."""
    nodes = [
        ("img", "Input", {"shape": [8, 8, 4]}, (0.0, 0.0)),
        ("stem", "Conv2D", {"filters": 4, "kernel_size": 1}, (0.0, 120.0)),
        ("res_conv", "Conv2D", {"filters": 4, "kernel_size": 3}, (400.0, 240.0)),
        ("res_bn", "BatchNormalization", {}, (400.0, 360.0)),
        ("res_relu", "ReLU", {}, (400.0, 480.0)),
        ("flat", "Flatten", {}, (0.0, 720.0)),
    ]
    edges = [("img", "stem", 0), ("res_conv", "res_bn", 0), ("res_bn", "res_relu", 0)]
    return make_project(nodes, edges)


@pytest.fixture
def board(qtbot):
    proj = project()
    stack = UndoStack(proj)
    scene = GraphScene(proj, stack)
    view = GraphView(scene)
    qtbot.addWidget(view)
    view.resize(1000, 800)
    view.show()
    qtbot.waitExposed(view)
    scene.push(GroupBlock(Block("res", "Residual", list(RES), collapsed=True)))
    view.centerOn(QPointF(200, 300))
    messages: list[str] = []
    scene.status_message.connect(messages.append)
    return scene, view, stack, messages


def vp(view, point: QPointF):
    return view.mapFromScene(point)


def drag(view, start: QPointF, end: QPointF, steps: int = 6) -> None:
    viewport = view.viewport()
    QTest.mousePress(viewport, LEFT, NO_MOD, vp(view, start))
    for i in range(1, steps + 1):
        QTest.mouseMove(viewport, vp(view, start + (end - start) * (i / steps)))
    QTest.mouseRelease(viewport, LEFT, NO_MOD, vp(view, end))


def test_a_wire_dropped_on_a_collapsed_card_enters_its_entry_layer(board):
    scene, view, stack, messages = board
    card = scene.blocks.cards["res"]
    drag(view, scene.node_item("stem").out_port.scenePos(), card.scenePos())
    graph = scene.project.graph
    assert Edge("stem", "res_conv", 0) in graph.edges
    assert "Connected 'stem' → 'res_conv'" in messages[-1]
    stack.undo()
    assert Edge("stem", "res_conv", 0) not in graph.edges


def test_a_collapsed_card_lights_up_as_a_wire_target_during_the_drag(board):
    scene, view, _stack, _messages = board
    card = scene.blocks.cards["res"]
    viewport = view.viewport()
    start = scene.node_item("stem").out_port.scenePos()
    QTest.mousePress(viewport, LEFT, NO_MOD, vp(view, start))
    QTest.mouseMove(viewport, vp(view, start + QPointF(60, 60)))
    assert card.state == "accept"  # its single entry would take the wire
    QTest.mouseMove(viewport, vp(view, card.scenePos()))
    assert card.state == "target"
    QTest.mouseMove(viewport, vp(view, start + QPointF(60, 60)))
    assert card.state == "accept"
    QTest.mouseRelease(viewport, LEFT, NO_MOD, vp(view, start + QPointF(60, 60)))
    assert card.state == ""  # the drag is over


def test_a_card_that_cannot_take_the_wire_does_not_light_up(board):
    scene, view, _stack, _messages = board
    scene.push(GroupBlock(Block("two", "Two", [*RES, "flat"])))  # two free entries
    scene.set_blocks_collapsed(["two"], True)
    card = scene.blocks.cards["two"]
    viewport = view.viewport()
    start = scene.node_item("stem").out_port.scenePos()
    QTest.mousePress(viewport, LEFT, NO_MOD, vp(view, start))
    QTest.mouseMove(viewport, vp(view, start + QPointF(60, 60)))
    assert card.state == ""
    QTest.mouseMove(viewport, vp(view, card.scenePos()))
    assert card.state == "refuse"
    QTest.mouseRelease(viewport, LEFT, NO_MOD, vp(view, start + QPointF(60, 60)))
    assert card.state == ""


def test_dragging_back_from_a_free_input_lights_up_a_card_whose_exit_could_feed_it(board):
    scene, view, _stack, _messages = board
    card = scene.blocks.cards["res"]
    viewport = view.viewport()
    start = scene.node_item("flat").in_ports[0].scenePos()
    QTest.mousePress(viewport, LEFT, NO_MOD, vp(view, start))
    QTest.mouseMove(viewport, vp(view, start + QPointF(60, -60)))
    assert card.state == "accept"
    QTest.mouseRelease(viewport, LEFT, NO_MOD, vp(view, start + QPointF(60, -60)))
    assert card.state == ""


def test_a_card_with_two_free_inputs_says_expand_to_choose(board):
    scene, view, _stack, messages = board
    graph = scene.project.graph
    scene.push(GroupBlock(Block("two", "Two", [*RES, "flat"])))  # flat: a 2nd entry
    scene.set_blocks_collapsed(["two"], True)
    card = scene.blocks.cards["two"]
    before = list(graph.edges)
    drag(view, scene.node_item("stem").out_port.scenePos(), card.scenePos())
    assert graph.edges == before
    assert messages[-1] == "Cannot connect: block 'two' has 2 inputs: expand it to choose"


def test_a_wire_dragged_from_a_collapsed_cards_output_leaves_its_exit(board):
    scene, view, _stack, messages = board
    card = scene.blocks.cards["res"]
    drag(view, card.output_pos(), scene.node_item("flat").scenePos())
    assert Edge("res_relu", "flat", 0) in scene.project.graph.edges
    assert "Connected 'res_relu' → 'flat'" in messages[-1]


def test_a_free_input_dragged_onto_a_collapsed_card_is_fed_by_its_exit(board):
    scene, view, _stack, _messages = board
    card = scene.blocks.cards["res"]
    drag(view, scene.node_item("flat").in_ports[0].scenePos(), card.scenePos())
    assert Edge("res_relu", "flat", 0) in scene.project.graph.edges


def test_copy_paste_of_a_collapsed_card_brings_the_block_and_nested_blocks(board):
    scene, _view, stack, messages = board
    graph = scene.project.graph
    scene.set_blocks_collapsed(["res"], False)
    scene.push(GroupBlock(Block("res_inner", "Inner", ["res_conv", "res_bn"])))
    scene.set_blocks_collapsed(["res"], True)
    scene.select_ids(RES)
    assert scene.selected_block_ids() == ["res"]
    scene.copy_selection()
    pasted = scene.paste()
    assert pasted == ["res_conv_1", "res_bn_1", "res_relu_1"]
    assert set(graph.blocks) == {"res", "res_inner", "res_1", "res_inner_1"}
    assert graph.blocks["res_1"].nodes == pasted and graph.blocks["res_1"].collapsed
    assert graph.blocks["res_inner_1"].nodes == ["res_conv_1", "res_bn_1"]
    assert Edge("res_conv_1", "res_bn_1", 0) in graph.edges
    assert scene.selected_block_ids() == ["res_1"]  # the new card, collapsed
    a, b = (graph.nodes[n].position for n in ("res_conv", "res_conv_1"))
    assert (b[0] - a[0], b[1] - a[1]) == (40, 40)
    assert "block 'res_1'" in messages[-1]
    stack.undo()  # one step
    assert set(graph.blocks) == {"res", "res_inner"} and "res_conv_1" not in graph.nodes
    QGuiApplication.clipboard().clear()


def test_a_block_copied_with_loose_layers_pastes_as_a_block_beside_them(board):
    scene, _view, stack, _messages = board
    graph = scene.project.graph
    scene.select_ids([*RES, "flat"])  # the collapsed card and a loose layer
    scene.copy_selection()
    pasted = scene.paste()
    assert pasted == ["res_conv_1", "res_bn_1", "res_relu_1", "flat_1"]
    assert set(graph.blocks) == {"res", "res_1"}
    assert graph.blocks["res_1"].nodes == pasted[:3] and graph.blocks["res_1"].collapsed
    assert "res_1" in scene.blocks.cards  # drawn as a card, like the original
    assert not any("flat_1" in b.nodes for b in graph.blocks.values())
    stack.undo()  # one step takes layers and block back
    assert set(graph.blocks) == {"res"} and "flat_1" not in graph.nodes
    stack.redo()
    assert graph.blocks["res_1"].nodes == pasted[:3]
    QGuiApplication.clipboard().clear()


def test_duplicate_of_a_collapsed_card_keeps_the_block(board):
    scene, *_ = board
    scene.select_ids(RES)
    assert scene.duplicate() == ["res_conv_1", "res_bn_1", "res_relu_1"]
    assert "res_1" in scene.project.graph.blocks


def test_save_to_my_blocks_writes_off_the_ui_thread_then_lists_it(qtbot, tmp_path, monkeypatch):
    import gui.palette as palette_module

    threads: list[str] = []
    real = palette_module.save_block

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(palette_module, "save_block", spy)
    palette = LayerPalette(blocks_folder=tmp_path / "blocks")
    qtbot.addWidget(palette)
    proj = project()
    proj.graph.add_block(Block("res", "Residual", list(RES)))
    messages: list[str] = []
    palette.message.connect(messages.append)
    palette.save_block(proj.graph, "res")
    proj.graph.blocks["res"].name = "changed after"  # the write uses a snapshot
    qtbot.waitUntil(lambda: palette.block_item("Residual") is not None, timeout=5000)
    assert threads and threads[0] != threading.main_thread().name
    assert (tmp_path / "blocks" / "Residual.json").is_file()
    assert messages and messages[0].startswith("Saved block 'res' to My blocks")


def test_a_failed_save_says_why_in_the_status_bar(qtbot, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    palette = LayerPalette(blocks_folder=blocker)
    qtbot.addWidget(palette)
    proj = project()
    proj.graph.add_block(Block("res", "Residual", list(RES)))
    messages: list[str] = []
    palette.message.connect(messages.append)
    palette.save_block(proj.graph, "res")
    qtbot.waitUntil(lambda: bool(messages), timeout=5000)
    assert messages[0].startswith("Cannot save the block:") and str(blocker) in messages[0]


def test_zoomed_out_ids_inside_a_block_drop_the_block_prefix():
    def fits(n):
        return lambda t: len(t) <= n

    name = "inception_3a_3x3_reduce"
    assert meaningful_id(name, fits(12)) == ELLIPSIS + "3x3_reduce"  # no block: as before
    assert meaningful_id(name, fits(12), "inception_3a") == "3x3_reduce"
    assert meaningful_id(name, fits(40), "inception_3a") == name  # room: the whole id
    assert meaningful_id(name, fits(8), "inception_3a") == ELLIPSIS + "reduce"
    assert meaningful_id("pool", fits(2), "inception_3a") == "p" + ELLIPSIS  # not its prefix


def test_zoomed_out_cards_know_their_block(board):
    scene, *_ = board
    scene.set_blocks_collapsed(["res"], False)
    assert scene.node_item("res_bn").owner_block == "res"
    assert scene.node_item("stem").owner_block is None
    from gui.canvas.detail import summary_layout
    from gui.canvas.items import font

    base = QFont(font("title"))
    name = "inception_3a_3x3_reduce"
    assert summary_layout(name, "", 0.3, base).id_text == ELLIPSIS + "reduce"  # lost middle
    assert summary_layout(name, "", 0.3, base, "inception_3a").id_text == "3x3_reduce"
