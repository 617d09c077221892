"""What a finished run gets right and wrong, read from its ``evaluation.json``.

For classification: a confusion matrix heat map with counts (rows: true class,
columns: predicted), per-class precision/recall/F1 with macro averages, and for
image data a gallery of misclassified samples ("3 → 8"). For regression: a
predicted-vs-true scatter with the ideal line. The numbers come from
``evaluation.json`` (written by the training engine when a run ends); the gallery
and the full scatter need the samples themselves, so the engine service (a child
process, :mod:`gui.engine_service`: Keras never loads in the window's process) loads
the run's data and, when ``model.keras`` is there, predicts the evaluated split once
(:func:`engine.train.evaluation.load_samples`). Until that answer comes the
view shows what ``evaluation.json`` alone holds; the window never waits.
"""

from __future__ import annotations

import html
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QCoreApplication, QElapsedTimer, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.limits import PROJECT_MB, LimitExceeded, check_size, loads, open_regular
from engine.train.history import read_run_info
from gui import theme
from gui.engine_service import shared_service

THUMB = 72

_PENDING: set[int] = set()  # sample requests not answered yet (wait_for_loaders)


# ------------------------------------------------------------------------ small widgets


def read_run_json(path: Path) -> Any:
    """A run's JSON file, or None when it is missing or unreadable.

    Read on the UI thread, so bounded: a FIFO or device in its place is refused
    without opening it for a blocking read, and the size and nesting are those of a
    project file (:mod:`engine.limits`); the samples themselves load in the background.
    """
    try:
        with open_regular(path) as f:
            check_size(os.fstat(f.fileno()).st_size)
            data = f.read(PROJECT_MB.value() * 10**6 + 1)
        check_size(len(data))
        return loads(data.decode("utf-8"))
    except (OSError, ValueError, LimitExceeded):
        return None


def _blend(a: QColor, b: QColor, t: float) -> QColor:
    t = max(0.0, min(1.0, t))
    return QColor(
        round(a.red() + (b.red() - a.red()) * t),
        round(a.green() + (b.green() - a.green()) * t),
        round(a.blue() + (b.blue() - a.blue()) * t),
    )


def _luma(c: QColor) -> float:
    return 0.299 * c.red() + 0.587 * c.green() + 0.114 * c.blue()


