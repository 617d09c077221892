"""The live view of a run: loss and metric curves, progress, controls and a log.

Curves follow the pyqtgraph advice for live data: every curve is created once
(the first time its metric appears) and afterwards only ``setData`` is called,
from a timer at :data:`REFRESH_HZ`, never per event. Points go into numpy buffers
that double when full; downsampling (``peak``) and clip-to-view keep a million
points cheap to draw. While a run goes on the axes stand still: the x axis spans the
planned epochs, and the y range changes only when a curve leaves it or fills too little
of it (:data:`Y_FILL`), so a tick redraws the curves, not the axes' ticks and labels.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import SIGNAL, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.human import duration
from engine.train.config import monitor_mode
from engine.train.execution import per_call_text
from engine.train.runs import read_json
from gui.theme import colors
from gui.training.boundary_view import BoundaryView
from gui.training.export_dialog import ExportDialog

REFRESH_HZ = 15
Y_FILL = 0.5
"""While a run goes on, a plot's y range is set anew when its curves leave it or span
less than this fraction of it; the new range leaves :data:`Y_MARGIN` of room."""
Y_MARGIN = 0.1
EMA_WEIGHT = 0.6
"""Smoothing of per-batch curves: each point keeps this much of the running average."""

TRAIN_COLORS = ("#2563eb", "#16a34a", "#9333ea", "#0891b2", "#ca8a04", "#db2777")
VAL_COLORS = ("#ea580c", "#dc2626", "#c026d3", "#0d9488", "#b45309", "#e11d48")
OVERLAY_COLORS = ("#64748b", "#a16207", "#be123c", "#0f766e", "#7c3aed", "#4d7c0f")
"""One colour per overlaid run; its training curves are solid, its validation dashed."""
PHASE_COLOR = "#b45309"
"""The vertical line where fine-tuning (phase 2 of a ``fine_tune`` run) begins."""
LEGEND_COLUMNS = 2
LEGEND_CHARS = 26
"""Legend names longer than this are cut in the middle (the full name is in the log)."""


def _short(text: str, limit: int = LEGEND_CHARS) -> str:
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[: keep - keep // 2] + "…" + text[len(text) - keep // 2 :]


def style_plot(plot: pg.PlotItem) -> None:
    """Axes, tick labels and title in the current theme's colours (light or dark)."""
    c = colors()
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(c["plot_axis"]))
        axis.setTextPen(pg.mkPen(c["text"]))
    title = plot.titleLabel.text
    if title:
        plot.setTitle(title, color=c["text"], size="9pt")


def _legend() -> pg.LegendItem:
    legend = pg.LegendItem(labelTextSize="8pt", labelTextColor=colors()["text"])
    legend.setColumnCount(LEGEND_COLUMNS)
    return legend


class Series:
    """A growing (x, y) buffer: appends are O(1) amortised, capacity doubles."""

    def __init__(self, capacity: int = 256) -> None:
        self.x = np.empty(capacity, dtype=np.float64)
        self.y = np.empty(capacity, dtype=np.float64)
        self.n = 0
        self.dirty = False

    def append(self, x: float, y: float) -> None:
        if self.n == len(self.x):
            self.x = np.concatenate([self.x, np.empty_like(self.x)])
            self.y = np.concatenate([self.y, np.empty_like(self.y)])
        self.x[self.n], self.y[self.n] = x, y
        self.n += 1
        self.dirty = True

    def clear(self) -> None:
        self.n = 0
        self.dirty = True

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x[: self.n], self.y[: self.n]


def _hold_y(view: pg.ViewBox) -> None:
    """Keep ``view``'s y range unless its curves leave it or fill less than
    :data:`Y_FILL` of it (then: their span, :data:`Y_MARGIN` of room on each side)."""
    bounds = view.childrenBounds()[1]
    if bounds is None:
        return
    low, high = bounds
    now_low, now_high = view.viewRange()[1]
    if now_low <= low and high <= now_high and high - low >= Y_FILL * (now_high - now_low):
        return
    room = (high - low) * Y_MARGIN or max(abs(high), 1.0) * Y_MARGIN
    view.setYRange(low - room, high + room, padding=0)


