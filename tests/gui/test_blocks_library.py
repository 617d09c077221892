"""Reusing blocks in the window (issue 18): Repeat Block…, Save to My Blocks, the
palette's "My blocks" section (list, broken files, place by double-click or drop,
delete), each canvas step one undo step."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDropEvent

from engine.model.blocks import Block
from engine.model.commands import GroupBlock
from gui.palette import BLOCK_MIME, MY_BLOCKS, LayerPalette

from .test_blocks import BLOCK1, BLOCK2, resnet_like


@pytest.fixture
def window(qtbot, monkeypatch, tmp_path):
    from gui import main_window
    from gui.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")
    monkeypatch.setattr(main_window, "blocks_dir", lambda: tmp_path / "blocks")
    project = resnet_like()
    w = MainWindow(
        project, load_tensorflow=False, check_recovery=False, use_settings=False, autosave=False
    )
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    w.scene.push(GroupBlock(Block("conv2_block1", "Residual", BLOCK1)))
    w.undo_stack.set_clean()
    yield w
    w.undo_stack.set_clean()


def test_repeat_block_asks_n_and_stacks_copies_in_one_undo_step(window, monkeypatch):
    scene, graph = window.scene, window.project.graph
    monkeypatch.setattr("gui.canvas.scene.QInputDialog.getInt", lambda *a, **k: (2, True))
    frame = scene.blocks.frames["conv2_block1"]
    menu = scene.context_menu(frame.title_rect().center())
    repeat = next(a for a in menu.actions() if a.text() == "Repeat Block…")
    assert repeat.isEnabled()
    before = len(graph.nodes)
    repeat.trigger()
    assert len(graph.nodes) == before + 6
    assert "conv2_block1_1_conv_r1" in graph.nodes and "conv2_block1_add_r2" in graph.nodes
    assert {"conv2_block1_r1", "conv2_block1_r2"} <= set(graph.blocks)
    assert set(scene.blocks.frames) >= {"conv2_block1_r1", "conv2_block1_r2"}
    assert scene.selected_ids()[0] == "conv2_block1_1_conv_r1"
    # the layer after the block now reads the last copy
    assert any(
        e.source == "conv2_block1_add_r2" and e.target == "conv2_block2_1_conv" for e in graph.edges
    )
    window.undo_stack.undo()
    assert len(graph.nodes) == before and set(graph.blocks) == {"conv2_block1"}
    assert set(scene.blocks.frames) == {"conv2_block1"}


def test_a_block_that_cannot_be_repeated_is_greyed_with_the_reason(window):
    scene = window.scene
    scene.push(GroupBlock(Block("head", "Head", ["pool", "out"])))
    scene.set_analysis(
        {
            "conv2_block2_add": {"output_shape": (None, 8, 8, 4)},
            "pool": {"output_shape": (None, 4)},
            "out": {"output_shape": (None, 3)},
        },
        [],
    )
    frame = scene.blocks.frames["head"]
    menu = scene.context_menu(frame.title_rect().center())
    repeat = next(a for a in menu.actions() if a.text() == "Repeat Block…")
    assert not repeat.isEnabled() and "shape" in repeat.toolTip()
    assert scene.repeat_block("head", 1) == []


def test_save_to_my_blocks_lists_it_and_double_click_places_it(window, qtbot, tmp_path):
    scene, graph, palette = window.scene, window.project.graph, window.palette
    frame = scene.blocks.frames["conv2_block1"]
    menu = scene.context_menu(frame.title_rect().center())
    save = next(a for a in menu.actions() if a.text() == "Save to My Blocks")
    save.trigger()
    palette.wait_for_blocks()  # written by a background thread
    assert (tmp_path / "blocks" / "Residual.json").is_file()
    qtbot.waitUntil(lambda: palette.block_item("Residual") is not None)
    assert not palette.blocks_group.isHidden() and palette.blocks_group.text(0) == MY_BLOCKS
    row = palette.block_item("Residual")
    assert row.text(0) == "Residual  (3 layers)"
    assert "Conv2D" in row.toolTip(0)
    before = len(graph.nodes)
    scene.select_ids(["out"])
    palette._on_activated(row)  # double-click / Enter
    assert len(graph.nodes) == before + 3
    placed = [b for b in graph.blocks if b != "conv2_block1"]
    assert len(placed) == 1 and graph.blocks[placed[0]].name == "Residual"
    assert scene.selected_ids() and all(
        n in graph.blocks[placed[0]].nodes for n in scene.selected_ids()
    )
    window.undo_stack.undo()
    assert len(graph.nodes) == before and list(graph.blocks) == ["conv2_block1"]


def test_a_saved_block_dropped_on_the_canvas_lands_where_dropped(window, qtbot, tmp_path):
    scene, graph, view = window.scene, window.project.graph, window.view
    window.save_block_to_library("conv2_block1")
    window.palette.wait_for_blocks()
    qtbot.waitUntil(lambda: bool(window.palette.fragments))
    fragment = next(iter(window.palette.fragments.values()))
    mime = QMimeData()
    mime.setData(BLOCK_MIME, json.dumps(fragment).encode())
    target = view.viewport().rect().center()
    drop = QDropEvent(
        QPointF(target),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    before = len(graph.nodes)
    view.dropEvent(drop)
    assert len(graph.nodes) == before + 3
    first = min(scene.selected_ids(), key=lambda n: graph.nodes[n].position[1])
    dropped_at = view.mapToScene(QPoint(target.x(), target.y()))
    x, y = graph.nodes[first].position
    assert abs(x - dropped_at.x()) <= 1 and abs(y - dropped_at.y()) <= 1


def test_my_blocks_lists_broken_files_greyed_and_deletes(qtbot, tmp_path, monkeypatch):
    folder = tmp_path / "blocks"
    folder.mkdir()
    (folder / "broken.json").write_text("{ not json")
    graph = resnet_like().graph
    graph.add_block(Block("conv2_block2", "Second", BLOCK2))
    from engine.model.block_files import save_block

    save_block(graph, "conv2_block2", folder)
    palette = LayerPalette(blocks_folder=folder)
    qtbot.addWidget(palette)
    palette.wait_for_blocks()
    qtbot.waitUntil(lambda: palette.blocks_group.childCount() == 2)
    broken = palette.block_item("broken")
    assert "broken.json" in broken.toolTip(0) and "JSON" in broken.toolTip(0)
    assert not broken.flags() & Qt.ItemFlag.ItemIsDragEnabled
    messages: list[str] = []
    palette.message.connect(messages.append)
    placed: list[dict] = []
    palette.place_requested.connect(placed.append)
    palette._on_activated(broken)
    assert not placed and "Cannot place" in messages[-1]
    # the search filters saved blocks by name too
    palette.search.setText("second")
    assert not palette.block_item("Second").isHidden() and broken.isHidden()
    palette.search.setText("")
    assert palette.visible_types() and None not in palette.visible_types()
    monkeypatch.setattr("gui.palette.QMessageBox.question", lambda *a, **k: palette_yes())
    assert palette.delete_block(str(folder / "Second.json"))
    assert not (folder / "Second.json").exists()
    palette.wait_for_blocks()
    qtbot.waitUntil(lambda: palette.blocks_group.childCount() == 1)


def palette_yes():
    from PySide6.QtWidgets import QMessageBox

    return QMessageBox.StandardButton.Yes