def to_qimage(arr: np.ndarray) -> QImage:
    """An image sample (H, W, C) of floats or bytes as a QImage (scaled to 0–255)."""
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if lo >= 0 and hi <= 1.0:
        a = a * 255.0
    elif lo < 0 or hi > 255:
        a = (a - lo) / (hi - lo or 1.0) * 255.0
    a = np.ascontiguousarray(np.clip(a, 0, 255).astype(np.uint8))
    h, w = a.shape[:2]
    if a.ndim == 2:
        img = QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8)
    elif a.shape[-1] == 3:
        img = QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    else:
        img = QImage(a.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return img.copy()


class ConfusionTable(QTableWidget):
    """A table whose square cells grow and shrink to fill the space it is given."""

    MIN_CELL, MAX_CELL = 22, 64

    def fit_cells(self) -> None:
        k = max(self.rowCount(), 1)
        frame = 2 * self.frameWidth()
        avail_w = self.width() - self.verticalHeader().sizeHint().width() - frame
        avail_h = self.height() - self.horizontalHeader().sizeHint().height() - frame
        side = max(self.MIN_CELL, min(self.MAX_CELL, min(avail_w, avail_h) // k))
        for i in range(self.rowCount()):
            self.setRowHeight(i, side)
        for j in range(self.columnCount()):
            self.setColumnWidth(j, side)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self.fit_cells()


class MetricCard(QFrame):
    """A big number with a caption ("0.927" over "validation accuracy")."""

    def __init__(self, value: str, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        c = theme.colors()
        self.setObjectName("metricCard")
        self.setStyleSheet(
            f"#metricCard {{ background: {c['base']}; border: 1px solid "
            f"{c['border']}; border-radius: 6px; }}"
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        layout.setSpacing(0)
        self.value_label = QLabel(value)
        font = QFont(self.value_label.font())
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.value_label.setFont(font)
        self.caption_label = QLabel(caption)
        self.caption_label.setStyleSheet(f"color: {c['muted']};")
        layout.addWidget(self.value_label)
        layout.addWidget(self.caption_label)
        self.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Maximum)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    v = float(value)
    if abs(v) >= 1000 or (v != 0 and abs(v) < 0.001):
        return f"{v:.3g}"
    return f"{v:.3f}"


# ------------------------------------------------------------------------ the view


class EvaluationView(QWidget):
    """The evaluation of one run: confusion matrix, per-class metrics, mistakes, scatter.

    Signals:
        run_shown(str): ``show_run`` has displayed a run's ``evaluation.json``.
        samples_loaded(str): The background load (gallery / full scatter) ended, with
            success or a message in the gallery's status line.
    """

    run_shown = Signal(str)
    samples_loaded = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir: Path | None = None
        self.evaluation: dict[str, Any] = {}
        self._token = 0
        self._loading = False
        self._requests: dict[int, int] = {}  # engine service seq -> token
        self._service: Any = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        self.title = QLabel("")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.cards_row = QHBoxLayout()
        self.cards_row.setSpacing(8)
        layout.addLayout(self.cards_row)

        self.pages = QStackedWidget()
        layout.addWidget(self.pages, 1)
        self.message_label = QLabel(
            "Select a finished run and choose Evaluate to see what its model gets right and wrong."
        )
        self.message_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet(f"color: {theme.colors()['muted']};")
        self.pages.addWidget(self.message_label)
        self.pages.addWidget(self._classification_page())
        self.pages.addWidget(self._regression_page())

    # ------------------------------------------------------------------ pages
    def _classification_page(self) -> QWidget:
        page = QSplitter(Qt.Orientation.Vertical)
        top = QSplitter(Qt.Orientation.Horizontal)

        cm_box = QGroupBox("Confusion matrix")
        cm_layout = QVBoxLayout(cm_box)
        hint = QLabel("rows: true class · columns: predicted class · diagonal: correct")
        hint.setStyleSheet(f"color: {theme.colors()['muted']};")
        cm_layout.addWidget(hint)
        self.matrix = ConfusionTable()
        self.matrix.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.matrix.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.matrix.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.matrix.setShowGrid(True)
        self.matrix.setFrameShape(QFrame.Shape.NoFrame)
        palette = self.matrix.palette()  # the space beyond the cells blends into the box
        palette.setColor(QPalette.ColorRole.Base, palette.color(QPalette.ColorRole.Window))
        self.matrix.setPalette(palette)
        cm_layout.addWidget(self.matrix)
        top.addWidget(cm_box)

        pc_box = QGroupBox("Per class")
        pc_layout = QVBoxLayout(pc_box)
        self.per_class = QTableWidget(0, 5)
        self.per_class.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "F1", "Support"])
        self.per_class.verticalHeader().setVisible(False)
        self.per_class.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.per_class.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.per_class.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.per_class.verticalHeader().setDefaultSectionSize(
            self.per_class.fontMetrics().height() + 8
        )
        self.per_class.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        pc_layout.addWidget(self.per_class)
        top.addWidget(pc_box)
        top.setStretchFactor(0, 1)
        top.setStretchFactor(1, 1)
        page.addWidget(top)

        gal_box = QGroupBox("Misclassified samples")
        gal_layout = QVBoxLayout(gal_box)
        self.gallery_status = QLabel("")
        self.gallery_status.setWordWrap(True)
        self.gallery_status.setStyleSheet(f"color: {theme.colors()['muted']};")
        gal_layout.addWidget(self.gallery_status)
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListView.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(THUMB, THUMB))
        self.gallery.setGridSize(QSize(THUMB + 28, THUMB + 34))
        self.gallery.setResizeMode(QListView.ResizeMode.Adjust)
        self.gallery.setMovement(QListView.Movement.Static)
        self.gallery.setWrapping(True)
        self.gallery.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.gallery.setUniformItemSizes(True)
        self.gallery.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        gal_layout.addWidget(self.gallery)
        self.gallery_box = gal_box
        page.addWidget(gal_box)
        page.setStretchFactor(0, 3)
        page.setStretchFactor(1, 2)
        return page

    def _regression_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        c = theme.colors()
        self.plot = pg.PlotWidget(background=c["base"])
        self.plot.setLabel("bottom", "true value")
        self.plot.setLabel("left", "predicted value")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        for axis in ("bottom", "left"):
            self.plot.getAxis(axis).setTextPen(c["text"])
            self.plot.getAxis(axis).setPen(c["muted"])
        self.ideal = pg.PlotDataItem(
            [],
            [],
            pen=pg.mkPen(c["muted"], width=1.5, style=Qt.PenStyle.DashLine),
            name="predicted = true",
        )
        self.scatter = pg.ScatterPlotItem(
            size=7, pen=pg.mkPen(None), brush=pg.mkBrush(37, 99, 235, 150)
        )
        self.plot.addItem(self.ideal)
        self.plot.addItem(self.scatter)
        layout.addWidget(self.plot, 1)
        self.scatter_status = QLabel("")
        self.scatter_status.setStyleSheet(f"color: {c['muted']};")
        layout.addWidget(self.scatter_status)
        return page

    # ------------------------------------------------------------------ showing a run
    def show_run(self, run_dir: str | os.PathLike) -> None:
        """Show ``run_dir``'s evaluation (its ``evaluation.json``)."""
        self.run_dir = Path(run_dir)
        self._token += 1
        self._loading = False
        self._clear_cards()
        info = read_run_info(self.run_dir)
        evaluation = read_run_json(self.run_dir / "evaluation.json")
        self.evaluation = evaluation if isinstance(evaluation, dict) else {}
        details = self.evaluation.get("details") or {}
        split = details.get("split", "validation")
        name = html.escape(f"{info.name} · run {self.run_dir.name}")
        if not self.evaluation:
            why = (
                f"The run failed: {info.message}"
                if info.status == "failed" and info.message
                else "The run is still training."
                if info.status == "running"
                else "This run has no evaluation: evaluation.json is written when a run "
                "ends normally."
            )
            self.title.setText(f"<b>{name}</b>")
            self._show_message(why)
            self.run_shown.emit(str(self.run_dir))
            return
        samples = details.get("samples")
        where = f"evaluated on {samples} {split} samples" if samples else f"{split} split"
        self.title.setText(f"<b>{name}</b> — {html.escape(where)}")
        snapshot = read_run_json(self.run_dir / "project.json") or {}
        try:
            self._add_cards(details)
            if "confusion_matrix" in details:
                self._show_classification(details)
                task = "classification"
            elif "predictions" in details:
                self._show_regression(details)
                task = "regression"
            else:
                task = ""
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            self._clear_cards()
            self._show_message(
                f"{self.run_dir / 'evaluation.json'} cannot be shown: it is "
                f"not in the form LayerLab writes ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})."
            )
            self.run_shown.emit(str(self.run_dir))
            return
        if not task:
            self._show_message(
                "This run's evaluation holds only the metrics above (a model "
                "with several outputs, or predictions of another shape)."
            )
            self.run_shown.emit(str(self.run_dir))
            return
        self.run_shown.emit(str(self.run_dir))
        self._start_loading(snapshot, details, task)

    def show_no_run(self, text: str) -> None:
        """Show no run, only ``text`` (why there is nothing to evaluate)."""
        self.run_dir = None
        self.evaluation = {}
        self._token += 1
        self._loading = False
        self._clear_cards()
        self.title.setText("")
        self._show_message(text)

    def _show_message(self, text: str) -> None:
        self.message_label.setText(text)
        self.pages.setCurrentIndex(0)

    def message(self) -> str:
        """The message shown instead of the evaluation, when there is one."""
        return self.message_label.text() if self.pages.currentIndex() == 0 else ""

    def _clear_cards(self) -> None:
        while self.cards_row.count():
            item = self.cards_row.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()

    def _add_cards(self, details: dict[str, Any]) -> None:
        for split in ("validation", "test"):
            metrics = (self.evaluation.get(split) or {}).get("metrics") or {}
            for key in sorted(metrics, key=lambda k: (k != "accuracy", k)):
                self.cards_row.addWidget(MetricCard(_fmt(metrics[key]), f"{split} {key}"))
        for key in ("rmse",):
            if key in details:
                self.cards_row.addWidget(
                    MetricCard(_fmt(details[key]), f"{details.get('split', '')} {key}")
                )
        self.cards_row.addStretch(1)

    def card_texts(self) -> dict[str, str]:
        """Caption -> value of each metric card."""
        out = {}
        for i in range(self.cards_row.count()):
            w = self.cards_row.itemAt(i).widget()
            if isinstance(w, MetricCard):
                out[w.caption_label.text()] = w.value_label.text()
        return out

    # ------------------------------------------------------------------ classification
    def _show_classification(self, details: dict[str, Any]) -> None:
        self.pages.setCurrentIndex(1)
        names = [str(n) for n in details.get("class_names", [])]
        cm = np.asarray(details.get("confusion_matrix", []), dtype=int)
        k = cm.shape[0] if cm.ndim == 2 else 0
        names += [str(i) for i in range(len(names), k)]
        self._fill_matrix(cm, names[:k])
        self._fill_per_class(details.get("per_class", []))
        self.gallery.clear()
        self.gallery_status.setText("Loading the samples…")

    def _fill_matrix(self, cm: np.ndarray, names: list[str]) -> None:
        k = len(names)
        table = self.matrix
        table.clear()
        table.setRowCount(k)
        table.setColumnCount(k)
        table.setHorizontalHeaderLabels(names)
        table.setVerticalHeaderLabels(names)
        c = theme.colors()
        base = QColor(c["base"])
        good, bad = QColor("#2563eb"), QColor("#dc2626")
        light, dark = QColor("#ffffff"), QColor(c["text"])
        muted = QColor(c["muted"])
        rows = cm.sum(axis=1) if k else np.zeros(0)
        bold = QFont(table.font())
        bold.setBold(True)
        for i in range(k):
            for j in range(k):
                n = int(cm[i, j])
                frac = n / rows[i] if rows[i] else 0.0
                item = QTableWidgetItem(str(n))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if i == j:
                    colour = _blend(base, good, 0.12 + 0.88 * frac if n else 0.06)
                else:
                    colour = _blend(base, bad, min(1.0, 0.15 + 1.5 * frac) if n else 0.0)
                item.setBackground(colour)
                if n == 0:
                    item.setForeground(muted)
                else:
                    item.setForeground(light if _luma(colour) < 150 else dark)
                    item.setFont(bold)
                share = f"{100 * frac:.1f}% of true {names[i]}" if rows[i] else "no samples"
                item.setToolTip(
                    f"true {names[i]}, predicted {names[j]}: {n} sample"
                    f"{'s' if n != 1 else ''} ({share})"
                )
                table.setItem(i, j, item)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        table.fit_cells()

    def _fill_per_class(self, rows: list[dict[str, Any]]) -> None:
        table = self.per_class
        table.setRowCount(0)
        all_rows = list(rows)
        if rows:
            macro = {
                "class": "average",
                **{
                    m: float(np.mean([r.get(m, 0.0) for r in rows]))
                    for m in ("precision", "recall", "f1")
                },
                "support": int(sum(r.get("support", 0) for r in rows)),
            }
            all_rows.append(macro)
        table.setRowCount(len(all_rows))
        c = theme.colors()
        base = QColor(c["base"])
        bold = QFont(table.font())
        bold.setBold(True)
        for r, row in enumerate(all_rows):
            total = r == len(rows)
            cells = [
                str(row.get("class", r)),
                *(f"{float(row.get(m, 0.0)):.3f}" for m in ("precision", "recall", "f1")),
                str(row.get("support", "")),
            ]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if 1 <= col <= 3:
                    v = float(row.get(("precision", "recall", "f1")[col - 1], 0.0))
                    tint = _blend(QColor("#dc2626"), QColor("#16a34a"), (v - 0.5) / 0.5)
                    item.setBackground(_blend(base, tint, 0.28))
                if total:
                    item.setFont(bold)
                table.setItem(r, col, item)
        table.resizeColumnsToContents()
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

    def confusion_counts(self) -> list[list[int]]:
        """The counts the confusion matrix shows, row by row."""
        t = self.matrix
        return [
            [int(t.item(i, j).text()) for j in range(t.columnCount())] for i in range(t.rowCount())
        ]

    def confusion_labels(self) -> list[str]:
        return [
            self.matrix.horizontalHeaderItem(j).text() for j in range(self.matrix.columnCount())
        ]

    def per_class_rows(self) -> list[list[str]]:
        """The per-class table as text, row by row (the last row is the average over classes)."""
        t = self.per_class
        return [[t.item(r, c).text() for c in range(t.columnCount())] for r in range(t.rowCount())]

    def gallery_captions(self) -> list[str]:
        """The caption of each thumbnail in the gallery ("3 → 8")."""
        return [self.gallery.item(i).text() for i in range(self.gallery.count())]

    # ------------------------------------------------------------------ regression
    def _show_regression(self, details: dict[str, Any]) -> None:
        self.pages.setCurrentIndex(2)
        preds = details.get("predictions", [])
        true = [_first(p.get("true")) for p in preds]
        pred = [_first(p.get("predicted")) for p in preds]
        self._set_scatter(np.asarray(true, float), np.asarray(pred, float))
        self.scatter_status.setText(
            f"{len(true)} sample predictions from evaluation.json; loading the whole split…"
        )

    def _set_scatter(self, true: np.ndarray, pred: np.ndarray) -> None:
        self.scatter.setData(true, pred)
        if len(true):
            lo = float(min(true.min(), pred.min()))
            hi = float(max(true.max(), pred.max()))
            pad = (hi - lo) * 0.05 or 1.0
            self.ideal.setData([lo - pad, hi + pad], [lo - pad, hi + pad])
        else:
            self.ideal.setData([], [])

    def scatter_points(self) -> tuple[np.ndarray, np.ndarray]:
        """The (true, predicted) points of the regression scatter."""
        x, y = self.scatter.getData()
        return np.asarray(x), np.asarray(y)

    # ------------------------------------------------------------------ background
    def is_loading(self) -> bool:
        return self._loading

    def _start_loading(self, snapshot: dict[str, Any], details: dict[str, Any], task: str) -> None:
        """Ask the engine service for the samples and predictions (Keras runs there)."""
        assert self.run_dir is not None
        service = shared_service()
        if self._service is not service:
            service.answered.connect(self._on_answer)
            self._service = service
        args = {"run_dir": str(self.run_dir), "snapshot": snapshot, "details": details}
        seq = service.request("samples", {**args, "task": task})
        self._requests[seq] = self._token
        _PENDING.add(seq)
        self._loading = True

    def _on_answer(self, event: dict[str, Any]) -> None:
        token = self._requests.pop(event.get("seq"), None)
        if token is None:
            return
        _PENDING.discard(event["seq"])
        if event.get("ok"):
            self._on_loaded(token, event["result"])
        else:
            self._on_failed(token, str(event.get("error", "")))

    def _on_failed(self, token: int, message: str) -> None:
        if token != self._token:
            return
        self._loading = False
        text = f"Could not load the samples: {message}"
        if self.pages.currentIndex() == 2:
            self.scatter_status.setText(text)
        else:
            self.gallery_status.setText(text)
        self.samples_loaded.emit(str(self.run_dir))

    def _on_loaded(self, token: int, result: dict[str, Any]) -> None:
        if token != self._token:
            return
        self._loading = False
        if self.pages.currentIndex() == 2:
            if "true" in result:
                self._set_scatter(result["true"], result["predicted"])
                self.scatter_status.setText(
                    f"{len(result['true'])} samples of the "
                    f"{(self.evaluation.get('details') or {}).get('split', 'validation')} "
                    "split; dashed line: predicted = true"
                )
            else:
                self.scatter_status.setText(
                    "Only evaluation.json's sample predictions are "
                    "shown (the run has no model.keras)."
                )
        else:
            self._fill_gallery(result)
        self.samples_loaded.emit(str(self.run_dir))

    def _fill_gallery(self, result: dict[str, Any]) -> None:
        self.gallery.clear()
        wrong, total = result.get("wrong", 0), result.get("total", 0)
        shown = result.get("misclassified", [])
        images = bool(result.get("images"))
        split = (self.evaluation.get("details") or {}).get("split", "validation")
        more = f" (the first {len(shown)} listed)" if len(shown) < wrong else ""
        source = (
            ""
            if result.get("from_model", True)
            else " among evaluation.json's sample predictions (the run has no model.keras)"
        )
        self.gallery_status.setText(
            f"{wrong} of {total} {split} samples misclassified{source}{more} · true → predicted"
        )
        self.gallery.setViewMode(
            QListView.ViewMode.IconMode if images else QListView.ViewMode.ListMode
        )
        self.gallery.setWrapping(images)
        self.gallery.setFlow(QListView.Flow.LeftToRight if images else QListView.Flow.TopToBottom)
        if images:
            self.gallery.setIconSize(QSize(THUMB, THUMB))
            self.gallery.setGridSize(QSize(THUMB + 28, THUMB + 34))
        else:
            self.gallery.setIconSize(QSize(0, 0))
            self.gallery.setGridSize(QSize())
        for index, image, true, pred, conf in shown:
            tip = (
                f"sample #{index} of the {split} split\ntrue: {true}\n"
                f"predicted: {pred} (confidence {conf:.2f})"
            )
            if not images:
                item = QListWidgetItem(f"sample #{index}: {true} → {pred} (confidence {conf:.2f})")
                item.setToolTip(tip)
                self.gallery.addItem(item)
                continue
            img = to_qimage(image)
            mode = (
                Qt.TransformationMode.FastTransformation
                if max(img.width(), img.height()) < THUMB // 2
                else Qt.TransformationMode.SmoothTransformation
            )
            pix = QPixmap.fromImage(
                img.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, mode)
            )
            item = QListWidgetItem(QIcon(pix), f"{true} → {pred}")
            item.setToolTip(tip)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            self.gallery.addItem(item)


def _first(value: Any) -> float:
    if isinstance(value, (list, tuple)):
        return float(value[0]) if value else float("nan")
    return float(value)


def wait_for_loaders(timeout_ms: int = 30_000) -> bool:
    """Wait until every sample request has been answered (tests), handling events."""
    clock = QElapsedTimer()
    clock.start()
    while _PENDING and clock.elapsed() < timeout_ms:
        QCoreApplication.processEvents()
        time.sleep(0.005)
    return not _PENDING
