"""The mouse wheel scrolls panels; it edits a setting only when that setting has focus.

Qt's combo boxes, spin boxes and sliders take every wheel event that passes over them,
so scrolling a long settings panel changed whichever field slid under the pointer (one
undo step per notch). :func:`guard_wheel` installs one event filter on every such
widget under a widget: a wheel event over a field without keyboard focus is handed to
the scroll area around it instead (it scrolls), and the field gets
``Qt.FocusPolicy.StrongFocus`` so a click or Tab still focuses it and then the wheel
edits it as before.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QScrollBar,
    QWidget,
)

GUARDED = (QComboBox, QAbstractSpinBox, QAbstractSlider)
"""The widget types whose wheel edits need focus (scroll bars excepted)."""


class WheelGuard(QObject):
    """Event filter: a wheel over an unfocused guarded widget scrolls its scroll area."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.Wheel or not isinstance(watched, QWidget):
            return False
        if watched.hasFocus():
            return False  # focused: the wheel edits the value, as the user asked
        area = _scroll_area(watched)
        if area is not None:
            for bar in (area.verticalScrollBar(), area.horizontalScrollBar()):
                if bar is not None and bar.isVisible():
                    QApplication.sendEvent(bar, event)
                    break
        event.ignore()
        return True  # never reaches the field: its value stays as it was


_GUARD: WheelGuard | None = None


def _guard() -> WheelGuard:
    global _GUARD
    if _GUARD is None:
        _GUARD = WheelGuard(QApplication.instance())
    return _GUARD


def _scroll_area(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractScrollArea):
            return parent
        parent = parent.parentWidget()
    return None


def guard_widget(widget: QWidget) -> None:
    """Guard one combo box, spin box or slider (idempotent)."""
    if isinstance(widget, QScrollBar) or widget.property("wheelGuarded"):
        return
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    widget.installEventFilter(_guard())
    widget.setProperty("wheelGuarded", True)


def guard_wheel(tree: QWidget) -> int:
    """Guard every combo box, spin box and slider under ``tree`` (and ``tree`` itself).

    Call it again after adding widgets; already guarded ones are skipped.

    Returns:
        How many widgets are guarded under ``tree``.
    """
    widgets = [tree] if isinstance(tree, GUARDED) else []
    widgets += [w for w in tree.findChildren(QWidget) if isinstance(w, GUARDED)]
    count = 0
    for widget in widgets:
        if isinstance(widget, QScrollBar):
            continue
        guard_widget(widget)
        count += 1
    return count
