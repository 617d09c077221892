"""The Inside tab: what happens inside a finished run's model (issue 19).

For the run shown (the latest finished one, or one the dock hands over) and a
sample of its validation split, the tab shows every layer's activations (feature-map
grids for convolution layers, heat strips for dense and recurrent ones, with the
output shape and statistics), the training health (the gradient norm per layer, each
layer's weight histograms over the epochs, the plain-language warnings), the first
convolution's filters, Grad-CAM over the input, and the decision boundary for
two-feature data. Instead of a validation sample the input can be a file of the
user's own: dropped on the tab, chosen with "Choose file…", or handed over by Try it's
"See inside" (an image file, a drawn digit or typed values saved as ``.npy``); the
row at the top says which input is shown, with a thumbnail.

The window never imports TensorFlow: the numbers come from ``layerlab inspect RUN
--sample N | --file PATH --out DIR --arrays`` run as a child process (:class:`QProcess`), which
writes small downsampled arrays (``arrays/*.npy``) and ``inside.json``; this view
reads them when the process ends and draws them with pyqtgraph.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QProcess, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from gui import theme
from gui.training.boundary_view import CLASS_COLOURS, BoundaryView, field_rgb, smooth
from gui.training.inside_input import InputRow
from gui.training.try_it import TryItView

MAX_CARDS = 40
"""Most layers drawn as activation cards (the rest are listed in the text)."""


def _maps_grid(maps: np.ndarray, pad: int = 1) -> np.ndarray:
    """(n, h, w) maps in a near-square grid (NaN between them: drawn as background)."""
    n, h, w = maps.shape
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan, np.float32)
    for i, m in enumerate(maps):
        r, c = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = m
    return out


def _card_image(kind: str, values: np.ndarray) -> np.ndarray:
    if kind == "maps":
        return _maps_grid(values)
    if kind == "strip":
        return values.T.astype(np.float32)
    v = values.ravel().astype(np.float32)
    cols = max(1, int(math.ceil(math.sqrt(v.size * 8))))
    rows = int(math.ceil(v.size / cols))
    out = np.full(rows * cols, np.nan, np.float32)
    out[: v.size] = v
    return out.reshape(rows, cols)


def _rgba(data: np.ndarray, levels: tuple[float, float] | None = None) -> np.ndarray:
    """``data`` (rows down) coloured with the viridis map as (rows, cols, 4) uint8; NaN
    cells (the padding of a grid or of a strip's last row) are transparent, so they
    cannot be read as units at the lowest value."""
    finite = np.isfinite(data)
    values = data[finite]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    lo, hi = levels or (lo, hi if hi > lo else lo + 1e-6)
    lut = pg.colormap.get("viridis").getLookupTable(nPts=256)
    scaled = np.clip((np.nan_to_num(data, nan=lo) - lo) / (hi - lo), 0.0, 1.0)
    out = np.zeros((*data.shape, 4), np.uint8)
    out[..., :3] = lut[np.round(scaled * 255).astype(int)][..., :3]
    out[..., 3] = np.where(finite, 255, 0)
    return out


def heat_overlay(heat: np.ndarray) -> np.ndarray:
    """Grad-CAM's heat (0..1, rows down) as RGBA whose opacity grows with the heat: the
    input shows through where the class found nothing and is coloured where it did."""
    rgba = _rgba(heat, (0.0, 1.0))
    strength = np.clip(np.nan_to_num(heat, nan=0.0), 0.0, 1.0)
    rgba[..., 3] = np.round(30 + 195 * strength).astype(np.uint8)
    return rgba


def _image_item(data: np.ndarray, levels: tuple[float, float] | None = None) -> pg.ImageItem:
    """An ImageItem drawing ``data`` (rows down) with the viridis colour map (see
    :func:`_rgba`)."""
    return _rgba_item(_rgba(data, levels))


def _rgba_item(rgba: np.ndarray) -> pg.ImageItem:
    """An ImageItem drawing an RGBA picture (rows down; ImageItem takes (x, y))."""
    return pg.ImageItem(np.transpose(rgba, (1, 0, 2)), levels=(0, 255))


class InsideView(QWidget):
    """The Inside tab (see the module docstring)."""

    finished = Signal(bool)
    """Emitted when a computation ends: True when it drew something."""

    def __init__(self, latest_run: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.latest_run = latest_run  # () -> run dir or None: shown when the tab opens
        self.run_dir: str | None = None
        self.manifest: dict[str, Any] = {}
        self.process: QProcess | None = None
        self.cards: dict[str, tuple[Any, Any]] = {}  # layer name -> (label, view box)
        self.highlighted: str | None = None
        self._wanted_layer: str | None = None
        self._stale = False
        self._out = tempfile.TemporaryDirectory(prefix="layerlab-inside-")
        self._build()
        self.setAcceptDrops(True)

    # ------------------------------------------------------------------------ layout
    def _build(self) -> None:
        c = theme.colors()
        top = QHBoxLayout()
        self.run_label = QLabel("No finished run yet: train the model, then look inside it.")
        self.run_label.setWordWrap(True)
        self.input_row = InputRow()
        self.input_row.file_chosen.connect(self.set_file)
        self.input_row.samples_wanted.connect(self.use_samples)
        self.show_button = QPushButton("Look inside")
        self.show_button.clicked.connect(self.compute)
        top.addWidget(self.run_label, 1)
        top.addWidget(self.input_row)
        top.addWidget(self.show_button)
        self.status = QLabel("")
        self.status.setStyleSheet(f"color: {c['muted']};")
        self.status.setWordWrap(True)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.activations = pg.GraphicsLayoutWidget()
        self.activations.setBackground(c["base"])
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.activations)
        self.activations_scroll = scroll
        self.tabs.addTab(scroll, "Activations")

        health = QWidget()
        hl = QVBoxLayout(health)
        self.warnings_label = QLabel("")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setTextFormat(Qt.TextFormat.RichText)
        self.gradient_plot = pg.PlotWidget(background=c["base"])
        self.gradient_plot.setTitle("Gradient norm per layer (last epoch)")
        self.gradient_plot.setLabel("left", "log10 of the norm")
        self.layer_box = QComboBox()
        self.layer_box.currentIndexChanged.connect(self._draw_histograms)
        self.histogram_plot = pg.PlotWidget(background=c["base"])
        self.histogram_plot.setLabel("bottom", "weight value")
        self.histogram_plot.setLabel("left", "epoch")
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Weights of"))
        pick.addWidget(self.layer_box, 1)
        hl.addWidget(self.warnings_label)
        hl.addWidget(self.gradient_plot, 1)
        hl.addLayout(pick)
        hl.addWidget(self.histogram_plot, 1)
        self.tabs.addTab(health, "Health")

        self.pictures = pg.GraphicsLayoutWidget()
        self.pictures.setBackground(c["base"])
        self.tabs.addTab(self.pictures, "Grad-CAM and filters")
        self.boundary_view = BoundaryView()  # a finished run's field, or live while one trains
        self.boundary_plot = self.boundary_view.plot
        self.tabs.addTab(self.boundary_view, "Decision boundary")
        self.try_it = TryItView()
        self.tabs.addTab(self.try_it, "Try it")
        self.try_it.see_inside.connect(self.see_file)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)
        for view in self.findChildren(QGraphicsView):  # a dropped file lands on the tab
            view.setAcceptDrops(False)  # (or on Try it, which takes it itself)
            view.viewport().setAcceptDrops(False)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if (self.run_dir is None or self._stale) and self.latest_run is not None:
            self._stale = False
            latest = self.latest_run()
            if latest is not None and (str(latest) != self.run_dir or self.manifest == {}):
                self.show_run(str(latest))

    def on_boundary(self, event: dict[str, Any]) -> None:
        """A ``boundary`` event of the run training now: the Decision boundary view
        follows it live (the finished run's field replaces it when computed)."""
        self.boundary_view.add_event(event)

    def run_ended(self) -> None:
        """A run ended: show the newest finished run (now if the tab is shown, else
        when it is next shown), so the tab never shows a stale run."""
        if self.latest_run is None:
            return
        latest = self.latest_run()
        if latest is None or str(latest) == self.run_dir:
            return
        if self.isVisible():
            self.show_run(str(latest))
        else:
            self._stale = True

    # ------------------------------------------------------------------ computing
    def show_run(self, run_dir: str | os.PathLike, compute: bool = True) -> None:
        """Show ``run_dir`` (and look inside it for the chosen sample)."""
        self.run_dir = str(run_dir)
        self.run_label.setText(f"Run {Path(run_dir).name}")
        self.try_it.set_run(self.run_dir)
        if compute:
            self.compute()

    def set_file(self, path: str | os.PathLike) -> None:
        """Look inside for the input read from the file at ``path`` (dropped or chosen)."""
        self.input_row.set_file(str(path))
        if self.run_dir is None:
            self.status.setText("Train a model first, then look inside it for this file.")
            return
        self.compute()

    def see_file(self, path: str) -> None:
        """Try it's "See inside": the activations for its input."""
        self.tabs.setCurrentIndex(0)
        self.set_file(path)

    def use_samples(self) -> None:
        """Back to the validation split's samples."""
        self.input_row.set_file(None)
        self.compute()

    def dragEnterEvent(self, event: Any) -> None:
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            self.set_file(urls[0])

    def command(self) -> list[str]:
        """The child process's command line."""
        cmd = [sys.executable, "-m", "engine.cli", "inspect", str(self.run_dir)]
        return [*cmd, *self.input_row.arguments(), "--out", self._out.name, "--arrays"]

    def compute(self) -> None:
        """Run ``layerlab inspect`` in a child process for the run and sample shown."""
        if self.run_dir is None:
            return
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.kill()
            self.process.waitForFinished(2000)
        cmd = self.command()
        process = self.process = QProcess(self)
        process.setProgram(cmd[0])
        process.setArguments(cmd[1:])
        process.finished.connect(lambda code, _status, p=process: self._done(p, code))
        process.errorOccurred.connect(lambda error, p=process: self._failed(p, error))
        self.status.setText(f"Looking inside ({self.input_row.which()})…")
        self.show_button.setEnabled(False)
        process.start()

    def _failed(self, process: QProcess, error: QProcess.ProcessError) -> None:
        """The child could not start (no Python there): ``finished`` never comes."""
        if process is not self.process or error != QProcess.ProcessError.FailedToStart:
            return
        self.show_button.setEnabled(True)
        self.status.setText(f"Could not look inside: {process.errorString()}")
        self.finished.emit(False)

    def _done(self, process: QProcess, code: int) -> None:
        if process is not self.process or not isValid(self.show_button):
            return  # an older process, or the view is gone (the app is quitting)
        self.show_button.setEnabled(True)
        if code != 0:
            err = bytes(process.readAllStandardError().data()).decode("utf-8", "replace").strip()
            line = next(
                (x for x in reversed(err.splitlines()) if x.startswith("error:")),
                err.splitlines()[-1] if err else f"exit status {code}",
            )
            self.input_row.keep_shown(self.manifest)  # the row names what is still drawn
            reason = line.removeprefix("error: ")
            if self.manifest:
                reason = f"{reason.rstrip('.')}. Still showing {self.input_row.which()}."
            self.status.setText(f"Could not look inside: {reason}")
            self.finished.emit(False)
            return
        self.load(self._out.name)
        self.finished.emit(True)

    # -------------------------------------------------------------------- drawing
    def load(self, out_dir: str | os.PathLike) -> None:
        """Draw what ``layerlab inspect --arrays`` wrote into ``out_dir``."""
        out = Path(out_dir)
        self.manifest = json.loads((out / "inside.json").read_text(encoding="utf-8"))
        arrays = out / "arrays"
        self._draw_activations(arrays)
        self._draw_health()
        self._draw_pictures(arrays)
        self._draw_boundary(arrays)
        self.input_row.show_source(self.manifest, arrays)
        n = len(self.manifest.get("layers", []))
        file = self.manifest.get("file")
        which = f"File {Path(file).name}" if file else f"Sample {self.manifest.get('sample')}"
        self.status.setText(
            f"{which}: {n} layers. Statistics are of each layer's output for this "
            "input; large outputs are shown downsampled."
        )

    def _draw_activations(self, arrays: Path) -> None:
        w = self.activations
        w.clear()
        self.cards = {}
        self.highlighted = None
        layers = self.manifest.get("layers", [])
        for row in layers[:MAX_CARDS]:
            values = np.load(arrays / row["array"])
            label = w.addLabel(_card_text(row), justify="left")
            box = w.addViewBox(lockAspect=True, enableMouse=False)
            box.invertY(True)
            box.addItem(_image_item(_card_image(row["kind"], values)))
            self.cards[row["name"]] = (label, box)
            w.nextRow()
        w.setMinimumHeight(120 * min(len(layers), MAX_CARDS))
        if self._wanted_layer is not None:
            wanted, self._wanted_layer = self._wanted_layer, None
            QTimer.singleShot(0, lambda: self.show_layer(wanted))

    # ------------------------------------------------------------ a card's activations
    def show_layer(self, name: str) -> bool:
        """Scroll to and highlight layer ``name``'s activations (a card selected on the
        canvas); remembered until they are computed. False when the run has no such
        layer."""
        found = self._card_name(name)
        if found is None:
            if not self.cards:
                self._wanted_layer = name
            return False
        for other, (label, box) in self.cards.items():
            row = next(r for r in self.manifest.get("layers", []) if r["name"] == other)
            on = other == found
            label.setText(_card_text(row, highlight=on), justify="left")
            box.setBorder(pg.mkPen(theme.colors()["highlight"], width=3) if on else None)
        self.highlighted = found
        label, _box = self.cards[found]
        top = self.activations.mapFromScene(label.sceneBoundingRect().topLeft())
        bar = self.activations_scroll.verticalScrollBar()
        bar.setValue(max(0, min(bar.maximum(), int(top.y()) - 8)))
        return True

    def _card_name(self, name: str) -> str | None:
        if name in self.cards:
            return name
        lowered = {k.lower(): k for k in self.cards}
        return lowered.get(name.lower())

    def _draw_health(self) -> None:
        records = self.manifest.get("health") or []
        self.gradient_plot.clear()
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        if not records:
            self.warnings_label.setText(
                "This run has no health records (training.health was off, or it ran "
                "before they were collected)."
            )
            self.layer_box.blockSignals(False)
            self.histogram_plot.clear()
            return
        last = records[-1]
        warnings = last.get("warnings") or []
        self.warnings_label.setText(
            "<br>".join(f"⚠ {w}" for w in warnings)
            if warnings
            else f"Epoch {last['epoch']}: no warnings (gradients reach every layer)."
        )
        rows = [r for r in last["layers"] if r.get("gradient_norm") is not None]
        if rows:
            norms = np.array([r["gradient_norm"] for r in rows], float)
            positive = norms[norms > 0]
            floor = np.log10(positive.min()) - 1 if positive.size else -1.0
            logs = np.where(norms > 0, np.log10(np.maximum(norms, 1e-300)), floor)
            base = min(floor, float(logs.min())) - 0.5
            self.gradient_plot.addItem(
                pg.BarGraphItem(
                    x=np.arange(len(rows)),
                    height=logs - base,
                    y0=base,
                    width=0.7,
                    brush=pg.mkBrush(37, 99, 235, 200),
                )
            )
            axis = self.gradient_plot.getAxis("bottom")
            step = max(1, math.ceil(len(rows) / 8))
            axis.setTicks([[(i, rows[i]["name"]) for i in range(0, len(rows), step)]])
        for r in last["layers"]:
            if r.get("weight_hist"):
                self.layer_box.addItem(r["name"])
        self.layer_box.blockSignals(False)
        self._draw_histograms()

    def _draw_histograms(self) -> None:
        """The chosen layer's weight histogram per epoch, one line per epoch (later
        epochs darker), like TensorBoard's distributions."""
        plot = self.histogram_plot
        plot.clear()
        name = self.layer_box.currentText()
        records = self.manifest.get("health") or []
        rows = [
            (rec["epoch"], r["weight_hist"])
            for rec in records
            for r in rec["layers"]
            if r["name"] == name and r.get("weight_hist")
        ]
        for n, (epoch, hist) in enumerate(rows):
            counts = np.asarray(hist["counts"], float)
            edges = np.linspace(hist["lo"], hist["hi"], len(counts) + 1)
            centres = (edges[:-1] + edges[1:]) / 2
            top = counts.max() or 1.0
            shade = int(200 - 160 * (n + 1) / len(rows))
            plot.plot(
                centres,
                epoch + 0.9 * counts / top,
                pen=pg.mkPen((shade, shade, 255 if shade < 120 else 230), width=1.5),
                fillLevel=epoch,
                brush=pg.mkBrush(37, 99, 235, 40),
            )

    def _draw_pictures(self, arrays: Path) -> None:
        w = self.pictures
        w.clear()
        cam = self.manifest.get("grad_cam")
        if cam:
            image = np.load(arrays / cam["input"]).astype(np.float32)
            grey = image.mean(-1) if image.ndim == 3 else image
            heat = np.load(arrays / cam["array"])
            label = cam.get("class_name") or cam["class_index"]
            w.addLabel(f"<b>Grad-CAM</b> for class {label} (layer {cam['layer']})", colspan=2)
            w.nextRow()
            left = w.addViewBox(lockAspect=True, enableMouse=False)
            left.invertY(True)
            left.addItem(_grey_item(grey))
            right = w.addViewBox(lockAspect=True, enableMouse=False)
            right.invertY(True)
            right.addItem(_grey_item(grey))
            right.addItem(_rgba_item(heat_overlay(heat)))
            w.nextRow()
        found = self.manifest.get("filters")
        if found:
            images = np.load(arrays / found["array"])
            maps = images.mean(-1) if images.ndim == 4 else images
            w.addLabel(f"<b>Filters</b> of {found['layer']}", colspan=2)
            w.nextRow()
            box = w.addViewBox(lockAspect=True, enableMouse=False, colspan=2)
            box.invertY(True)
            box.addItem(_image_item(_maps_grid(maps), (0.0, 1.0)))
        if not cam and not found:
            w.addLabel("Grad-CAM and filters need a model with convolution layers.")

    def _draw_boundary(self, arrays: Path) -> None:
        plot = self.boundary_plot
        plot.clear()
        if not self.manifest.get("decision_boundary"):
            plot.setTitle("The decision boundary is drawn for data with two features.")
            return
        field = np.load(arrays / "boundary.npz")
        classes, conf = field["classes"], field["confidence"]
        xs, ys = field["x"], field["y"]
        image = smooth(field_rgb(classes, conf))
        item = pg.ImageItem(np.transpose(image, (1, 0, 2)), levels=(0, 255))  # (x, y, rgb)
        item.setRect(xs[0], ys[0], xs[-1] - xs[0], ys[-1] - ys[0])
        plot.addItem(item)
        points, labels = field["points"], field["labels"]
        brushes = [pg.mkBrush(*(0.8 * CLASS_COLOURS[int(c) % len(CLASS_COLOURS)])) for c in labels]
        plot.addItem(
            pg.ScatterPlotItem(
                points[:, 0], points[:, 1], size=6, brush=brushes, pen=pg.mkPen("w", width=0.8)
            )
        )
        plot.setTitle("Decision boundary over the plane (standardised features)")


def _card_text(row: dict[str, Any], highlight: bool = False) -> str:
    shape = "×".join(str(s) for s in row["output_shape"])
    name = f"<b>{row['name']}</b>"
    if highlight:
        name = f"<span style='background-color:#fde68a; color:#111'>&nbsp;{name}&nbsp;</span>"
    return (
        f"{name} ({row['type']}) {shape}<br>"
        f"mean {row['mean']:.3g} · std {row['std']:.3g} · zeros {row['zero_fraction']:.0%}"
    )


def _grey_item(image: np.ndarray) -> pg.ImageItem:
    item = pg.ImageItem(image.T)
    lo, hi = float(image.min()), float(image.max())
    item.setLevels((lo, hi if hi > lo else lo + 1e-6))
    return item
