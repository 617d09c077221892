"""Issue 15: the mouse wheel scrolls settings panels and edits a field only when it has
keyboard focus (scrolling the Training settings used to change loss, optimizer, ...)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QScrollArea,
    QWidget,
)

from engine.model.commands import UndoStack
from engine.model.graph import Edge, Node
from engine.model.project import Project, new_project
from gui.inspector.panel import Inspector
from gui.training.training_panel import TrainingPanel


def wheel(widget, notches: int = -1) -> None:
    """One wheel notch over the middle of ``widget`` (down for negative)."""
    centre = QPointF(widget.rect().center())
    glob = QPointF(widget.mapToGlobal(QPoint(int(centre.x()), int(centre.y()))))
    event = QWheelEvent(
        centre,
        glob,
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def value_of(widget):
    if isinstance(widget, QComboBox):
        return widget.currentIndex()
    if isinstance(widget, QAbstractSpinBox):
        return widget.text()
    return widget.value()


def fields(root):
    return [
        w
        for w in root.findChildren(QWidget)
        if isinstance(w, (QComboBox, QAbstractSpinBox, QAbstractSlider))
        and w.isVisible()
        and w.isEnabled()
        and not w.inherits("QScrollBar")
    ]


def training_area(qtbot):
    project = new_project()
    project.training["schedule"] = {"type": "cosine_decay"}
    project.training["early_stopping"] = {"monitor": "val_loss", "patience": 5}
    stack = UndoStack(project)
    panel = TrainingPanel()
    panel.set_project(project, stack)
    area = QScrollArea()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    qtbot.addWidget(area)
    area.resize(420, 500)
    area.show()
    qtbot.waitExposed(area)
    return area, panel, project, stack


def test_wheel_over_unfocused_training_settings_scrolls_and_changes_nothing(qtbot):
    area, panel, project, stack = training_area(qtbot)
    before = dict(project.training)
    widgets = fields(panel)
    assert len(widgets) >= 11, [type(w).__name__ for w in widgets]
    bar = area.verticalScrollBar()
    assert bar.maximum() > 0, "the panel is taller than its scroll area"
    values = [value_of(w) for w in widgets]
    for widget in widgets:
        for notches in (-1, -1, 1):
            wheel(widget, notches)
    assert [value_of(w) for w in widgets] == values, "no field changed under the wheel"
    assert project.training == before
    assert not stack.can_undo, "no undo step was pushed"
    bar.setValue(0)
    wheel(panel.optimizer, -3)
    assert bar.value() > 0, "the wheel scrolled the panel instead"


def test_wheel_over_a_focused_training_field_edits_it(qtbot):
    area, panel, project, stack = training_area(qtbot)
    area.activateWindow()
    panel.optimizer.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(panel.optimizer.hasFocus)
    start = panel.optimizer.currentText()
    wheel(panel.optimizer, -1)
    assert panel.optimizer.currentText() != start
    assert project.training["optimizer"]["type"] == panel.optimizer.currentText()
    assert stack.can_undo
    assert panel.optimizer.focusPolicy() == Qt.FocusPolicy.StrongFocus


def test_wheel_over_unfocused_inspector_fields_changes_nothing(qtbot):
    project = Project(name="t")
    project.graph.nodes = {
        "inp": Node("inp", "Input", {"shape": [4]}),
        "fc": Node("fc", "Dense", {"units": 32}),
    }
    project.graph.edges = [Edge("inp", "fc")]
    stack = UndoStack(project)
    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.set_project(project, stack)
    inspector.resize(320, 300)
    inspector.show()
    inspector.show_nodes(["fc"])
    inspector.form.advanced_toggle.click()
    widgets = fields(inspector)
    assert len(widgets) >= 4
    for widget in widgets:
        wheel(widget, -1)
        wheel(widget, 1)
    assert project.graph.nodes["fc"].params == {"units": 32}
    assert not stack.can_undo
    units = inspector.form.editors["units"].spin
    inspector.activateWindow()
    units.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(units.hasFocus)
    wheel(units, 1)
    assert project.graph.nodes["fc"].params == {"units": 33}
    assert stack.can_undo


def test_wheel_over_unfocused_data_settings_changes_nothing(qtbot):
    from gui.training.data_panel import DataPanel

    project = new_project()
    stack = UndoStack(project)
    panel = DataPanel()
    panel.set_project(project, stack)
    qtbot.addWidget(panel)
    panel.resize(420, 600)
    panel.show()
    qtbot.waitExposed(panel)
    before = dict(project.data)
    widgets = fields(panel)
    assert widgets, "the data panel has settings fields"
    values = [value_of(w) for w in widgets]
    for widget in widgets:
        wheel(widget, -1)
    assert [value_of(w) for w in widgets] == values
    assert project.data == before
    assert not stack.can_undo
