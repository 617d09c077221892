"""The main window: palette to canvas, files, title mark, problems, code preview, help."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QDropEvent

from engine.catalog.table import CATALOG
from engine.model.commands import AddNode, Rename
from engine.model.graph import Edge, Node
from engine.model.project import load_project, new_project
from gui.file_actions import preset_files
from gui.layer_guide import layer_guide_html
from gui.main_window import MainWindow
from gui.palette import LAYER_MIME, layer_mime

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "recovery"))


@pytest.fixture
def window(qtbot, monkeypatch):
    warnings: list[tuple[str, str]] = []
    monkeypatch.setattr(MainWindow, "_warn", lambda self, t, m: warnings.append((t, m)))
    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")
    w = MainWindow(load_tensorflow=False, check_recovery=False)
    w.warnings = warnings
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def _drop(window: MainWindow, layer_type: str) -> None:
    view = window.view
    target = QPointF(view.viewport().rect().center())
    mime = layer_mime(layer_type)  # kept alive: the event only points at it
    event = QDropEvent(
        target,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    view.dropEvent(event)


def test_drop_from_palette_creates_a_node(window):
    before = set(window.project.graph.nodes)
    mime = layer_mime("Dropout")
    assert mime.hasFormat(LAYER_MIME)
    _drop(window, "Dropout")
    added = set(window.project.graph.nodes) - before
    assert len(added) == 1
    assert window.project.graph.nodes[added.pop()].type == "Dropout"
    assert window.isWindowModified()
    window.act_undo.trigger()
    assert set(window.project.graph.nodes) == before


def test_palette_double_click_adds_after_the_selected_layer(window, qtbot):
    graph = window.project.graph
    last = graph.output_nodes()[0]
    window.scene.select_ids([last])
    before = set(graph.nodes)
    item = window.palette.layer_item("Dense")
    assert item is not None
    tree = window.palette.tree
    tree.scrollToItem(item)
    centre = tree.visualItemRect(item).center()
    # A real double-click: press/release, then the double-click event.
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseDClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    added = sorted(set(graph.nodes) - before)
    assert len(added) == 1, "one double-click adds one layer"
    assert graph.nodes[added[0]].type == "Dense"
    assert [e.source for e in graph.inputs_of(added[0])] == [last]
    assert window.scene.selected_ids() == added
    assert window.inspector.ids == added, "the inspector shows the new layer"


def test_palette_search_filters_as_you_type(window):
    palette = window.palette
    all_types = palette.visible_types()
    assert set(all_types) == set(CATALOG)
    palette.search.setText("conv2d")
    shown = palette.visible_types()
    assert "Conv2D" in shown and "Dense" not in shown
    palette.search.setText("")
    assert palette.visible_types() == all_types
    item = palette.layer_item("Dense")
    assert CATALOG["Dense"].doc in item.toolTip(0)


def test_save_and_open_round_trip(window, tmp_path, monkeypatch):
    path = tmp_path / "model.json"
    first = next(iter(window.project.graph.nodes))
    window.undo_stack.push(Rename(first, "entry"))
    monkeypatch.setattr(MainWindow, "_ask_save_path", lambda self: str(path))
    assert window.save()
    assert not window.isWindowModified()
    assert "model.json" in window.windowTitle()
    saved = load_project(path)
    assert list(saved.graph.nodes) == list(window.project.graph.nodes)
    window.new_file()
    assert "entry" not in window.project.graph.nodes
    assert window.open_path(path)
    assert "entry" in window.project.graph.nodes
    assert window.project.graph.to_dict() == saved.graph.to_dict()
    assert str(path.resolve()) in window.recent_files()
    assert window.scene.node_item("entry") is not None, "the canvas shows the opened project"


def test_opening_a_corrupt_file_keeps_the_project_and_shows_the_message(window, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"format": "layerlab", "version": 1, "graph": {"nodes": [')
    nodes = list(window.project.graph.nodes)
    assert not window.open_path(bad)
    assert list(window.project.graph.nodes) == nodes
    assert len(window.warnings) == 1
    assert "broken.json" in window.warnings[0][1] and "JSON" in window.warnings[0][1]


def test_title_marks_unsaved_changes(window):
    assert "[*]" in window.windowTitle()
    assert not window.isWindowModified()
    first = next(iter(window.project.graph.nodes))
    window.undo_stack.push(Rename(first, "x1"))
    assert window.isWindowModified()
    assert "Rename" in window.act_undo.text()
    window.act_undo.trigger()
    assert not window.isWindowModified()


def test_unsaved_changes_question_can_cancel(window, monkeypatch):
    first = next(iter(window.project.graph.nodes))
    window.undo_stack.push(Rename(first, "keep_me"))
    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "cancel")
    window.new_file()
    assert "keep_me" in window.project.graph.nodes
    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")
    window.new_file()
    assert list(window.project.graph.nodes) == list(new_project().graph.nodes)


def test_problems_panel_click_selects_the_node(window, qtbot):
    window.undo_stack.push(AddNode(Node("lonely", "Dense", {"units": 3}, (500, 500))))
    window.validation.flush()
    panel = window.problems
    rows = [panel.topLevelItem(i) for i in range(panel.topLevelItemCount())]
    row = next(r for r in rows if r.text(1) == "lonely")
    assert "lonely" in row.text(2)
    assert "Problems (" in window.bottom_tabs.tabText(0)
    rect = panel.visualItemRect(row)
    qtbot.mouseClick(panel.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.scene.selected_ids() == ["lonely"]
    assert window.inspector.ids == ["lonely"]
    assert row.text(2) in window.inspector.problem_text.text(), "the inspector names it too"


def test_problems_update_after_an_edit_without_tensorflow(window, qtbot):
    graph = window.project.graph
    window.undo_stack.push(AddNode(Node("extra", "Dense", {"units": 3}, (0, 900))))
    qtbot.waitUntil(
        lambda: any(p.node == "extra" for p in window.validation.problems), timeout=2000
    )
    out = graph.output_nodes()[0]
    window.undo_stack.push(
        AddNode(
            Node("fix", "Dense", {"units": 3}, (0, 950)),
            [Edge(out if out != "extra" else graph.output_nodes()[1], "fix")],
        )
    )
    window.act_undo.trigger()
    window.act_undo.trigger()
    qtbot.waitUntil(
        lambda: not any(p.node == "extra" for p in window.validation.problems), timeout=2000
    )


def test_code_preview_shows_the_generated_script(window, qtbot):
    window.act_code.trigger()
    assert window.code_dock.isVisible()
    qtbot.waitUntil(lambda: "build_model" in window.code.toPlainText(), timeout=5000)
    first = next(iter(window.project.graph.nodes))
    window.undo_stack.push(Rename(first, "renamed_input"))
    qtbot.waitUntil(lambda: "renamed_input" in window.code.toPlainText(), timeout=5000)


def test_layer_guide_lists_every_catalog_layer(window):
    text = layer_guide_html()
    for spec in CATALOG.values():
        assert spec.type in text
    assert preset_files(), "the presets folder is listed under File > New from preset"
    assert window.presets_menu.isEnabled()


def test_edit_menu_select_all_and_delete(window):
    window.act_select_all.trigger()
    assert set(window.scene.selected_ids()) == set(window.project.graph.nodes)
    window.act_delete.trigger()
    assert not window.project.graph.nodes
    window.act_undo.trigger()
    assert window.project.graph.nodes


def test_geometry_and_theme_persist(qtbot, monkeypatch):
    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")
    first = MainWindow(load_tensorflow=False, check_recovery=False)
    qtbot.addWidget(first)
    first.resize(701, 503)
    first.set_dark(True)
    first.close()
    second = MainWindow(load_tensorflow=False, check_recovery=False)
    qtbot.addWidget(second)
    assert (second.width(), second.height()) == (701, 503)
    assert second.dark and second.act_dark.isChecked()
    second.set_dark(False)


def test_startup_does_not_import_tensorflow_before_the_window_shows(tmp_path):
    script = textwrap.dedent("""
        import sys
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from gui.main_window import MainWindow
        w = MainWindow(check_recovery=False, use_settings=False, autosave=False)
        w.show()
        print(json.dumps({"tf": "tensorflow" in sys.modules, "nodes": len(w.project.graph.nodes),
                          "status": w.tf_label.text()}), flush=True)
        app.processEvents()
        import os; os._exit(0)
    """).replace("import sys", "import sys, json")
    env = {
        "QT_QPA_PLATFORM": "offscreen",
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "LAYERLAB_SETTINGS": str(tmp_path / "s.ini"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["tf"] is False
    assert result["nodes"] > 0, "the default project is open"
    assert result["status"].startswith("Loading TensorFlow")


def test_main_with_an_unreadable_file_prints_the_message_and_exits_2(tmp_path, capsys):
    from gui.app import main

    assert main(tmp_path / "missing.json") == 2
    assert "missing.json" in capsys.readouterr().err


def test_new_from_preset_opens_a_copy_that_saving_asks_a_name_for(window, monkeypatch):
    name, path = preset_files()[-1]
    action = next(a for a in window.presets_menu.actions() if a.text() == name)
    action.trigger()
    assert window.project.name == name
    assert window.project.path is None, "a preset is a template, never overwritten"
    assert window.windowTitle().startswith(name)
    asked = []
    monkeypatch.setattr(MainWindow, "_ask_save_path", lambda self: asked.append(1))
    window.act_save.trigger()
    assert asked, "Save on a preset copy asks where to save"
    assert len(window.project.graph.nodes) == len(load_project(path).graph.nodes)


def test_enter_in_the_palette_search_adds_the_first_match(window, qtbot):
    before = set(window.project.graph.nodes)
    qtbot.keyClicks(window.palette.search, "dropout")
    qtbot.keyClick(window.palette.search, Qt.Key.Key_Return)
    added = set(window.project.graph.nodes) - before
    assert [window.project.graph.nodes[i].type for i in added] == ["Dropout"]


def test_edit_actions_follow_the_selection(window):
    window.scene.select_ids([])
    assert not window.act_delete.isEnabled() and not window.act_copy.isEnabled()
    window.scene.select_ids([next(iter(window.project.graph.nodes))])
    assert window.act_delete.isEnabled() and window.act_duplicate.isEnabled()


def test_closing_with_unsaved_changes_asks_and_cancel_keeps_the_window(window, monkeypatch):
    first = next(iter(window.project.graph.nodes))
    window.undo_stack.push(Rename(first, "unsaved"))
    asked = []
    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: asked.append(1) or "cancel")
    assert not window.close()
    assert asked and window.isVisible()
    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")
    assert window.close()


def test_a_drag_records_every_card_that_moved_even_if_the_selection_changes(window):
    from PySide6.QtTest import QTest

    view, left = window.view, Qt.MouseButton.LeftButton
    ids = list(window.project.graph.nodes)
    card = window.scene.node_item(ids[1])
    view.centerOn(card.scenePos())
    at = card.scenePos() + QPointF(0, -10)
    QTest.mousePress(view.viewport(), left, Qt.KeyboardModifier.NoModifier, view.mapFromScene(at))
    QTest.mouseMove(view.viewport(), view.mapFromScene(at + QPointF(30, 0)))
    QTest.keyClick(view.viewport(), Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.mouseMove(view.viewport(), view.mapFromScene(at + QPointF(80, 0)))
    QTest.mouseRelease(
        view.viewport(),
        left,
        Qt.KeyboardModifier.NoModifier,
        view.mapFromScene(at + QPointF(80, 0)),
    )
    cards = {n: (window.scene.node_item(n).x(), window.scene.node_item(n).y()) for n in ids}
    assert cards == {n: tuple(window.project.graph.nodes[n].position) for n in ids}
    assert window.undo_stack.undo_text == f"Move {len(ids)} layers"
    window.undo_stack.undo()
    assert window.scene.node_item(ids[1]).x() == window.project.graph.nodes[ids[1]].position[0]


def test_a_file_with_a_non_finite_position_is_refused_and_the_project_stays(window, tmp_path):
    before = window.project
    data = json.loads((ROOT / "presets" / "mlp.json").read_text())
    data["graph"]["nodes"][1]["position"] = [float("nan"), 0]
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(data))
    assert not window.open_path(path, ask=False)
    assert window.project is before
    assert "must be two numbers between -1e7 and 1e7; got [nan, 0]" in window.warnings[-1][1]
