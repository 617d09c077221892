"""Find (Ctrl+F), and Model summary / Problems rows that select and centre their layer."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeySequence

from engine.model.commands import UndoStack
from engine.model.project import load_project
from gui.canvas.find import find_nodes
from presets import presets_dir

from .conftest import make_project


def chain_project():
    """img -> conv_a (relu, same) -> conv_b -> pool -> flat -> fc64 -> out, 300 apart."""
    nodes = [
        ("img", "Input", {"shape": [32, 32, 3]}),
        (
            "conv_a",
            "Conv2D",
            {"filters": 8, "kernel_size": 3, "activation": "relu", "padding": "same"},
        ),
        ("conv_b", "Conv2D", {"filters": 16, "kernel_size": 3}),
        ("pool", "MaxPooling2D", {}),
        ("flat", "Flatten", {}),
        ("fc64", "Dense", {"units": 64, "activation": "relu"}),
        ("out", "Dense", {"units": 10, "activation": "softmax"}),
    ]
    return make_project(
        [(n, t, p, (0.0, 300.0 * i)) for i, (n, t, p) in enumerate(nodes)],
        [(a[0], b[0], 0) for a, b in zip(nodes, nodes[1:])],
    )


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("conv", ["conv_a", "conv_b"]),  # ids (and types), top to bottom
        ("CONV_B", ["conv_b"]),  # case does not matter
        ("dense", ["fc64", "out"]),  # types
        ("maxpooling", ["pool"]),
        ("units=64", ["fc64"]),  # name=value
        ("softmax", ["out"]),  # values
        ("same", ["conv_a"]),
        ("relu", ["conv_a", "fc64"]),
        ("conv relu", ["conv_a"]),  # every word must match
        ("lstm", []),
        ("  ", []),
    ],
)
def test_find_matches_ids_types_and_parameter_values(query, found):
    assert find_nodes(chain_project().graph, query) == found


@pytest.fixture
def window(qtbot, monkeypatch):
    from gui.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")

    w = MainWindow(
        chain_project(),
        load_tensorflow=False,
        check_recovery=False,
        use_settings=False,
        autosave=False,
    )
    qtbot.addWidget(w)
    w.resize(1100, 760)
    w.show()
    qtbot.waitExposed(w)
    w.view.set_zoom(1.0)
    w.view.centerOn(QPointF(0, 0))
    return w


def view_centre(window) -> QPointF:
    view = window.view
    return view.mapToScene(view.viewport().rect().center())


def is_centred(window, node_id: str) -> bool:
    pos = window.scene.node_item(node_id).scenePos()
    centre = view_centre(window)
    return abs(centre.x() - pos.x()) < 30 and abs(centre.y() - pos.y()) < 30


def test_ctrl_f_opens_a_find_bar_that_steps_through_matches(window, qtbot):
    assert window.act_find.shortcut() == QKeySequence(QKeySequence.StandardKey.Find)
    window.view.setFocus()
    window.act_find.trigger()
    bar = window.view.find_bar
    assert bar.isVisible() and bar.edit.hasFocus()
    assert not bar.isWindow()  # over the canvas, not a dialog
    qtbot.keyClicks(bar.edit, "relu")
    qtbot.waitUntil(lambda: bar.count_text() == "1 of 2")
    assert window.scene.selected_ids() == ["conv_a"]
    assert is_centred(window, "conv_a")
    # every match is highlighted
    highlight = bar.highlight
    assert highlight.scene() is window.scene and len(highlight._rects) == 2
    qtbot.keyClick(bar.edit, Qt.Key.Key_Return)
    assert bar.count_text() == "2 of 2"
    assert window.scene.selected_ids() == ["fc64"] and is_centred(window, "fc64")
    qtbot.keyClick(bar.edit, Qt.Key.Key_Return)  # wraps around
    assert window.scene.selected_ids() == ["conv_a"]
    qtbot.keyClick(bar.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert bar.count_text() == "2 of 2" and window.scene.selected_ids() == ["fc64"]
    qtbot.keyClick(bar.edit, Qt.Key.Key_F3)
    assert window.scene.selected_ids() == ["conv_a"]
    qtbot.keyClick(bar.edit, Qt.Key.Key_F3, Qt.KeyboardModifier.ShiftModifier)
    assert window.scene.selected_ids() == ["fc64"]
    qtbot.keyClick(bar.edit, Qt.Key.Key_Escape)
    assert not bar.isVisible()
    assert highlight._rects == []  # highlights gone
    assert window.scene.selected_ids() == ["fc64"]  # the found layer stays selected


def test_find_says_when_nothing_matches(window, qtbot):
    bar = window.view.find_bar
    window.view.open_find()
    bar.set_query("lstm")
    assert bar.count_text() == "No match"
    bar.set_query("units=10")
    assert bar.count_text() == "1 of 1" and window.scene.selected_ids() == ["out"]


def test_find_on_resnet101_takes_well_under_100_ms(qtbot):
    from gui.canvas.scene import GraphScene
    from gui.canvas.view import GraphView

    project = load_project(presets_dir() / "resnet101.json")
    scene = GraphScene(project, UndoStack(project))
    view = GraphView(scene)
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    view.open_find()
    times = []
    for query in ("bn", "conv4_block20", "filters=1024", "add"):
        start = time.perf_counter()
        view.find_bar.set_query(query)  # search, highlight, select, centre
        view.find_bar.next()
        times.append(time.perf_counter() - start)
    assert view.find_bar.count_text().endswith(f"of {len(find_nodes(project.graph, 'add'))}")
    assert len(find_nodes(project.graph, "bn")) > 100
    assert sorted(times)[len(times) // 2] < 0.1, times


def test_clicking_a_summary_row_selects_and_centres_its_layer(window, qtbot):
    window.show_summary()
    table = window.summary.table
    rows = [table.item(r, 0).text() for r in range(table.rowCount())]
    row = rows.index("fc64")
    rect = table.visualItemRect(table.item(row, 1))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.scene.selected_ids() == ["fc64"]
    assert is_centred(window, "fc64")


def test_clicking_a_problem_row_selects_and_centres_its_layer(window, qtbot):
    from engine.model.commands import Disconnect
    from engine.model.graph import Edge

    window.undo_stack.push(Disconnect(Edge("flat", "fc64", 0)))
    window.validate_now()
    panel = window.problems
    item = next(
        panel.topLevelItem(i)
        for i in range(panel.topLevelItemCount())
        if panel.topLevelItem(i).text(1) == "fc64"
    )
    rect = panel.visualItemRect(item)
    qtbot.mouseClick(panel.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.scene.selected_ids() == ["fc64"]
    assert is_centred(window, "fc64")
