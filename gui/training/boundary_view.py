"""The decision boundary as a coloured field with the training points, like
TensorFlow Playground (issue 19).

:class:`BoundaryView` draws the ``boundary`` events a run on two-feature data sends
(:mod:`engine.train.boundary`) in the Live tab and the Inside tab's Decision boundary, redrawn at most :data:`REDRAW_HZ`
times a second (the newest field wins); the Inside tab draws a finished run's field
with :func:`field_rgb` too.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

from gui.theme import colors

REDRAW_HZ = 10
CLASS_COLOURS = np.array(
    [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
     [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]],
    float,
)  # fmt: skip


def field_rgb(classes: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """(rows, cols) classes and top probabilities 0..1 -> an RGB uint8 field: pale
    where the model is unsure, deeper where it is sure."""
    base = CLASS_COLOURS[np.asarray(classes, int) % len(CLASS_COLOURS)]
    strength = np.clip((np.asarray(confidence, float) - 0.5) * 2, 0, 1)[..., None]
    return (255 - (255 - base) * (0.25 + 0.45 * strength)).astype(np.uint8)


def smooth(rgb: np.ndarray, factor: int = 4) -> np.ndarray:
    """``rgb`` (rows, cols, 3) upsampled ``factor`` times by bilinear interpolation, so
    a coarse field is drawn without stair steps."""
    rows, cols = rgb.shape[:2]
    a = rgb.astype(np.float32)
    ry = np.linspace(0, rows - 1, rows * factor)
    rx = np.linspace(0, cols - 1, cols * factor)
    y0 = np.floor(ry).astype(int)
    x0 = np.floor(rx).astype(int)
    y1, x1 = np.minimum(y0 + 1, rows - 1), np.minimum(x0 + 1, cols - 1)
    fy, fx = (ry - y0)[:, None, None], (rx - x0)[None, :, None]
    top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
    bottom = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.uint8)


def _grid(text: str, grid: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.uint8).reshape(grid, grid)


class BoundaryView(QWidget):
    """A plot of the newest decision boundary of a run (see the module docstring)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        c = colors()
        self.plot = pg.PlotWidget(background=c["base"])
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "x1 (standardised)")
        self.plot.setLabel("left", "x2")
        self.image = pg.ImageItem()
        self.points = pg.ScatterPlotItem(size=5, pen=pg.mkPen("w", width=0.6))
        self.plot.addItem(self.image)
        self.plot.addItem(self.points)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.epoch = 0
        self.drawn = 0  # fields drawn (tests)
        self.classes: np.ndarray | None = None
        self._pending: dict[str, Any] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(1000 / REDRAW_HZ))
        self._timer.timeout.connect(self._draw_pending)
        self.reset()

    def reset(self) -> None:
        """Forget the run drawn (a new run starts)."""
        self._pending = None
        self.classes = None
        self.image.clear()
        self.points.clear()
        self.plot.setTitle("Decision boundary")

    def add_event(self, event: dict[str, Any]) -> None:
        """A ``boundary`` event: drawn now, or at the next redraw if one just happened."""
        if "points" in event:  # a run's first field: whatever the plot showed goes
            self.plot.clear()
            self.plot.addItem(self.image)
            self.plot.addItem(self.points)
        if "points" in event:  # the first event: the training points, drawn once
            pts = np.asarray(event["points"], float).reshape(-1, 2)
            labels = np.asarray(event.get("labels") or [0] * len(pts), int)
            brushes = [pg.mkBrush(*(0.8 * CLASS_COLOURS[c % len(CLASS_COLOURS)])) for c in labels]
            self.points.setData(pts[:, 0], pts[:, 1], brush=brushes)
        self._pending = event
        if not self._timer.isActive():
            self._draw_pending()
            self._timer.start()

    def _draw_pending(self) -> None:
        event, self._pending = self._pending, None
        if event is None:
            return
        grid = int(event["grid"])
        self.classes = _grid(event["classes"], grid)
        confidence = _grid(event["confidence"], grid) / 255.0
        self.set_field(self.classes, confidence, event["x"], event["y"])
        self.epoch = int(event.get("epoch") or 0)
        step = event.get("step")
        when = f"epoch {self.epoch}" + (f", batch {step}" if step else "")
        self.plot.setTitle(f"Decision boundary · {when}")
        self.drawn += 1

    def set_field(self, classes: np.ndarray, confidence: np.ndarray, xr: Any, yr: Any) -> None:
        """Draw a field: rows are the second feature, ascending; ``xr``/``yr`` the
        first and last grid values of each axis."""
        rgb = smooth(field_rgb(classes, confidence))
        self.image.setImage(np.transpose(rgb, (1, 0, 2)), levels=(0, 255))  # (x, y, rgb)
        x0, x1 = float(xr[0]), float(xr[-1])
        y0, y1 = float(yr[0]), float(yr[-1])
        self.image.setRect(x0, y0, x1 - x0, y1 - y0)