def _is_loss(name: str) -> bool:
    return "loss" in name


def _base(name: str) -> str:
    return name[4:] if name.startswith("val_") else name


class LivePlots(QWidget):
    """Loss (left) and metric (right) curves of the running run, plus overlays.

    Keys of :meth:`curve`: ``batch:<name>`` (raw per batch), ``smooth:<name>`` (its
    moving average), ``epoch:<name>`` (per epoch, ``val_<name>`` for validation).
    The x axis counts epochs; a batch sits at ``epoch - 1 + step / steps``.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._series: dict[str, Series] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._ema: dict[str, tuple[float, int]] = {}
        self._overlay_items: list[tuple[pg.PlotItem, pg.PlotDataItem]] = []
        self._colors: dict[str, int] = {"loss": 0}
        self.legends: dict[str, pg.LegendItem] = {}
        self.phase_markers: list[pg.InfiniteLine] = []
        self._y_held: set[Any] = set()  # views whose y range flush() keeps (a run goes on)
        self.phase_epoch = 0  # the first epoch of phase 2 (fine-tuning), 0: none shown
        self.smooth = QCheckBox("Smooth batches")
        self.smooth.setChecked(True)
        self.smooth.setToolTip(
            "Show a moving average of the per-batch values (the raw values stay faint behind it)"
        )
        self.log_scale = QCheckBox("Log scale")
        self.log_scale.setToolTip("Show the loss on a logarithmic axis")
        self.readout = QLabel("")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.loss_plot = self._make_plot("Loss")
        self.metric_plot = self._make_plot("Metrics")
        self._cross = []
        for plot in (self.loss_plot, self.metric_plot):
            line = pg.InfiniteLine(
                angle=90, movable=False, pen=pg.mkPen("#94a3b8", style=Qt.PenStyle.DotLine)
            )
            line.setVisible(False)
            plot.addItem(line, ignoreBounds=True)
            self._cross.append(line)
            plot.scene().sigMouseMoved.connect(lambda pos, p=plot: self._on_mouse_moved(p, pos))

        controls = self.controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(self.smooth)
        controls.addWidget(self.log_scale)
        controls.addStretch(1)
        self.readout.setStyleSheet("color: gray;")
        self.readout.setToolTip("The values at the epoch under the mouse")
        plots = QHBoxLayout()
        plots.setContentsMargins(0, 0, 0, 0)
        plots.addWidget(self._loss_widget, 1)
        plots.addWidget(self._metric_widget, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(plots, 1)
        layout.addWidget(self.readout)

        self.smooth.toggled.connect(self._on_smooth_toggled)
        self.log_scale.toggled.connect(lambda on: self.loss_plot.setLogMode(y=on))
        self.timer = QTimer(self)
        self.timer.setInterval(1000 // REFRESH_HZ)
        self.timer.timeout.connect(self._tick)

    def _make_plot(self, title: str) -> pg.PlotItem:
        """A plot with its legend under it (outside the data, never on the curves)."""
        widget = pg.GraphicsLayoutWidget()
        widget.setMinimumSize(180, 140)
        widget.setBackground(None)
        widget.ci.setContentsMargins(2, 2, 2, 2)
        plot = widget.addPlot(row=0, col=0)
        plot.setTitle(title, size="9pt")
        plot.showGrid(x=False, y=False)
        plot.setLabel("bottom", "epoch")
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)
        view = plot.getViewBox()
        view.sigRangeChangedManually.connect(lambda *_: self._y_held.discard(view))
        style_plot(plot)
        legend = _legend()
        widget.addItem(legend, row=1, col=0)
        self.legends[title] = legend
        if title == "Loss":
            self._loss_widget = widget
        else:
            self._metric_widget = widget
        return plot

    # ------------------------------------------------------------------- data
    def reset(self) -> None:
        """Empty every live curve (a new run starts); overlays stay."""
        for series in self._series.values():
            series.clear()
        self._ema.clear()
        self.clear_phase()
        self._y_held = {plot.getViewBox() for plot in (self.loss_plot, self.metric_plot)}
        for view in self._y_held:
            view.enableAutoRange(y=False)
        self.flush()
        self.timer.start()

    def mark_phase(self, first_epoch: int, label: str = "fine-tune") -> None:
        """Draw a labelled vertical line on both plots where phase 2 (fine-tuning)
        begins: before epoch ``first_epoch``, where that epoch's batches start."""
        if first_epoch == self.phase_epoch:
            return
        self.clear_phase()
        self.phase_epoch = first_epoch
        for plot in (self.loss_plot, self.metric_plot):
            line = pg.InfiniteLine(
                pos=first_epoch - 1,
                angle=90,
                movable=False,
                pen=pg.mkPen(PHASE_COLOR, width=1.5, style=Qt.PenStyle.DashLine),
                label=label,
                labelOpts={"position": 0.92, "color": PHASE_COLOR, "anchors": [(0, 0), (0, 0)]},
            )
            line.setToolTip(
                f"Fine-tuning from epoch {first_epoch}: the unfrozen layers train at the "
                "lower learning rate"
            )
            plot.addItem(line, ignoreBounds=True)
            self.phase_markers.append(line)

    def clear_phase(self) -> None:
        """Remove the fine-tuning line (a new run starts)."""
        for plot, line in zip((self.loss_plot, self.metric_plot), self.phase_markers):
            plot.removeItem(line)
        self.phase_markers, self.phase_epoch = [], 0

    def finish(self) -> None:
        """Draw what is left and stop the refresh timer (the run ended)."""
        self.flush()
        self.timer.stop()
        for plot in (self.loss_plot, self.metric_plot):
            view = plot.getViewBox()
            if view in self._y_held:
                view.enableAutoRange(y=True)
            plot.enableAutoRange(x=True)
        self._y_held = set()

    def set_planned_epochs(self, first: int, last: int) -> None:
        """Fix the x axis to the run's epochs while it runs (the curves grow into it,
        and an x axis that does not move is cheaper to redraw)."""
        for plot in (self.loss_plot, self.metric_plot):
            plot.setXRange(first, max(first + 1, last), padding=0.02)

    def add_batch(self, event: dict[str, Any]) -> None:
        """Buffer one ``batch`` event (drawn at the next timer tick)."""
        steps = max(1, int(event.get("steps") or 1))
        x = int(event.get("epoch", 1)) - 1 + int(event.get("step", 0)) / steps
        for name, value in (event.get("logs") or {}).items():
            if name == "learning_rate" or not _finite(value):
                continue
            self._point(f"batch:{name}", name, x, value)
            mean, count = self._ema.get(name, (0.0, 0))
            mean, count = EMA_WEIGHT * mean + (1 - EMA_WEIGHT) * value, count + 1
            self._ema[name] = (mean, count)
            self._point(f"smooth:{name}", name, x, mean / (1 - EMA_WEIGHT**count))

    def add_epoch(self, event: dict[str, Any]) -> None:
        """Buffer one ``epoch`` event (train and validation values)."""
        x = float(event.get("epoch", 0))
        for name, value in (event.get("logs") or {}).items():
            if name == "learning_rate" or not _finite(value):
                continue
            self._point(f"epoch:{name}", name, x, value)

    def _point(self, key: str, name: str, x: float, y: float) -> None:
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = Series()
            self._curves[key] = self._make_curve(key, name)
        series.append(x, float(y))

    def _make_curve(self, key: str, name: str) -> pg.PlotDataItem:
        plot = self.loss_plot if _is_loss(name) else self.metric_plot
        base = _base(name)
        index = self._colors.setdefault(base, len(self._colors))
        color = TRAIN_COLORS[index % len(TRAIN_COLORS)]
        kind = key.split(":")[0]
        if kind == "batch":
            pen = pg.mkPen(pg.mkColor(color).lighter(160), width=1)
            curve = plot.plot(pen=pen)
            curve.setZValue(-10)
        elif kind == "smooth":
            faint = pg.mkColor(color)
            faint.setAlpha(150)
            curve = plot.plot(pen=pg.mkPen(faint, width=1.2))
            curve.setVisible(self.smooth.isChecked())
            curve.setZValue(-5)
        else:
            c = VAL_COLORS[index % len(VAL_COLORS)] if name.startswith("val_") else color
            curve = plot.plot(
                pen=pg.mkPen(c, width=2.5),
                symbol="o",
                symbolSize=6,
                symbolBrush=c,
                symbolPen=None,
                name=name,
            )
            self._legend_of(plot).addItem(curve, name)
        curve.setDownsampling(auto=True, method="peak")
        curve.setClipToView(True)
        return curve

    def _tick(self) -> None:
        """The refresh timer: draw, unless the plots are hidden (behind another tab, or
        the Training view closed): they catch up when shown."""
        if self.isVisible():
            self.flush()

    def flush(self) -> None:
        """Hand every changed buffer to its curve."""
        changed = set()
        for key, series in self._series.items():
            if series.dirty:
                series.dirty = False
                curve = self._curves[key]
                curve.setData(*series.data(), skipFiniteCheck=True)  # only finite points
                changed.add(curve.getViewBox())
        for view in changed:  # settle the axes now: one repaint per tick, not two
            if view in self._y_held:
                _hold_y(view)
            elif view is not None and view.autoRangeEnabled()[1]:
                view.updateAutoRange()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.flush()

    def _legend_of(self, plot: pg.PlotItem) -> pg.LegendItem:
        return self.legends["Loss" if plot is self.loss_plot else "Metrics"]

    def legend_labels(self, which: str = "Loss") -> list[str]:
        """The names in a plot's legend (``"Loss"`` or ``"Metrics"``), in order."""
        return [label.text for _sample, label in self.legends[which].items]

    def curve(self, key: str) -> pg.PlotDataItem | None:
        """The curve for ``key`` (see the class docstring), or None before its data came."""
        return self._curves.get(key)

    def curve_keys(self) -> list[str]:
        return list(self._curves)

    def _on_smooth_toggled(self, on: bool) -> None:
        for key, curve in self._curves.items():
            if key.startswith("smooth:"):
                curve.setVisible(on)

    # ---------------------------------------------------------------- overlay
    def overlay(self, histories: dict[str, dict[str, list[float]]]) -> None:
        """Show finished runs' per-epoch histories: one colour per run, training
        curves solid and validation curves dashed (thinner than the live run's, and
        without its dots).

        Args:
            histories: run label (``"#3 lr 0.01→0.001"``, see
                :meth:`gui.training.runs_panel.RunsPanel.run_label`) -> ``history.json``
                content (metric -> values per epoch). Replaces the previous overlay;
                an empty dict removes it.
        """
        for plot, item in self._overlay_items:
            plot.removeItem(item)
            self._legend_of(plot).removeItem(item)
        self._overlay_items.clear()
        for i, (run, history) in enumerate(histories.items()):
            color = OVERLAY_COLORS[i % len(OVERLAY_COLORS)]
            for name, values in history.items():
                if name == "learning_rate" or not isinstance(values, list) or not values:
                    continue
                y = np.array([v if _finite(v) else np.nan for v in values], dtype=float)
                x = np.arange(1, len(y) + 1, dtype=float)
                plot = self.loss_plot if _is_loss(name) else self.metric_plot
                style = Qt.PenStyle.DashLine if name.startswith("val_") else Qt.PenStyle.SolidLine
                label = f"{run}: {name}"
                item = pg.PlotDataItem(
                    x, y, pen=pg.mkPen(color, width=1.5, style=style), name=label
                )
                plot.addItem(item)
                short = f"{_short(run, max(8, LEGEND_CHARS - len(name) - 2))}: {name}"
                self._legend_of(plot).addItem(item, short)
                self._overlay_items.append((plot, item))

    def overlay_items(self) -> list[pg.PlotDataItem]:
        return [item for _plot, item in self._overlay_items]

    # -------------------------------------------------------------- crosshair
    def _on_mouse_moved(self, plot: pg.PlotItem, pos: Any) -> None:
        if not plot.sceneBoundingRect().contains(pos):
            return
        x = plot.vb.mapSceneToView(pos).x()
        for line in self._cross:
            line.setPos(x)
            line.setVisible(True)
        self.readout.setText(self.readout_at(x))

    def readout_at(self, x: float) -> str:
        """The per-epoch values nearest to epoch ``x``, as one line of text."""
        epoch = max(1, round(x))
        parts = []
        for key, series in self._series.items():
            if not key.startswith("epoch:"):
                continue
            xs, ys = series.data()
            hits = np.nonzero(xs == epoch)[0]
            if len(hits):
                parts.append(f"{key[6:]} {ys[hits[-1]]:.4g}")
        return f"epoch {epoch}: " + " · ".join(parts) if parts else f"epoch {x:.2f}"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def early_stop_text(
    event: dict[str, Any], planned_epochs: int | None, section: dict[str, Any]
) -> str:
    """Why a run ended before its planned epochs, for the log ("" when it did not).

    Uses the done event's ``early_stopping`` object when the engine sends one
    (``stopped_epoch``, ``restored_epoch``, ``monitor``, ``patience``); otherwise
    works it out from the run's history and its early-stopping settings the way
    Keras's ``EarlyStopping`` does (improvement beyond ``min_delta``, epochs before
    ``start_from_epoch`` ignored).
    """
    if event.get("stopped"):
        return ""  # the user stopped it
    es = section.get("early_stopping")
    es = {} if es is True else es if isinstance(es, dict) else None
    info = event.get("early_stopping") if isinstance(event.get("early_stopping"), dict) else {}
    done = int(info.get("stopped_epoch") or event.get("epochs_done") or 0)
    if not info and (es is None or not planned_epochs or done >= int(planned_epochs)):
        return ""
    es = es or {}
    history = event.get("history") if isinstance(event.get("history"), dict) else {}
    monitor = str(info.get("monitor") or es.get("monitor") or "val_loss")
    if monitor not in history and monitor.startswith("val_") and monitor[4:] in history:
        monitor = monitor[4:]
    patience = int(info.get("patience", es.get("patience", 5)))
    restore = bool(es.get("restore_best_weights", True))
    best_epoch = info.get("restored_epoch")
    if best_epoch is None and restore:
        # fine-tuning: early stopping watches phase 2 afresh (from its first epoch)
        phase_two = int(event.get("fine_tune_from") or 1) - 1
        best_epoch = _best_epoch(
            history.get(monitor) or [],
            monitor_mode(monitor),
            abs(float(es.get("min_delta", 0) or 0)),
            max(phase_two, int(es.get("start_from_epoch", 0) or 0)),
        )
    text = (
        f"Stopped early at epoch {done}"
        + (f" of {planned_epochs}" if planned_epochs else "")
        + f": no {monitor} improvement for {patience} epoch{'' if patience == 1 else 's'}"
    )
    if restore and best_epoch:
        return text + f"; restored the weights of epoch {best_epoch}, the best {monitor}"
    return text + "; the model has the weights of the last epoch"


