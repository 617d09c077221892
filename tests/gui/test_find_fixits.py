"""Shape fix-its in the window: offered in the Problems panel and the card's menu,
each one click, one undo step, saying what it does first."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QPushButton

from .conftest import make_project


def broken_project():
    """A Dense fed 4-D data (warning) and an LSTM fed 2-D data (error)."""
    return make_project(
        [
            ("img", "Input", {"shape": [8, 8, 1]}, (0, 0)),
            ("conv", "Conv2D", {"filters": 4, "kernel_size": 3}, (0, 120)),
            ("fc", "Dense", {"units": 10, "activation": "softmax"}, (0, 240)),
            ("seq", "Input", {"shape": [6]}, (400, 0)),
            ("lstm", "LSTM", {"units": 4}, (400, 120)),
            ("out", "Dense", {"units": 1}, (400, 240)),
        ],
        [("img", "conv", 0), ("conv", "fc", 0), ("seq", "lstm", 0), ("lstm", "out", 0)],
    )


@pytest.fixture
def window(qtbot, monkeypatch):
    from gui.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")

    w = MainWindow(
        broken_project(),
        load_tensorflow=False,
        check_recovery=False,
        use_settings=False,
        autosave=False,
    )
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.validation.load_tensorflow_now()  # shapes: what the fixes are computed from
    qtbot.waitUntil(lambda: "fc" in w.scene.fixits and "lstm" in w.scene.fixits, timeout=20000)
    return w


def row_button(panel, node: str) -> QPushButton:
    for i in range(panel.topLevelItemCount()):
        item = panel.topLevelItem(i)
        if item.text(1) == node:
            return panel.itemWidget(item, 3)
    raise AssertionError(f"no row for {node}")


def test_problems_panel_offers_each_fix_and_applies_it_in_one_undo_step(window, qtbot):
    before = window.project.graph.to_dict()
    button = row_button(window.problems, "fc")
    assert button.text() == "Fix"  # two ways, in its menu: Flatten or global pooling
    texts = [a.text() for a in button.menu().actions()]
    assert texts == [
        "Insert Flatten before 'fc'",
        "Insert GlobalAveragePooling2D before 'fc' (average each channel)",
    ]
    button.menu().actions()[0].trigger()
    assert window.undo_stack.undo_text == "Insert Flatten before 'fc'"
    assert [e.source for e in window.project.graph.inputs_of("fc")] == ["flatten"]
    window.validation.flush()
    assert not [p for p in window.validation.problems if p.node == "fc"]
    window.act_undo.trigger()  # one step back
    assert window.project.graph.to_dict() == before


def test_card_menu_offers_the_fixes_and_the_project_becomes_valid(window, qtbot):
    scene = window.scene
    menu = scene.context_menu(scene.node_item("lstm").scenePos())
    fixes = [a for a in menu.actions() if a.text().startswith("Fix: ")]
    assert [a.text() for a in fixes] == [
        "Fix: Insert Reshape to (6, 1) before 'lstm' (6 time steps of 1 value)",
        "Fix: Insert Reshape to (1, 6) before 'lstm' (1 time step of 6 values)",
    ]
    fixes[0].trigger()
    window.validation.flush()
    assert not [p for p in window.validation.problems if p.severity == "error"]
    qtbot.waitUntil(lambda: "lstm" not in scene.fixits, timeout=5000)
    assert window.undo_stack.undo_text.startswith("Insert Reshape to (6, 1)")
