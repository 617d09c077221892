"""Try it (the Inside tab, issue 19): give the selected run's model an input and see
its answer.

- Square single-channel inputs of side 8 or 28 (the digits presets, MNIST-like
  data): draw with the mouse on :class:`DrawCanvas`. Strokes are painted at
  :data:`CANVAS_SIDE` pixels and averaged down to the input's side, ink 1 on paper 0
  as the digits source scales its pixels (``/ 16`` to 0..1), or ink 0 on paper 1 when
  the run's training inputs are mostly bright (the engine's ``ink``).
- Images: drop an image file on the panel (or Choose Image…); it is decoded,
  resized and scaled as the run's images were.
- Tables: one field per feature, prefilled with a validation sample (raw values:
  the run's standardisation is applied in the engine, as in training).

After an answer, "See inside" hands the same input to the Inside tab's activations
and Grad-CAM (signal ``see_inside``: the image file, or the drawing or typed values
saved as a ``.npy`` in a temporary folder).

The answer (class probabilities as bars with class names, or the regression
values) comes from the engine service (request ``try_it``,
:mod:`engine.service.handlers`), which loads the run's model once and keeps it: the
window never loads TensorFlow. Requests are throttled (one per :data:`DEBOUNCE_MS`
while the input changes, with the newest input) and only the newest answer counts.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from gui import theme
from gui.engine_service import LatestRequest, shared_service

DEBOUNCE_MS = 100
CANVAS_SIDE = 224
"""Pixels of the drawing (averaged down to the model's input side)."""
PEN_FRACTION = 0.1
"""Least stroke width as a fraction of the canvas (an MNIST stroke: ~3 of 28 pixels);
at least 1.3 input pixels wide (the 8x8 digits' strokes fill whole cells)."""
MAX_BARS = 20
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif)"