def _best_epoch(values: list[Any], mode: str, min_delta: float, start: int) -> int | None:
    best, best_epoch = None, None
    for i, value in enumerate(values):
        if i < start or not _finite(value):
            continue
        better = (
            best is None
            or (mode == "max" and value - min_delta > best)
            or (mode != "max" and value + min_delta < best)
        )
        if better:
            best, best_epoch = value, i + 1
    return best_epoch


class LiveView(QWidget):
    """Controls, progress, curves and log of the current run.

    Signals:
        train_requested(): the Train button was pressed.
        pause_requested(), resume_requested(), stop_requested(): the buttons.
        export_requested(str): "Export this run…" was pressed, with the run folder.
            When nothing is connected, the view opens the export dialog itself.
    """

    export_requested = Signal(str)
    train_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Train the model on the data with these settings (F5)")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Hold the run after the current batch; press again to go on")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip(
            "Stop after the current batch, keeping the model trained so far"
        )
        self.export_button = QPushButton("Export this run…")
        self.export_button.setToolTip("Export the model this run trained (Keras, ONNX, TFLite, …)")
        self.export_button.setEnabled(False)
        self.export_dialog: Any = None
        self.run_dir = ""
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("Not started")
        self.progress.setValue(0)
        self.rate = QLabel("")
        self.plots = LivePlots()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setPlaceholderText("Warnings and each epoch's results appear here.")

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        for button in (self.train_button, self.pause_button, self.stop_button):
            top.addWidget(button)
        top.addWidget(self.progress, 1)
        top.addWidget(self.export_button)
        self.plots.controls.addWidget(self.rate)
        # the decision boundary of a run on two-feature data, beside the curves
        self.boundary = BoundaryView()
        self.boundary.setVisible(False)
        self.boundary.setMinimumWidth(260)
        row = self._row = QSplitter(Qt.Orientation.Horizontal)
        row.addWidget(self.plots)
        row.addWidget(self.boundary)
        row.setStretchFactor(0, 3)
        row.setStretchFactor(1, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(row)
        split.addWidget(self.log)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setSizes([400, 90])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(split, 1)

        self.train_button.clicked.connect(self.train_requested)
        self.pause_button.clicked.connect(self._on_pause_clicked)
        self.stop_button.clicked.connect(self.stop_requested)
        self.export_button.clicked.connect(self._on_export_clicked)
        self.plots.timer.timeout.connect(self._update_progress)
        self._last_batch: dict[str, Any] | None = None
        self._started: dict[str, Any] = {}
        self._t0 = 0.0
        self.set_state("idle")

    # ---------------------------------------------------------------- state
    def set_state(self, state: str) -> None:
        """Enable the buttons that make sense in ``state`` (see ``TrainingSession``)."""
        self.state = state
        busy = state != "idle"
        self.train_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy and state != "stopping")
        self.pause_button.setEnabled(state in ("running", "paused"))
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        if state == "stopping":
            self.progress.setFormat("Stopping after this batch…")
        elif state == "paused":
            self.progress.setFormat(self.progress.format().split(" — ")[0] + " — paused")

    def _on_pause_clicked(self) -> None:
        if self.state == "paused":
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    # --------------------------------------------------------------- events
    def _on_export_clicked(self) -> None:
        if not self.run_dir:
            return
        handled = self.receivers(SIGNAL("export_requested(QString)")) > 0
        self.export_requested.emit(self.run_dir)
        if not handled:
            dialog = ExportDialog(self.run_dir, self)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            self.export_dialog = dialog
            dialog.open()

    def on_run_starting(self, run_dir: Any, resume: bool = False) -> None:
        self._last_batch, self._started = None, {}
        self.run_dir = str(run_dir)
        self.export_button.setEnabled(False)
        self._t0 = time.monotonic()
        self.plots.reset()
        self.boundary.reset()
        self.boundary.setVisible(False)  # shown by the run's first boundary event
        self.progress.setRange(0, 0)  # busy until the worker reports its steps
        self.progress.setFormat("Starting TensorFlow…")
        what = "Resuming" if resume else "Starting"
        self.append_log(f"{what} run {run_dir}")

    def on_started(self, event: dict[str, Any]) -> None:
        self._started = event
        total = max(1, int(event.get("epochs", 1)) * int(event.get("steps_per_epoch", 1)))
        done = int(event.get("initial_epoch", 0)) * int(event.get("steps_per_epoch", 1))
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.plots.set_planned_epochs(0, int(event.get("epochs", 1)))
        self.progress.setFormat(
            f"Epoch {int(event.get('initial_epoch', 0)) + 1}/{event.get('epochs')}"
        )
        devices = ", ".join(event.get("devices") or []) or "?"
        per_call = per_call_text(event)
        self.append_log(
            f"Training {event.get('total_params', 0):,} parameters on "
            f"{event.get('samples', 0):,} samples ({devices}, batch size "
            f"{event.get('batch_size')}, {event.get('epochs')} epochs"
            f"{', ' + per_call if per_call else ''})"
        )
        for note in event.get("notes") or []:
            self.append_log(note[:1].upper() + note[1:])
        fine = event.get("fine_tune")
        if isinstance(fine, dict):
            if fine.get("phase") == 2:  # resumed in phase 2
                self._phase({"fine_tune_from": fine.get("from_epoch")})
            else:
                n = fine.get("unfreeze")
                which = (
                    "every frozen layer"
                    if n == "all"
                    else f"the {n} frozen layer(s) nearest the output"
                )
                self.append_log(
                    f"Fine-tuning after epoch {fine.get('after_epoch')}: then {which} "
                    f"train at the learning rate x {fine.get('learning_rate_factor')}"
                )

    def on_boundary(self, event: dict[str, Any]) -> None:
        """A ``boundary`` event (two-feature data): the field beside the curves."""
        if not self.boundary.isVisibleTo(self):
            self.boundary.setVisible(True)
            width = max(self._row.width(), 600)
            self._row.setSizes([width * 2 // 3, width - width * 2 // 3])
        self.boundary.add_event(event)

    def on_batch(self, event: dict[str, Any]) -> None:
        self._last_batch = event
        self._phase(event)
        self.plots.add_batch(event)

    def _phase(self, event: dict[str, Any]) -> None:
        """Mark where fine-tuning began, the first time an event says so (a batch or
        epoch event of phase 2 carries ``fine_tune_from``, its first epoch)."""
        first = event.get("fine_tune_from")
        if isinstance(first, int) and first > 0 and first != self.plots.phase_epoch:
            self.plots.mark_phase(first)
            self.append_log(
                f"Fine-tuning from epoch {first}: the top frozen layers are unfrozen and "
                "train at the lower learning rate"
            )

    def on_epoch(self, event: dict[str, Any]) -> None:
        self._phase(event)
        self.plots.add_epoch(event)
        logs = event.get("logs") or {}
        values = ", ".join(
            f"{k} {v:.4g}" for k, v in logs.items() if k != "learning_rate" and _finite(v)
        )
        part = " (partial)" if event.get("partial") else ""
        self.append_log(
            f"Epoch {event.get('epoch')}{part}: {values} ({event.get('time_s', 0):.1f} s)"
        )
        steps = int(self._started.get("steps_per_epoch", 0))
        if steps:
            self.progress.setValue(min(self.progress.maximum(), int(event.get("epoch", 0)) * steps))

    def on_warning(self, message: str) -> None:
        self.append_log(f"Warning: {message}")

    def on_finished(self, event: dict[str, Any]) -> None:
        self.plots.finish()
        self._update_progress()
        stopped = event.get("stopped")
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        done = event.get("epochs_done")
        planned = self._started.get("epochs")
        run_dir = str(event.get("run_dir") or self.run_dir or "")
        snapshot = read_json(Path(run_dir) / "project.json") if run_dir else None
        section = snapshot.get("training") if isinstance(snapshot, dict) else None
        early = early_stop_text(event, planned, section if isinstance(section, dict) else {})
        if stopped:
            self.progress.setFormat(f"Stopped after {done} epoch(s)")
        elif early:
            self.progress.setFormat(f"Stopped early: {done} of {planned} epochs")
        else:
            self.progress.setFormat(f"Done: {done} epoch(s)")
        self.rate.setText(f"{duration(time.monotonic() - self._t0)} in all")
        if early:
            self.append_log(early)
        evaluation = event.get("evaluation") or {}
        summary = _evaluation_line(evaluation)
        self.append_log(
            ("Stopped; the model trained so far" if stopped else "Done; the model")
            + f" is in {event.get('model')}"
            + (f" — {summary}" if summary else "")
        )
        self.run_dir = run_dir
        self.export_button.setEnabled(bool(run_dir and event.get("model")))

    def on_failed(self, event: dict[str, Any]) -> None:
        self.plots.finish()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Failed")
        self.rate.setText("")
        self.append_log(
            f"Error: {event.get('message')}"
            + (f"\n  What to try: {event.get('hint')}" if event.get("hint") else "")
        )

    def append_log(self, line: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {line}")

    def _update_progress(self) -> None:
        event = self._last_batch
        if event is None:
            return
        self._last_batch = None
        epoch, step, steps = (int(event.get(k) or 0) for k in ("epoch", "step", "steps"))
        bar = self.progress
        # QProgressBar.setValue repaints at once; held, it is drawn with the plots
        bar.setUpdatesEnabled(False)
        bar.setValue(min(bar.maximum(), (epoch - 1) * steps + step))
        suffix = " — paused" if self.state == "paused" else ""
        bar.setFormat(
            f"Epoch {epoch}/{self._started.get('epochs', '?')} · step {step}/{steps}{suffix}"
        )
        bar.setUpdatesEnabled(True)
        sps = event.get("samples_per_s")
        self.rate.setText(
            f"{sps:,.0f} samples/s · {duration(event.get('eta_s'))} left" if sps else ""
        )


def _evaluation_line(evaluation: dict[str, Any]) -> str:
    """A few numbers from ``evaluation.json`` (validation split) for the log."""
    split = evaluation.get("validation") or evaluation.get("test") or {}
    metrics = split.get("metrics") if isinstance(split, dict) else None
    if not isinstance(metrics, dict):
        return ""
    parts = [f"{k} {v:.4g}" for k, v in metrics.items() if _finite(v)][:4]
    return ("validation: " + ", ".join(parts)) if parts else ""


def main() -> None:
    """``python -m gui.training.live_view``: the live view fed with a made-up run."""
    app = QApplication(sys.argv[:1])
    view = LiveView()
    view.resize(900, 520)
    view.show()
    rng = np.random.default_rng(0)
    steps, epochs = 50, 20
    view.on_run_starting("demo")
    view.on_started(
        {
            "epochs": epochs,
            "steps_per_epoch": steps,
            "samples": 1600,
            "batch_size": 32,
            "devices": ["CPU:0"],
            "total_params": 1234,
        }
    )
    view.set_state("running")
    tick = {"i": 0}

    def feed() -> None:
        i = tick["i"] = tick["i"] + 1
        epoch, step = i // steps + 1, i % steps + 1
        if epoch > epochs:
            return
        loss = 2.0 * np.exp(-i / 300) + 0.1 * rng.random()
        view.on_batch(
            {
                "epoch": epoch,
                "step": step,
                "steps": steps,
                "logs": {"loss": loss, "accuracy": 1 - loss / 2.2},
                "samples_per_s": 900.0,
                "eta_s": (epochs * steps - i) / 30,
            }
        )
        if step == steps:
            view.on_epoch(
                {
                    "epoch": epoch,
                    "logs": {
                        "loss": loss,
                        "accuracy": 1 - loss / 2.2,
                        "val_loss": loss * 1.1,
                        "val_accuracy": 1 - loss / 2.0,
                    },
                    "time_s": 1.7,
                }
            )

    timer = QTimer()
    timer.timeout.connect(feed)
    timer.start(30)
    app.exec()


if __name__ == "__main__":
    main()
