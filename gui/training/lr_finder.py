"""The learning-rate finder in the window: ``layerlab lr-find PROJECT --json`` in a
child process (TensorFlow stays out of the window), then the smoothed loss against
the learning rate on a log axis with the suggested rate marked; **Apply** sets
``training.optimizer.learning_rate`` to it as one undoable edit
(:class:`engine.model.commands.SetSection` of ``training``).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.model.commands import SetSection
from gui.theme import colors
from gui.training.experiments_process import JsonProcess, remove, write_snapshot
from gui.training.live_view import style_plot

MARK_COLOR = "#dc2626"
CURVE_COLOR = "#2563eb"


def with_learning_rate(training: dict[str, Any], lr: float) -> dict[str, Any]:
    """A copy of a training section with ``optimizer.learning_rate`` set (a string
    optimizer such as ``"Adam"`` becomes ``{"type": "Adam", ...}``)."""
    out = copy.deepcopy(training or {})
    opt = out.get("optimizer", "Adam")
    opt = dict(opt) if isinstance(opt, dict) else {"type": opt}
    opt["learning_rate"] = float(f"{lr:.3g}")
    out["optimizer"] = opt
    return out


class LrFinderDialog(QDialog):
    """Run the range test for ``project`` and offer its suggestion.

    Args:
        project: The window's :class:`engine.model.project.Project` (unsaved edits
            are passed to the child as a snapshot).
        undo_stack: Where **Apply** pushes its one edit.
    """

    finished_run = Signal(bool)  # a result came (True) or the run failed (False)

    def __init__(self, project: Any, undo_stack: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Learning-rate finder")
        self.project, self.undo_stack = project, undo_stack
        self.result: dict[str, Any] | None = None
        self.process: JsonProcess | None = None
        self._snapshot: str | None = None
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.widget = pg.PlotWidget(background=None)
        self.plot = self.widget.getPlotItem()
        self.plot.setLogMode(x=True, y=False)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "learning rate (log scale)", color=colors()["text"])
        self.plot.setLabel("left", "loss (smoothed)", color=colors()["text"])
        self.plot.setTitle("Loss against learning rate")
        style_plot(self.plot)
        self.curve = self.plot.plot(pen=pg.mkPen(CURVE_COLOR, width=2))
        self.mark = pg.InfiniteLine(
            angle=90, movable=False, pen=pg.mkPen(MARK_COLOR, width=2, style=Qt.PenStyle.DashLine)
        )
        self.mark.setVisible(False)
        self.plot.addItem(self.mark)
        self.point = pg.ScatterPlotItem(size=11, brush=pg.mkBrush(MARK_COLOR), pen=None)
        self.plot.addItem(self.point)
        self.again_button = QPushButton("Run again")
        self.apply_button = QPushButton("Apply")
        self.apply_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.again_button)
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.widget, 1)
        layout.addLayout(buttons)
        self.again_button.clicked.connect(self.run)
        self.apply_button.clicked.connect(self.apply)
        self.close_button.clicked.connect(self.close)
        self.resize(760, 480)

    def run(self) -> JsonProcess | None:
        """Start the range test (a child process); the plot fills when it ends."""
        if self.process is not None and self.process.running():
            return self.process
        path = self.project.path
        if path is None:
            self.status.setText("Save the project first: its data paths are relative to its file.")
            return None
        self._snapshot = write_snapshot(self.project)
        proc = self.process = JsonProcess(
            ["lr-find", str(path), "--json", "--snapshot", self._snapshot], self
        )
        proc.line.connect(self._line)
        proc.ended.connect(self._ended)
        self.apply_button.setEnabled(False)
        self.again_button.setEnabled(False)
        self.status.setText("Training with a growing learning rate (up to 100 batches) …")
        proc.start()
        return proc

    def _line(self, event: dict[str, Any]) -> None:
        if "lrs" in event:
            self.show_result(event)

    def _ended(self, code: int, error: str) -> None:
        remove(self._snapshot)
        self._snapshot = None
        self.again_button.setEnabled(True)
        if code != 0 or self.result is None:
            self.status.setText(f"The range test failed: {error or f'exit status {code}'}")
            self.finished_run.emit(False)
        else:
            self.finished_run.emit(True)

    def show_result(self, result: dict[str, Any]) -> None:
        """Draw a result (``{"suggested_lr", "method", "lrs", "losses"}``)."""
        self.result = result
        lrs, losses = result.get("lrs") or [], result.get("losses") or []
        self.curve.setData(lrs, losses)
        lr = result.get("suggested_lr")
        if lr is None or not lrs:
            self.mark.setVisible(False)
            self.point.setData([], [])
            self.status.setText("No suggestion: the loss was not finite from the first batch.")
            self.apply_button.setEnabled(False)
            return
        self.mark.setPos(math.log10(lr))  # log mode: positions are log10
        self.mark.setVisible(True)
        near = min(range(len(lrs)), key=lambda i: abs(math.log10(lrs[i]) - math.log10(lr)))
        self.point.setData([math.log10(lr)], [losses[near]])
        method = "steepest descent" if result.get("method") == "steepest" else "lowest loss / 10"
        self.status.setText(f"Suggested learning rate: {lr:.3g} ({method})")
        self.apply_button.setEnabled(True)
        finite = [v for v in losses if math.isfinite(v)]
        if finite:  # the early, flat part and the fall; not the explosion at the end
            top = min(max(finite), finite[0] * 1.5 if finite[0] > 0 else max(finite))
            self.plot.setYRange(min(finite) * 0.95, top, padding=0.02)

    def apply(self) -> None:
        """Set the optimizer's learning rate to the suggestion (one undoable edit)."""
        lr = (self.result or {}).get("suggested_lr")
        if lr is None:
            return
        training = with_learning_rate(self.project.training, lr)
        self.undo_stack.push(SetSection("training", training, f"Learning rate {lr:.3g}"))
        self.status.setText(f"Learning rate set to {lr:.3g} (Edit > Undo takes it back)")
        self.apply_button.setEnabled(False)

    def closeEvent(self, event: Any) -> None:
        if self.process is not None:
            self.process.kill()
        remove(self._snapshot)
        super().closeEvent(event)
