"""A read-only view of the Python script :func:`engine.codegen.script.generate` writes.

It regenerates (debounced) while the graph changes, but only while it is visible.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFont, QFontDatabase, QTextOption
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from engine.codegen.script import generate
from engine.model.commands import UndoStack
from engine.model.project import Project


class CodePreview(QPlainTextEdit):
    """Monospace, read-only, always showing the current project's generated code."""

    def __init__(self, parent: QWidget | None = None, delay_ms: int = 250) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setWordWrapMode(QTextOption.WrapMode.NoWrap)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.setFont(font)
        self.project: Project | None = None
        self.undo_stack: UndoStack | None = None
        self._stale = True
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.regenerate)

    def set_project(self, project: Project, undo_stack: UndoStack) -> None:
        if self.undo_stack is not None:
            self.undo_stack.events.changed.disconnect(self._on_changed)
        self.project, self.undo_stack = project, undo_stack
        undo_stack.events.changed.connect(self._on_changed)
        self._on_changed()

    def _on_changed(self) -> None:
        self._stale = True
        if self.isVisible():
            self._timer.start()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._timer.start(0)

    def regenerate(self) -> None:
        """Regenerate now (keeps the scroll position)."""
        self._timer.stop()
        if self.project is None:
            return
        self._stale = False
        try:
            text = generate(self.project)
        except Exception as exc:  # an invalid graph: say why instead of code
            text = f"# The code cannot be generated yet:\n# {exc}"
        if text != self.toPlainText():
            bar = self.verticalScrollBar()
            pos = bar.value()
            self.setPlainText(text)
            bar.setValue(pos)
