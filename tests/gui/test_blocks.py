"""Blocks in the window (issue 18): group, collapse/expand, nest, rename, find and fit."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QKeySequence

from engine.model.blocks import Block
from engine.model.commands import GroupBlock, UndoStack
from gui.canvas.block_items import BlockCard, BlockFrame
from gui.canvas.blocks import Fold, default_block_id
from gui.canvas.scene import GraphScene
from gui.canvas.view import GraphView

from .conftest import make_project

SPACING = 120.0


def resnet_like():
    """stem -> two residual blocks (conv, bn, add with a skip) -> head, in one column."""
    nodes = [
        ("img", "Input", {"shape": [8, 8, 4]}),
        ("stem", "Conv2D", {"filters": 4, "kernel_size": 1}),
    ]
    edges = [("img", "stem", 0)]
    prev = "stem"
    for b in (1, 2):
        p = f"conv2_block{b}"
        nodes += [
            (f"{p}_1_conv", "Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same"}),
            (f"{p}_1_bn", "BatchNormalization", {}),
            (f"{p}_add", "Add", {}),
        ]
        edges += [
            (prev, f"{p}_1_conv", 0),
            (f"{p}_1_conv", f"{p}_1_bn", 0),
            (f"{p}_1_bn", f"{p}_add", 0),
            (prev, f"{p}_add", 1),
        ]
        prev = f"{p}_add"
    nodes += [("pool", "GlobalAveragePooling2D", {}), ("out", "Dense", {"units": 3})]
    edges += [(prev, "pool", 0), ("pool", "out", 0)]
    return make_project([(n, t, p, (0.0, SPACING * i)) for i, (n, t, p) in enumerate(nodes)], edges)


BLOCK1 = ["conv2_block1_1_conv", "conv2_block1_1_bn", "conv2_block1_add"]
BLOCK2 = ["conv2_block2_1_conv", "conv2_block2_1_bn", "conv2_block2_add"]


@pytest.fixture
def canvas(qtbot):
    project = resnet_like()
    stack = UndoStack(project)
    scene = GraphScene(project, stack)
    view = GraphView(scene)
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    qtbot.waitExposed(view)
    messages: list[str] = []
    scene.status_message.connect(messages.append)
    return scene, view, stack, messages


def card_rect(scene, node_id):
    return scene.node_item(node_id).mapRectToScene(-98, -35, 196, 70)


def test_default_block_id_is_the_common_prefix_else_block_n():
    graph = resnet_like().graph
    assert default_block_id(graph, BLOCK1) == "conv2_block1"
    assert default_block_id(graph, BLOCK1 + BLOCK2) == "conv2"
    assert default_block_id(graph, ["img", "stem"]) == "block_1"
    graph.add_block(Block("conv2_block1", "x", BLOCK1))
    assert default_block_id(graph, BLOCK1) == "conv2_block1_1"  # never a taken name


def test_fold_maps_collapsed_spans_to_one_row_and_back():
    fold = Fold.of([(240.0, 480.0), (600.0, 840.0)])
    assert [fold.y(y) for y in (0, 240, 360, 480, 600, 840, 960)] == [
        0,
        240,
        240,
        240,
        360,
        360,
        480,
    ]
    for y in (0.0, 240.0, 600.0, 960.0, 500.0):
        assert fold.model_y(fold.y(y)) == (y if y not in (480.0,) else 240.0)


def test_ctrl_g_groups_the_selection_and_undo_ungroups(canvas):
    scene, _view, stack, _messages = canvas
    scene.select_ids(BLOCK1)
    assert scene.group_selection() == "conv2_block1"
    graph = scene.project.graph
    assert graph.blocks["conv2_block1"].nodes == BLOCK1
    frame = scene.blocks.frames["conv2_block1"]
    assert isinstance(frame, BlockFrame)
    for n in BLOCK1:  # the frame is drawn around (behind) its layers
        assert frame.rect.contains(card_rect(scene, n))
        assert frame.zValue() < scene.node_item(n).zValue()
    assert not frame.rect.intersects(card_rect(scene, "stem"))
    stack.undo()
    assert not graph.blocks and not scene.blocks.frames
    stack.redo()
    assert "conv2_block1" in scene.blocks.frames
    scene.select_ids(["conv2_block1_1_bn"])
    assert scene.ungroup()  # the smallest block holding the selection
    assert not graph.blocks and not scene.blocks.frames
    stack.undo()
    assert "conv2_block1" in graph.blocks


def test_a_grouping_that_cuts_across_a_block_is_refused_in_the_status_bar(canvas):
    scene, _view, stack, messages = canvas
    scene.select_ids(BLOCK1)
    scene.group_selection()
    scene.select_ids(["stem", "conv2_block1_1_conv"])
    assert scene.group_selection() is None
    assert "cut across block 'conv2_block1'" in messages[-1]
    assert list(scene.project.graph.blocks) == ["conv2_block1"]


def collapse_setup(scene):
    scene.push(GroupBlock(Block("conv2_block1", "Block 1", BLOCK1)))
    scene.push(GroupBlock(Block("conv2_block2", "Block 2", BLOCK2)))
    scene.push(GroupBlock(Block("conv2", "Stage 2", BLOCK1 + BLOCK2)))


def test_nested_frames_sit_inside_their_parents(canvas):
    scene, *_ = canvas
    collapse_setup(scene)
    frames = scene.blocks.frames
    assert set(frames) == {"conv2", "conv2_block1", "conv2_block2"}
    assert frames["conv2"].rect.contains(frames["conv2_block1"].rect)
    assert frames["conv2"].rect.contains(frames["conv2_block2"].rect)
    assert frames["conv2_block1"].zValue() > frames["conv2"].zValue()
    assert not frames["conv2_block1"].rect.intersects(frames["conv2_block2"].rect)


def test_collapse_shows_one_card_with_wires_on_it_and_expand_restores(canvas, qtbot):
    scene, _view, stack, _messages = canvas
    collapse_setup(scene)
    before = {n: tuple(scene.node_item(n).pos().toTuple()) for n in scene.project.graph.nodes}
    scene.set_analysis(
        {
            "conv2_block1_1_conv": {"output_shape": (None, 8, 8, 4), "params": 148},
            "conv2_block1_1_bn": {"output_shape": (None, 8, 8, 4), "params": 16},
            "conv2_block1_add": {"output_shape": (None, 8, 8, 4), "params": 0},
        },
        [],
    )
    assert scene.set_blocks_collapsed(["conv2_block1"], True)
    card = scene.blocks.cards["conv2_block1"]
    assert isinstance(card, BlockCard) and card.isVisible()
    assert (card.name, card.layers, card.inputs, card.outputs) == ("Block 1", 3, 1, 1)
    assert card.shape_text == "8×8×4" and card.params == 164
    for n in BLOCK1:
        assert not scene.node_item(n).isVisible()
    edges = {(e.edge.source, e.edge.target): e for e in scene.edge_items()}
    inside = edges[("conv2_block1_1_conv", "conv2_block1_1_bn")]
    assert not inside.isVisible()
    entering = edges[("stem", "conv2_block1_1_conv")]
    skip = edges[("stem", "conv2_block1_add")]
    leaving = edges[("conv2_block1_add", "conv2_block2_1_conv")]
    assert entering.target is card and skip.target is card and leaving.source is card
    assert entering.path().pointAtPercent(1.0) == card.input_pos()
    # the rows below are drawn higher; the model positions are unchanged
    graph = scene.project.graph
    assert graph.nodes["out"].position == (0.0, SPACING * 9)
    assert scene.node_item("out").y() == SPACING * 9 - 2 * SPACING
    assert card.y() == SPACING * 2
    # the stage frame now holds the card
    assert scene.blocks.frames["conv2"].rect.contains(card.mapRectToScene(-98, -35, 196, 70))
    stack.undo()  # one undo step expands it again
    assert not scene.blocks.cards and all(scene.node_item(n).isVisible() for n in BLOCK1)
    assert entering.target is scene.node_item("conv2_block1_1_conv")
    assert {n: tuple(scene.node_item(n).pos().toTuple()) for n in graph.nodes} == before


def test_card_toggle_and_double_click(canvas, qtbot):
    scene, view, stack, _messages = canvas
    collapse_setup(scene)
    frame = scene.blocks.frames["conv2_block1"]
    view.centerOn(frame.rect.center())
    toggle = view.mapFromScene(frame.toggle_rect().center())
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=toggle)
    assert scene.project.graph.blocks["conv2_block1"].collapsed
    card = scene.blocks.cards["conv2_block1"]
    view.centerOn(card)
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(card.pos()))
    assert not scene.project.graph.blocks["conv2_block1"].collapsed
    assert not scene.blocks.cards


def test_rename_by_double_clicking_the_title(canvas, qtbot, monkeypatch):
    scene, view, stack, _messages = canvas
    collapse_setup(scene)
    monkeypatch.setattr(
        "gui.canvas.scene.QInputDialog.getText", lambda *a, **k: ("First residual", True)
    )
    frame = scene.blocks.frames["conv2_block1"]
    view.centerOn(frame.rect.center())
    title = frame.title_rect()
    pos = view.mapFromScene(QPointF(title.center().x(), title.center().y()))
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert scene.project.graph.blocks["conv2_block1"].name == "First residual"
    assert frame.name == "First residual"
    stack.undo()
    assert frame.name == "Block 1"


def test_collapsed_outer_block_hides_inner_blocks_and_counts_their_wires(canvas):
    scene, view, stack, _messages = canvas
    collapse_setup(scene)
    scene.set_blocks_collapsed(["conv2_block1"], True)
    scene.set_blocks_collapsed(["conv2"], True)
    assert list(scene.blocks.cards) == ["conv2"]
    assert not scene.blocks.frames
    card = scene.blocks.cards["conv2"]
    assert (card.layers, card.inputs, card.outputs) == (6, 1, 1)
    assert scene.node_item("pool").y() == SPACING * 3  # img, stem, the stage, pool
    assert scene.node_item("pool").isVisible()
    # fit and the minimap see the card, not the hidden layers
    rect = scene.items_rect()
    assert rect.bottom() < SPACING * 6
    view.fit()
    scene.blocks.refresh()
    view.minimap.refresh()
    assert len(view.minimap.cards) == 5  # img, stem, card, pool, out
    # selecting the card selects the block's layers; Delete would take them all
    scene.select_ids(["conv2_block2_add"])
    assert card.isSelected()
    assert scene.selected_ids() == BLOCK1 + BLOCK2
    assert scene.block_for_selection() == "conv2"


def test_find_inside_a_collapsed_block_selects_its_card(canvas, qtbot):
    scene, view, stack, messages = canvas
    collapse_setup(scene)
    scene.set_blocks_collapsed(["conv2"], True)
    card = scene.blocks.cards["conv2"]
    view.open_find()
    view.find_bar.set_query("bn")
    assert view.find_bar.count_text() == "1 of 2"
    assert card.isSelected()
    assert "inside collapsed block 'conv2'" in messages[-1]
    assert len(view.find_bar.highlight._rects) == 1  # one ring on the card
    centre = view.mapToScene(view.viewport().rect().center())
    assert abs(centre.y() - card.y()) < 30
    assert scene.project.graph.blocks["conv2"].collapsed  # finding changes nothing


def test_dragging_a_card_below_a_collapsed_block_writes_model_positions(canvas, qtbot):
    scene, view, stack, _messages = canvas
    collapse_setup(scene)
    scene.set_blocks_collapsed(["conv2"], True)
    item = scene.node_item("out")
    item.setPos(item.x() + 50, item.y() + 10)
    from gui.canvas.interactions import NodeDrag

    NodeDrag(scene).release()
    assert scene.project.graph.nodes["out"].position == (50.0, SPACING * 9 + 10)
    assert scene.project.graph.nodes["pool"].position == (0.0, SPACING * 8)  # untouched


def test_window_group_ungroup_keys_and_menus(qtbot, monkeypatch):
    from gui.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")
    w = MainWindow(
        resnet_like(),
        load_tensorflow=False,
        check_recovery=False,
        use_settings=False,
        autosave=False,
    )
    qtbot.addWidget(w)
    assert w.act_group.shortcut() == QKeySequence("Ctrl+G")
    assert w.act_ungroup.shortcut() == QKeySequence("Ctrl+Shift+G")
    w.scene.select_ids(BLOCK2)
    w.act_group.trigger()
    assert "conv2_block2" in w.project.graph.blocks
    menu = w.scene.context_menu(w.scene.node_item(BLOCK2[0]).pos())
    texts = [a.text() for a in menu.actions()]
    assert "Group as Block\tCtrl+G" in texts
    assert any(t.startswith("Collapse Block 'conv2_block2'") for t in texts)
    frame = w.scene.blocks.frames["conv2_block2"]
    menu = w.scene.context_menu(frame.title_rect().center())
    texts = [a.text() for a in menu.actions()]
    assert "Collapse Block" in texts and "Ungroup" in texts and "Rename Block…" in texts
    w.act_ungroup.trigger()
    assert not w.project.graph.blocks
    w.undo_stack.set_clean()


def test_dragging_a_collapsed_card_moves_its_layers(canvas, qtbot):
    scene, view, stack, _messages = canvas
    collapse_setup(scene)
    scene.set_blocks_collapsed(["conv2_block2"], True)
    card = scene.blocks.cards["conv2_block2"]
    view.centerOn(card)
    start = view.mapFromScene(card.pos())
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, 6):
        qtbot.mouseMove(view.viewport(), start + QPoint(step * 20, 0))
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=start + QPoint(100, 0))
    graph = scene.project.graph
    moved = graph.nodes["conv2_block2_1_conv"].position[0]
    assert moved > 50  # every layer of the block moved right by the drag
    assert {graph.nodes[n].position[0] for n in BLOCK2} == {moved}
    assert graph.nodes["pool"].position == (0.0, SPACING * 8)
    assert abs(card.x() - moved) < 1  # the card follows its layers
    stack.undo()
    assert {graph.nodes[n].position[0] for n in BLOCK2} == {0.0}


def test_deleting_a_collapsed_card_deletes_its_layers_and_undo_brings_it_back(canvas):
    scene, view, stack, _messages = canvas
    collapse_setup(scene)
    scene.set_blocks_collapsed(["conv2_block1"], True)
    scene.select_ids(["conv2_block1_add"])  # the card stands for it
    assert scene.blocks.cards["conv2_block1"].isSelected()
    scene.delete_selection()
    graph = scene.project.graph
    assert not set(BLOCK1) & set(graph.nodes)
    assert "conv2_block1" not in graph.blocks and "conv2_block1" not in scene.blocks.cards
    assert len(scene.edge_items()) == len(graph.edges)
    stack.undo()
    assert set(BLOCK1) <= set(graph.nodes) and graph.blocks["conv2_block1"].collapsed
    card = scene.blocks.cards["conv2_block1"]
    assert card.isVisible() and (card.inputs, card.outputs) == (1, 1)
    assert not any(scene.node_item(n).isVisible() for n in BLOCK1)
    assert len(scene.edge_items()) == len(graph.edges)
    # the wires reach the card again
    entering = scene.edge_item(next(e for e in graph.edges if e.target == BLOCK1[0]))
    assert entering.target is card


def test_ctrl_g_on_a_card_and_layers_nests_blocks(canvas):
    scene, view, stack, _messages = canvas
    scene.select_ids(BLOCK1)
    scene.group_selection()
    scene.set_blocks_collapsed(["conv2_block1"], True)
    scene.select_ids(["conv2_block1_add", *BLOCK2])  # the card and three layers
    assert scene.group_selection() == "conv2"  # their common prefix
    graph = scene.project.graph
    assert graph.blocks["conv2"].nodes == BLOCK1 + BLOCK2
    frame = scene.blocks.frames["conv2"]
    assert frame.rect.contains(scene.blocks.cards["conv2_block1"].mapRectToScene(-98, -35, 196, 70))
    stack.undo()
    assert "conv2" not in graph.blocks and "conv2" not in scene.blocks.frames


def test_resnet50_with_collapsed_stages_fits_the_window_readably(qtbot):
    from engine.model.project import load_project
    from gui.canvas.view import LEGIBLE_ZOOM
    from presets import presets_dir

    project = load_project(presets_dir() / "resnet50.json")
    assert {"conv2", "conv3", "conv4", "conv5"} <= set(project.graph.blocks)
    for block in project.graph.blocks.values():
        block.collapsed = True
    scene = GraphScene(project, UndoStack(project))
    view = GraphView(scene)
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    qtbot.waitExposed(view)
    view.fit()
    assert view.zoom() >= LEGIBLE_ZOOM  # summary cards stay readable
    assert view.visible_scene_rect().contains(scene.items_rect())  # and all of it shows
    shown = [i for i in scene.node_items() if i.isVisible()] + list(scene.blocks.cards.values())
    assert len(shown) < 15  # input, stem, pool1, 4 stages, head: not 177 cards
    assert not view.minimap.isVisible()  # nothing left to scroll to
