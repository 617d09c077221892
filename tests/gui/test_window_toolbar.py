"""Issue 15, the window: refused values reach the status bar; Undo/Redo buttons keep their place."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from engine.model.commands import SetParams
from gui.main_window import MainWindow


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "recovery"))


@pytest.fixture
def window(qtbot, monkeypatch):
    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")
    w = MainWindow(load_tensorflow=False, check_recovery=False, use_settings=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def _dense(window: MainWindow) -> str:
    return next(n.id for n in window.project.graph.nodes.values() if n.type == "Dense")


def test_a_refused_value_is_said_in_the_status_bar(window, qtbot):
    node = _dense(window)
    window.scene.select_ids([node])
    spin = window.inspector.form.editors["units"].spin
    window.activateWindow()
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus)
    spin.selectAll()
    qtbot.keyClicks(spin, "0")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    text = window.statusBar().currentMessage()
    assert "Not applied" in text and node in text and "units" in text, text


def test_undo_button_text_stays_fixed_and_the_buttons_after_it_do_not_move(window, qtbot):
    tools = window.main_toolbar
    undo_button = tools.widgetForAction(window.tool_undo)
    fit_button = tools.widgetForAction(window.act_fit)
    before = fit_button.geometry()
    node = _dense(window)
    window.undo_stack.push(SetParams(node, {"activation": "tanh"}))
    qtbot.wait(10)
    assert undo_button.text() == "Undo"
    assert window.tool_undo.isEnabled()
    assert node in window.tool_undo.toolTip() and "Undo" in window.tool_undo.toolTip()
    assert node in window.act_undo.text()  # the Edit menu says what it undoes
    assert fit_button.geometry() == before
    window.tool_undo.trigger()
    assert window.project.graph.nodes[node].params.get("activation") != "tanh"
    assert tools.widgetForAction(window.tool_redo).text() == "Redo"
    assert node in window.tool_redo.toolTip()
    assert not window.tool_undo.isEnabled() or window.undo_stack.can_undo
