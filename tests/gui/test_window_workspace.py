"""Issue 15: training gets the window (Design / Training views, Ctrl+1 / Ctrl+2,
remembered); its settings column is never clipped at 1280x800 and its splitter moves."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QScrollArea

from gui.main_window import MainWindow


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "recovery"))


def _window(qtbot, use_settings: bool = True) -> MainWindow:
    w = MainWindow(load_tensorflow=False, check_recovery=False, use_settings=use_settings)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_training_view_gives_training_the_whole_window_and_is_remembered(qtbot):
    w = _window(qtbot)
    assert w.act_design_view.shortcut().toString() == "Ctrl+1"
    assert w.act_training_view.shortcut().toString() == "Ctrl+2"
    assert w.main_toolbar.widgetForAction(w.act_training_view) is not None
    w.act_training_view.trigger()
    qtbot.wait(50)
    dock = w.training_dock
    assert w.perspective == "train"
    assert not w.view.isVisible() and not w.palette_dock.isVisible()
    assert dock.split.isVisible() and dock.split.window() is w
    assert dock.split.width() >= w.width() - 20  # the full central area, not a bottom tab
    assert dock.split.height() >= 600
    w.close()
    again = _window(qtbot)
    assert again.perspective == "train" and again.act_training_view.isChecked()
    again.act_design_view.trigger()
    qtbot.wait(50)
    assert again.view.isVisible() and again.palette_dock.isVisible()
    assert again.inspector_dock.isVisible()
    assert again.training_dock.scroll.widget() is again.training_dock.split
    again.close()


def test_settings_column_is_not_clipped_and_its_splitter_moves(qtbot):
    w = _window(qtbot, use_settings=False)
    w.set_perspective("train")
    qtbot.wait(50)
    dock = w.training_dock
    tabs = dock.settings_tabs
    for i in range(tabs.count()):
        area = tabs.widget(i)
        assert isinstance(area, QScrollArea)
        panel = area.widget()
        tabs.setCurrentIndex(i)
        qtbot.wait(20)
        # the panel's content fits the column: nothing cut on the right
        assert panel.minimumSizeHint().width() <= area.viewport().width(), i
        assert panel.width() <= area.viewport().width()
    before = dock.split.sizes()
    dock.split.moveSplitter(before[0] + 150, 1)
    qtbot.wait(20)
    after = dock.split.sizes()
    assert after[0] > before[0] and after[1] < before[1]
    dock.split.moveSplitter(0, 1)  # cannot be squeezed below what the settings need
    assert dock.split.sizes()[0] >= tabs.minimumWidth() >= tabs.minimumSizeHint().width()
    w.set_perspective("design")
    assert w.central_stack.currentIndex() == 0


def test_a_trip_to_the_training_view_leaves_the_design_panels_their_sizes(qtbot):
    """Found driving the real window: after Training and back, the built training views'
    minimum size grew the bottom panels and squeezed the canvas and the inspector."""
    w = _window(qtbot, use_settings=False)
    qtbot.wait(50)
    before = (w.view.height(), w.inspector_dock.width(), w.bottom_dock.height())
    w.set_perspective("train")
    qtbot.wait(50)
    w.set_perspective("design")
    qtbot.wait(50)
    after = (w.view.height(), w.inspector_dock.width(), w.bottom_dock.height())
    assert after[0] >= before[0] - 20, (before, after)
    assert after[1] >= before[1] - 20, (before, after)
    assert after[2] <= before[2] + 20, (before, after)


def test_the_palette_can_never_be_narrowed_below_its_longest_layer_name(qtbot):
    """Found driving the real window: a restored layout left the palette at ~130 px, so
    every long name was cut in the middle ("Conv…pose", "Norma…ation")."""
    w = _window(qtbot, use_settings=False)
    w.resizeDocks([w.palette_dock], [60], Qt.Orientation.Horizontal)
    qtbot.wait(50)
    fm = w.palette.tree.fontMetrics()
    assert w.palette.tree.viewport().width() >= fm.horizontalAdvance("GlobalAveragePooling2D")


def test_a_narrow_training_dock_scrolls_sideways_instead_of_cutting_the_live_view(qtbot):
    w = _window(qtbot, use_settings=False)
    w.set_perspective("design")
    dock = w.training_dock
    dock.show()
    dock.build()
    dock.raise_()
    qtbot.wait(100)
    area, live = dock.scroll, dock.live
    assert dock.split.minimumSizeHint().width() > area.viewport().width(), "narrower than needed"
    bar = area.horizontalScrollBar()
    assert bar.isVisible() and bar.maximum() > 0, "a scroll bar leads to the cut-off part"
    bar.setValue(bar.maximum())
    qtbot.wait(50)
    right = live.mapTo(area.viewport(), live.rect().topRight()).x()
    assert right <= area.viewport().width() + 1, "the Live view's right edge is reachable"
    w.close()