class DrawCanvas(QWidget):
    """A square to draw on with the mouse (left button draws, right button erases).
    ``ink`` ``"light"``: white ink on black paper; ``"dark"``: black ink on white.

    Signals:
        changed(): a stroke added ink (while drawing, not only at the end).
    """

    changed = Signal()

    def __init__(self, side: int, ink: str = "light", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.side = side
        self.paper = 255 if ink == "dark" else 0
        self.image = QImage(CANVAS_SIDE, CANVAS_SIDE, QImage.Format.Format_Grayscale8)
        self.image.fill(self.paper)
        self._last: QPointF | None = None
        self._erase = False
        self.setFixedSize(CANVAS_SIDE, CANVAS_SIDE)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw with the left mouse button; the right button erases")

    def clear(self) -> None:
        self.image.fill(self.paper)
        self.update()
        self.changed.emit()

    def pixels(self) -> np.ndarray:
        """The drawing as the model's (side, side) input: block means, 0..1."""
        ptr = self.image.constBits()
        stride = self.image.bytesPerLine()
        raw = np.frombuffer(ptr, np.uint8, count=stride * CANVAS_SIDE).reshape(CANVAS_SIDE, stride)
        a = raw[:, :CANVAS_SIDE].astype(np.float32) / 255.0
        edges = np.linspace(0, CANVAS_SIDE, self.side + 1).astype(int)
        rows = np.add.reduceat(a, edges[:-1], axis=0) / np.diff(edges)[:, None]
        return np.add.reduceat(rows, edges[:-1], axis=1) / np.diff(edges)[None, :]

    def stroke(self, points: list[tuple[float, float]], erase: bool = False) -> None:
        """Draw a stroke through ``points`` given as fractions (0..1) of the canvas."""
        scaled = [QPointF(x * CANVAS_SIDE, y * CANVAS_SIDE) for x, y in points]
        self._paint(scaled, erase)

    def _paint(self, points: list[QPointF], erase: bool) -> None:
        painter = QPainter(self.image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        width = CANVAS_SIDE * max(PEN_FRACTION, 1.3 / self.side) * (2.0 if erase else 1.0)
        paper, ink = QColor(self.paper, self.paper, self.paper), 255 - self.paper
        pen = QPen(paper if erase else QColor(ink, ink, ink), width)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        if len(points) == 1:
            painter.drawPoint(points[0])
        for a, b in zip(points, points[1:], strict=False):
            painter.drawLine(a, b)
        painter.end()
        self.update()
        self.changed.emit()

    def mousePressEvent(self, event: Any) -> None:
        self._erase = event.button() == Qt.MouseButton.RightButton
        self._last = event.position()
        self._paint([self._last], self._erase)

    def mouseMoveEvent(self, event: Any) -> None:
        if self._last is None:
            return
        pos = event.position()
        self._paint([self._last, pos], self._erase)
        self._last = pos

    def mouseReleaseEvent(self, event: Any) -> None:
        self._last = None

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        painter.drawImage(0, 0, self.image)
        painter.setPen(QPen(QColor(90, 90, 90), 1))
        painter.drawRect(0, 0, CANVAS_SIDE - 1, CANVAS_SIDE - 1)
        painter.end()


def _pixel_image(pixels: np.ndarray, scale: int) -> QImage:
    """A (h, w) 0..1 array as a greyscale QImage, each pixel ``scale`` wide."""
    a = (np.clip(pixels, 0, 1) * 255).astype(np.uint8)
    a = np.ascontiguousarray(np.repeat(np.repeat(a, scale, 0), scale, 1))
    h, w = a.shape
    return QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


class TryItView(QWidget):
    """The Try it panel (see the module docstring).

    Signals:
        answered(dict): the engine's answer for the newest input (tests).
        see_inside(str): "See inside" was pressed: a file holding the input shown.
    """

    answered = Signal(dict)
    see_inside = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.run_dir: str | None = None
        self.info: dict[str, Any] | None = None
        self.answer: dict[str, Any] | None = None
        self.canvas: DrawCanvas | None = None
        self.fields: list[QLineEdit] = []
        self._image: str | None = None
        self._request = LatestRequest(self)
        self._request.done.connect(self._on_answer)
        self._request.failed.connect(self._on_failed)
        self._pending: dict[str, Any] | None = None
        self._retrying = False
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._send)
        self._saved = tempfile.TemporaryDirectory(prefix="layerlab-try-")
        self._saves = 0
        self._build()

    # ------------------------------------------------------------------------ layout
    def _build(self) -> None:
        c = theme.colors()
        self.hint = QLabel("Train a model, then try it here with your own input.")
        self.hint.setWordWrap(True)
        self.input_box = QWidget()
        self.input_layout = QVBoxLayout(self.input_box)
        self.input_layout.setContentsMargins(0, 0, 0, 0)
        self.choose_button = QPushButton("Choose Image…")
        self.choose_button.setToolTip("Or drop an image file on this panel")
        self.choose_button.clicked.connect(self._choose_image)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self._clear)
        self.inside_button = QPushButton("See inside")
        self.inside_button.setToolTip("This input's activations and Grad-CAM (Activations tab)")
        self.inside_button.clicked.connect(self._see_inside)
        self.inside_button.setEnabled(False)
        self.seen = QLabel()
        self.seen.setToolTip("What the model takes: the drawing at its input's size")
        left = QVBoxLayout()
        left.addWidget(self.hint)
        left.addWidget(self.input_box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.choose_button)
        buttons.addStretch(1)
        left.addLayout(buttons)
        left.addWidget(self.seen)
        left.addStretch(1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setMinimumWidth(CANVAS_SIDE + 24)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(left_widget)
        scroll.setMinimumWidth(CANVAS_SIDE + 48)
        scroll.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)

        self.result = QLabel("")
        self.result.setTextFormat(Qt.TextFormat.RichText)
        self.result.setWordWrap(True)
        self.bars = pg.PlotWidget(background=c["base"])
        self.bars.setMenuEnabled(False)
        self.bars.hideButtons()
        self.bars.setMouseEnabled(False, False)
        self.bars.setXRange(0, 1, padding=0.02)
        self.bars.setLabel("bottom", "probability")
        self.bars.getAxis("left").setStyle(tickLength=0)
        self.bar_item: pg.BarGraphItem | None = None
        right = QVBoxLayout()
        head = QHBoxLayout()
        head.addWidget(self.result, 1)
        head.addWidget(self.inside_button, 0, Qt.AlignmentFlag.AlignTop)
        right.addLayout(head)
        right.addWidget(self.bars, 1)
        right.addStretch(0)
        layout = QHBoxLayout(self)
        layout.addWidget(scroll)
        layout.addLayout(right, 1)
        self._set_controls(None)

    def _set_controls(self, kind: str | None) -> None:
        self.clear_button.setVisible(kind == "draw")
        self.inside_button.setVisible(kind in ("draw", "image", "table"))
        self.inside_button.setEnabled(False)
        self.choose_button.setVisible(kind in ("draw", "image"))
        self.seen.setVisible(kind in ("draw", "image"))

    # ------------------------------------------------------------------------ the run
    def set_run(self, run_dir: str | None) -> None:
        """Try ``run_dir``'s model (asks the engine what input it takes)."""
        if run_dir == self.run_dir and self.info is not None:
            return
        self.run_dir = run_dir
        self.info = self.answer = None
        self._image = None
        self._pending = None  # an input for the previous run's model
        self._debounce.stop()
        self._clear_inputs()
        self._set_controls(None)
        if run_dir is None:
            self.hint.setText("Train a model, then try it here with your own input.")
            return
        self.hint.setText("Loading the run's model…")
        if self.isVisible():
            self._ask({})
        # else: the engine loads the model when the panel is first shown (showEvent)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.run_dir is not None and self.info is None and not self._request.busy:
            self._ask({})

    def _clear_inputs(self) -> None:
        while self.input_layout.count():
            item = self.input_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
            elif item.layout() is not None:
                QWidget().setLayout(item.layout())  # deletes the layout's widgets
        self.canvas = None
        self.fields = []
        self.seen.clear()
        self.result.setText("")
        self.bars.clear()
        self.bar_item = None

    def _setup(self, info: dict[str, Any]) -> None:
        """Build the input for what the model takes (the first answer)."""
        self.info = info
        kind = info.get("kind")
        self._set_controls(kind)
        shape = "×".join(str(s) for s in info.get("shape") or [])
        if kind == "draw":
            side = int(info["shape"][0])
            self.canvas = DrawCanvas(side, info.get("ink", "light"))
            self.canvas.changed.connect(self._on_drawn)
            self.input_layout.addWidget(self.canvas)
            self.hint.setText(
                f"Draw a digit with the mouse (the model sees it as {side}×{side} pixels, "
                "below), or drop an image file here."
            )
        elif kind == "image":
            drop = QLabel(f"Drop an image file here\n(the model takes {shape} images)")
            drop.setAlignment(Qt.AlignmentFlag.AlignCenter)
            drop.setMinimumSize(CANVAS_SIDE, 120)
            drop.setStyleSheet("border: 2px dashed gray; color: gray;")
            self.input_layout.addWidget(drop)
            self.hint.setText("Try an image of your own.")
        elif kind == "table":
            form = QFormLayout()
            for name, value in zip(info["feature_names"], info.get("sample") or [], strict=False):
                field = QLineEdit(f"{value:.6g}")
                field.textEdited.connect(lambda _t: self._on_typed())
                form.addRow(name, field)
                self.fields.append(field)
            while len(self.fields) < len(info["feature_names"]):
                field = QLineEdit("0")
                field.textEdited.connect(lambda _t: self._on_typed())
                form.addRow(info["feature_names"][len(self.fields)], field)
                self.fields.append(field)
            self.input_layout.addLayout(form)
            self.hint.setText(
                "Type feature values (prefilled with a validation sample, in the data's own "
                "units: the run's standardisation is applied, as in training)."
            )
            self._on_typed()
        else:
            self.hint.setText(f"Try it takes drawings, images or feature values; this model "
                              f"takes {shape} inputs.")  # fmt: skip

    # ------------------------------------------------------------------------- inputs
    def _on_drawn(self) -> None:
        pixels = self.canvas.pixels() if self.canvas is not None else None
        if pixels is None:
            return
        self._image = None
        scale = max(1, 96 // pixels.shape[0])
        self.seen.setPixmap(QPixmap.fromImage(_pixel_image(pixels, scale)))
        self._pending = {"x": pixels.tolist()}
        self._schedule()

    def _on_typed(self) -> None:
        values = []
        for field in self.fields:
            try:
                values.append(float(field.text().replace(",", ".")))
                field.setStyleSheet("")
            except ValueError:
                field.setStyleSheet("background: #fdd;")
                self.result.setText("Every field needs a number.")
                return
        self._pending = {"x": values}
        self._schedule()

    def _schedule(self) -> None:
        """Ask :data:`DEBOUNCE_MS` after the first change not yet asked about (with the
        newest input then): quick strokes make one request, and a long stroke is
        answered every :data:`DEBOUNCE_MS` while it goes on."""
        if not self._debounce.isActive():
            self._debounce.start()

    def try_image(self, path: str | Path) -> None:
        """Give the model an image file (dropped or chosen)."""
        self._image = str(path)
        self._pending = {"image": str(path)}
        self._send()

    def _choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose an Image", "", IMAGE_FILTER)
        if path:
            self.try_image(path)

    def _clear(self) -> None:
        if self.canvas is not None:
            self.canvas.clear()

    def dragEnterEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls() and self.info and self.info.get("kind") in ("draw", "image"):
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.try_image(urls[0])
            event.acceptProposedAction()

    # ----------------------------------------------------------------------- requests
    def _send(self) -> None:
        self._ask(self._pending or {})

    def _ask(self, extra: dict[str, Any]) -> None:
        if self.run_dir is None:
            return
        shared_service()  # started if nothing started it yet
        if not self._request.submit("try_it", {"run_dir": self.run_dir, **extra}):
            self.result.setText("Waiting for the engine to start…")
            if not self._retrying:  # one retry loop, asking for the newest input
                self._retrying = True
                QTimer.singleShot(300, self._retry)

    def _retry(self) -> None:
        self._retrying = False
        self._ask(self._pending or {})

    def _on_failed(self, error: str) -> None:
        if self.info is None:
            self.hint.setText("This run's model cannot be tried.")
        self.result.setText(f"<span style='color:#b91c1c'>Could not try it: {error}</span>")

    def _on_answer(self, answer: dict[str, Any]) -> None:
        if self.info is None:
            self._setup(answer)
        self.answer = answer
        if "raw" in answer:  # an image file: show what the model took
            raw = np.asarray(answer["raw"], np.float32)
            grey = raw.mean(-1) if raw.ndim == 3 else raw
            scale = max(1, 96 // max(grey.shape))
            self.seen.setPixmap(QPixmap.fromImage(_pixel_image(grey, scale)))
        if "probabilities" in answer:
            self._draw_bars(answer["probabilities"], answer["class_names"])
        elif "values" in answer:
            values = ", ".join(f"{v:.4g}" for v in answer["values"])
            self.result.setText(f"<span style='font-size:16pt'>Prediction: <b>{values}</b></span>")
        self.inside_button.setEnabled(
            ("probabilities" in answer or "values" in answer)
            and (self._image is not None or "x" in (self._pending or {}))
        )
        self.answered.emit(answer)

    def input_file(self) -> str | None:
        """A file holding the input shown: the image file, or the drawn or typed values
        (saved as ``.npy`` when asked); None before any input."""
        if self._image is not None:
            return self._image
        x = (self._pending or {}).get("x")
        if x is None:
            return None
        self._saves += 1
        path = Path(self._saved.name) / f"input-{self._saves}.npy"
        np.save(path, np.asarray(x, np.float32))
        return str(path)

    def _see_inside(self) -> None:
        path = self.input_file()
        if path is not None:
            self.see_inside.emit(path)

    def _draw_bars(self, probabilities: list[float], names: list[str]) -> None:
        p = np.asarray(probabilities, float)
        order = np.argsort(-p)[:MAX_BARS]
        top = int(order[0])
        self.result.setText(
            f"<span style='font-size:16pt'>Prediction: <b>{names[top]}</b> ({p[top]:.0%})</span>"
        )
        shown = sorted(order) if len(p) <= MAX_BARS else list(order)
        ys = np.arange(len(shown))[::-1]  # the first class at the top
        brushes = [
            pg.mkBrush(37, 99, 235) if i == top else pg.mkBrush(148, 163, 184) for i in shown
        ]
        self.bars.clear()
        self.bar_item = pg.BarGraphItem(
            x0=np.zeros(len(shown)), y=ys, width=p[shown], height=0.7, brushes=brushes
        )
        self.bars.addItem(self.bar_item)
        muted = theme.colors()["muted"]
        for y, i in zip(ys, shown, strict=True):
            inside = p[i] > 0.85  # on the bar, in white; else just after its end
            label = pg.TextItem(
                f"{p[i]:.1%}", color="w" if inside else muted, anchor=(1 if inside else 0, 0.5)
            )
            label.setPos(float(p[i]) + (-0.01 if inside else 0.01), float(y))
            self.bars.addItem(label)
        self.bars.setMaximumHeight(max(180, 70 + 46 * len(shown)))  # no giant bars
        self.bars.getAxis("left").setTicks([[(int(y), names[i]) for y, i in zip(ys, shown)]])
        self.bars.setXRange(0, 1, padding=0.02)
        self.bars.setYRange(-0.6, len(shown) - 0.4, padding=0)

    def bar_heights(self) -> list[float]:
        """The probabilities drawn, class order (tests)."""
        if self.answer is None or "probabilities" not in self.answer:
            return []
        return [float(v) for v in self.answer["probabilities"]]
