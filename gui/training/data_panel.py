"""The data panel: where the training data comes from, a preview, and whether it fits.

Edits push one ``SetSection("data", ...)`` each. The data is loaded for the
preview on a background thread (scikit-learn and image decoding are slow to
start); the preview is a table for tabular data, thumbnails with labels for
images, a scatter plot for 2-D toy sets and a line plot for sequences. Once the
data is loaded it is checked against the model's input and output shapes
(:func:`engine.data.dataset.check_fit`), and the panel says what does not fit before any
training starts.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.data.dataset import Dataset, check_fit, load_data
from engine.data.sources import BUILTINS, DataError, sniff_delimiter
from engine.data.table import DataFix
from engine.limits import open_regular
from engine.model.commands import SetSection, UndoStack
from engine.model.project import load_project, new_project
from engine.train.config import loss_name
from gui.theme import narrow_combos
from gui.training.background import BackgroundJob
from gui.wheel_guard import guard_wheel

PREVIEW_ROWS = 50
THUMBNAILS = 40
SCATTER_POINTS = 20_000
SEQUENCES = 4
FILE_SOURCES = {
    "csv": "CSV file",
    "npz": "NumPy .npz / .npy file",
    "images": "Image folder",
    "image_list": "Image list (CSV)",
}
IMAGE_SOURCES = ("images", "image_list")
IMAGE_KEYS = ("max_memory_mb", "path_column", "label_column")
"""Image settings the panel has no field for: kept as they are when the section is edited."""
MISSING_CHOICES = (
    ("refuse the file (name line and column)", "error"),
    ("drop the row", "drop"),
    ("fill with the column's mean", "mean"),
)
"""The CSV ``missing`` policy: (what the combo says, the section's value); first = default."""
CACHE_CHOICES = (
    ("automatic (in memory when it fits)", "auto"),
    ("none (decode every epoch)", "none"),
    ("in memory", "memory"),
    ("cache file in the run folder", "file"),
)
CORRUPT_CHOICES = (
    ("skip and report them", "skip"),
    ("stop the run", "error"),
)
PLANE_SETS = ("moons", "circles", "spirals", "xor")
CLASS_COLORS = (
    "#2563eb",
    "#ea580c",
    "#16a34a",
    "#dc2626",
    "#9333ea",
    "#0891b2",
    "#ca8a04",
    "#db2777",
    "#4b5563",
    "#65a30d",
)


@dataclass
class Preview:
    """What the background load of a data section found (made off the UI thread).

    Attributes:
        section: The data section it was loaded for.
        dataset: The loaded data, or None when it could not be loaded.
        error: Why it could not be loaded ("" when it could).
        fix: A change of the data section that would make it load, when certain.
        summary: ``dataset.summary()`` (class counts included), or ``{}``.
        names: The CSV's columns or the .npz file's arrays, for the pickers.
        thumbnails: For image sources, the first training images (read from their
            files here, off the UI thread), their labels and tooltips.
    """

    section: dict[str, Any]
    dataset: Dataset | None = None
    error: str = ""
    fix: DataFix | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    thumbnails: list[tuple[QImage, str, str]] = field(default_factory=list)


def load_preview(section: dict[str, Any], base_dir: Any, input_shape: Any) -> Preview:
    """Everything the panel shows about ``section`` that needs its files: run in the
    background, never on the UI thread (a FIFO or a huge file must not freeze it)."""
    preview = Preview(section)
    path = _data_path(section, base_dir)
    if path is not None:
        preview.names = csv_columns(path) if section.get("source") == "csv" else npz_arrays(path)
    try:
        preview.dataset = load_data(section, base_dir, input_shape)
    except DataError as exc:
        preview.error, preview.fix = str(exc), exc.fix
        return preview
    preview.summary = preview.dataset.summary()  # from the file index: nothing decoded
    if preview.dataset.images is not None:
        preview.thumbnails = image_thumbnails(preview.dataset, THUMBNAILS, 48)
    return preview


def image_thumbnails(ds: Dataset, count: int, size: int) -> list[tuple[QImage, str, str]]:
    """The first ``count`` training images of an image source, read by Qt from their
    files and scaled to ``size`` (only these are decoded), each with its class name and a
    tooltip naming its file. One that Qt cannot read shows as a grey square labelled
    "broken", its tooltip saying what training does with it."""
    files = ds.images
    out = []
    train = ds.parts["train"]
    picks = train[np.unique(np.linspace(0, len(train) - 1, min(count, len(train))).astype(int))]
    for i in picks:  # spread over the (class-sorted) files: every class shows
        name = ds.class_names[int(ds.y[i])]
        path = files.paths[i]
        image = QImage(path)
        label, tip = name, f"{path}\nclass: {name}"
        if image.isNull():
            image = QImage(size, size, QImage.Format.Format_RGB888)
            image.fill(Qt.GlobalColor.gray)
            then = "stops at it" if files.corrupt == "error" else "skips it and reports it"
            label, tip = "broken", f"{path}\ncannot be read as an image: training {then}"
        out.append((_square(image, size), label, tip))
    return out


def _square(image: QImage, size: int) -> QImage:
    """``image`` scaled to fit ``size`` x ``size``, centred on a transparent square: every
    thumbnail the same size, so the labels under them line up."""
    scaled = image.scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
    square = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    square.fill(Qt.GlobalColor.transparent)
    painter = QPainter(square)
    painter.drawImage((size - scaled.width()) // 2, (size - scaled.height()) // 2, scaled)
    painter.end()
    return square


def _data_path(section: dict[str, Any], base_dir: Any) -> Path | None:
    """The CSV or .npz file a section names (None for other sources)."""
    if section.get("source") not in ("csv", "npz") or not section.get("path"):
        return None
    try:
        path = Path(str(section["path"])).expanduser()
    except RuntimeError:  # ~nosuchuser
        return None
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def csv_columns(path: Path) -> list[str]:
    """The header of a CSV file (empty when it cannot be read; the loader says why)."""
    try:
        with open_regular(path) as f:
            sample = f.read(4096).decode("utf-8-sig", errors="replace")
        rows = csv.reader(sample.splitlines(), delimiter=sniff_delimiter(sample))
        return [c.strip() for c in next(r for r in rows if any(c.strip() for c in r))]
    except (OSError, ValueError, csv.Error, StopIteration):
        return []


def npz_arrays(path: Path) -> list[str]:
    """The array names in an .npz file (empty when it cannot be read)."""
    try:
        with open_regular(path) as f, zipfile.ZipFile(f) as z:
            return [n[:-4] if n.endswith(".npy") else n for n in z.namelist()]
    except (OSError, ValueError, zipfile.BadZipFile):
        return []


def set_spin(spin: QSpinBox | QDoubleSpinBox, value: Any, default: float) -> None:
    """Show a data-section number in a spin box: ``default`` when it is missing or not a
    number, clamped to the box's range (the fit check then says what is wrong with it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        value = default
    value = min(max(value, spin.minimum()), spin.maximum())
    spin.setValue(int(value) if isinstance(spin, QSpinBox) else float(value))


class DataPanel(QWidget):
    """Edits a project's ``data`` section and previews the data.

    Signals:
        loaded(dict): the data loaded; ``Dataset.summary()``.
        fit_changed(list): the problems fitting data to model (empty when it fits).

    Attributes:
        dataset: The last loaded :class:`engine.data.dataset.Dataset`, or None.
        fit_problems: What does not fit between data and model.
        load_error: Why the data could not be loaded ("" when it could).
        load_fix: A change of the data section that would make it load (a button
            under the message; the Problems list offers it too), or None.
    """

    loaded = Signal(dict)
    fit_changed = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Any = None
        self.undo_stack: Any = None
        self.dataset: Dataset | None = None
        self._thumbnails: list[tuple[QImage, str, str]] = []
        self.fit_problems: list[str] = []
        self.load_error = ""
        self.load_fix: DataFix | None = None
        self.model_input: tuple | None = None
        self.model_output: tuple | None = None
        self._loading = False
        self._job = BackgroundJob(self)
        self._job.done.connect(self._on_preview)
        self._job.failed.connect(self._on_job_failed)

        self.source = QComboBox()
        for name, text in BUILTINS.items():
            self.source.addItem(f"{name} — {_short(text)}", f"builtin:{name}")
            self.source.setItemData(self.source.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
        for key, text in FILE_SOURCES.items():
            self.source.addItem(text, key)
        self.description = QLabel("")
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: gray;")
        self.path = QLineEdit()
        self.path.setPlaceholderText("file or folder (relative to the project file)")
        self.browse = QPushButton("Browse…")
        path_row = QWidget()
        row = QHBoxLayout(path_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.path, 1)
        row.addWidget(self.browse)
        self.path_row = path_row
        self.target = self._editable_combo("last column")
        self.features = QLineEdit()
        self.features.setPlaceholderText("all other columns (or: a, b, c)")
        self.categorical = QLineEdit()
        self.categorical.setPlaceholderText("none (columns to one-hot encode)")
        self.task = QComboBox()
        for text in ("automatic", "classification", "regression"):
            self.task.addItem(text, None if text == "automatic" else text)
        self.missing = self._choices(
            MISSING_CHOICES, "What a missing value (an empty cell, NA, NaN, ?) does"
        )
        self.x_array = self._editable_combo("x")
        self.y_array = self._editable_combo("y")
        self.image_size = QSpinBox()
        self.image_size.setRange(0, 4096)
        self.image_size.setSpecialValueText("from the model's input")
        self.color_mode = QComboBox()
        self.color_mode.addItems(["from the model's input", "grayscale", "rgb"])
        self.resize_mode = QComboBox()
        for text, key in (
            ("stretch", "stretch"),
            ("crop to the aspect ratio", "crop"),
            ("pad to the aspect ratio", "pad"),
        ):
            self.resize_mode.addItem(text, key)
        self.cache = self._choices(
            CACHE_CHOICES, "Keep the decoded images after the first epoch (training streams them)"
        )
        self.corrupt = self._choices(
            CORRUPT_CHOICES, "An image that cannot be decoded while training"
        )
        self.samples = QSpinBox()
        self.samples.setRange(2, 10_000_000)
        self.noise = QDoubleSpinBox()
        self.noise.setRange(0, 10)
        self.noise.setSingleStep(0.05)
        self.length = QSpinBox()
        self.length.setRange(2, 100_000)
        self.validation = self._fraction()
        self.test = self._fraction()
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.standardize = QComboBox()
        for text, value in (("source default", None), ("on", True), ("off", False)):
            self.standardize.addItem(text, value)
        for widget in (self.samples, self.length, self.seed, self.image_size):
            widget.setKeyboardTracking(False)

        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.spinner = QProgressBar()  # busy: no range, Qt animates it
        self.spinner.setRange(0, 0)
        self.spinner.setMaximumHeight(6)
        self.spinner.setTextVisible(False)
        self.spinner.hide()
        self.fit_label = QLabel("")
        self.fit_label.setWordWrap(True)
        self.fit_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fix_button = QPushButton("")  # the load error's fix, when there is one
        self.fix_button.hide()
        self.preview = QStackedWidget()
        self.message = QLabel("")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message_page = QWidget()  # the message, and under it the fix when there is one
        page = QVBoxLayout(self.message_page)
        page.addStretch(1)
        page.addWidget(self.message)
        page.addWidget(self.fix_button, 0, Qt.AlignmentFlag.AlignHCenter)
        page.addStretch(1)
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.thumbnails = QListWidget()
        self.thumbnails.setViewMode(QListView.ViewMode.IconMode)
        self.thumbnails.setIconSize(QSize(48, 48))
        self.thumbnails.setGridSize(QSize(64, 72))
        self.thumbnails.setResizeMode(QListView.ResizeMode.Adjust)
        self.thumbnails.setMovement(QListView.Movement.Static)
        # pyqtgraph's plot (its import takes ~0.15 s): made when a preview first needs it
        self.plot_widget: Any = None
        self.plot: Any = None
        self._plot_due: Dataset | None = None  # a plot preview to draw once shown
        for widget in (self.message_page, self.table, self.thumbnails):
            self.preview.addWidget(widget)
        self._build_layout()
        self._connect()
        narrow_combos(self)
        guard_wheel(self)

    def _editable_combo(self, placeholder: str) -> QComboBox:
        combo = QComboBox()
        combo.setEditable(True)
        combo.lineEdit().setPlaceholderText(placeholder)
        combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        return combo

    @staticmethod
    def _choices(choices: tuple[tuple[str, str], ...], tip: str) -> QComboBox:
        combo = QComboBox()
        for text, value in choices:
            combo.addItem(text, value)
        combo.setToolTip(tip)
        return combo

    def _fraction(self) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(0.0, 0.9)
        spin.setSingleStep(0.05)
        spin.setDecimals(2)
        spin.setKeyboardTracking(False)
        return spin

    def _build_layout(self) -> None:
        source = QGroupBox("Source")
        self.form = QFormLayout(source)
        self.form.addRow("data", self.source)
        self.form.addRow(self.description)
        self.form.addRow("path", self.path_row)
        self.form.addRow("target column", self.target)
        self.form.addRow("feature columns", self.features)
        self.form.addRow("categorical", self.categorical)
        self.form.addRow("task", self.task)
        self.form.addRow("missing values", self.missing)
        self.form.addRow("inputs array", self.x_array)
        self.form.addRow("targets array", self.y_array)
        self.form.addRow("image size", self.image_size)
        self.form.addRow("colours", self.color_mode)
        self.form.addRow("resize", self.resize_mode)
        self.form.addRow("cache", self.cache)
        self.form.addRow("unreadable images", self.corrupt)
        self.form.addRow("samples", self.samples)
        self.form.addRow("noise", self.noise)
        self.form.addRow("sequence length", self.length)
        split = QGroupBox("Split")
        f = QFormLayout(split)
        f.addRow("validation fraction", self.validation)
        f.addRow("test fraction", self.test)
        f.addRow("seed", self.seed)
        f.addRow("standardize", self.standardize)
        preview = QGroupBox("Preview")
        v = QVBoxLayout(preview)
        v.addWidget(self.spinner)
        v.addWidget(self.summary)
        v.addWidget(self.fit_label)
        v.addWidget(self.preview, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(source)
        layout.addWidget(split)
        layout.addWidget(preview, 1)

    def _connect(self) -> None:
        self.source.currentIndexChanged.connect(self._on_source_changed)
        self.browse.clicked.connect(self._on_browse)
        self.fix_button.clicked.connect(self.apply_fix)
        for edit in (self.path, self.features, self.categorical):
            edit.editingFinished.connect(self._on_edit)
        for combo in (self.target, self.x_array, self.y_array):
            combo.lineEdit().editingFinished.connect(self._on_edit)
            combo.activated.connect(self._on_edit)
        for combo in (
            self.task,
            self.missing,
            self.color_mode,
            self.resize_mode,
            self.cache,
            self.corrupt,
            self.standardize,
        ):
            combo.currentIndexChanged.connect(self._on_edit)
        for spin in (
            self.image_size,
            self.samples,
            self.noise,
            self.length,
            self.validation,
            self.test,
            self.seed,
        ):
            spin.valueChanged.connect(self._on_edit)

    # ------------------------------------------------------------- project
    def set_project(self, project: Any, undo_stack: Any) -> None:
        """Edit ``project``'s data section through ``undo_stack`` and load a preview."""
        if self.undo_stack is not None:
            try:
                self.undo_stack.events.section_changed.disconnect(self._on_section_changed)
            except (TypeError, ValueError, RuntimeError):
                pass
        self.project, self.undo_stack = project, undo_stack
        undo_stack.events.section_changed.connect(self._on_section_changed)
        self.refresh()
        self.reload()

    def _on_section_changed(self, key: str) -> None:
        if key == "data":
            self.refresh()
            self.reload()
        elif key == "training":
            self._update_fit()

    def section(self) -> dict[str, Any]:
        return copy.deepcopy(self.project.data) if self.project is not None else {}

    def refresh(self) -> None:
        """Show the project's data section (signals muted: nothing is pushed)."""
        if self.project is None:
            return
        s = self.section()
        self._loading = True
        try:
            source = str(s.get("source") or "builtin:digits")
            index = self.source.findData(source)
            if index < 0:
                self.source.addItem(source, source)
                index = self.source.count() - 1
            self.source.setCurrentIndex(index)
            self.path.setText(str(s.get("path", "")))
            self.target.setEditText(str(s.get("target", "")))
            self.features.setText(", ".join(map(str, s.get("features") or [])))
            self.categorical.setText(", ".join(map(str, s.get("categorical") or [])))
            self.task.setCurrentIndex(max(0, self.task.findData(s.get("task"))))
            self.x_array.setEditText(str(s.get("x", "")))
            self.y_array.setEditText(str(s.get("y", "")))
            size = s.get("image_size")
            set_spin(self.image_size, size[0] if isinstance(size, list) and size else size, 0)
            mode = s.get("color_mode")
            self.color_mode.setCurrentText(
                mode if mode in ("grayscale", "rgb") else "from the model's input"
            )
            self.resize_mode.setCurrentIndex(max(0, self.resize_mode.findData(s.get("resize"))))
            for combo, key in (
                (self.missing, "missing"),
                (self.cache, "cache"),
                (self.corrupt, "corrupt_files"),
            ):
                combo.setCurrentIndex(max(0, combo.findData(s.get(key))))
            name = source.removeprefix("builtin:")
            set_spin(self.samples, s.get("samples"), 1000 if name == "adding" else 500)
            set_spin(self.noise, s.get("noise"), {"moons": 0.1}.get(name, 0.05))
            set_spin(self.length, s.get("length"), 50)
            set_spin(self.validation, s.get("validation_split"), 0.2)
            set_spin(self.test, s.get("test_split"), 0.0)
            set_spin(self.seed, s.get("seed"), 0)
            self.standardize.setCurrentIndex(
                max(0, self.standardize.findData(s.get("standardize")))
            )
        finally:
            self._loading = False
        self._show_rows(source)

    def _show_rows(self, source: str) -> None:
        name = source.removeprefix("builtin:")
        builtin = source.startswith("builtin:")
        rows = {
            self.path_row: not builtin,
            self.target: source == "csv",
            self.features: source == "csv",
            self.categorical: source == "csv",
            self.task: source == "csv",
            self.missing: source == "csv",
            self.x_array: source == "npz",
            self.y_array: source == "npz",
            self.image_size: source in IMAGE_SOURCES,
            self.color_mode: source in IMAGE_SOURCES,
            self.resize_mode: source in IMAGE_SOURCES,
            self.cache: source in IMAGE_SOURCES,
            self.corrupt: source in IMAGE_SOURCES,
            self.samples: builtin and (name in PLANE_SETS or name == "adding"),
            self.noise: builtin and name in PLANE_SETS and name != "xor",
            self.length: builtin and name == "adding",
        }
        for widget, visible in rows.items():
            self.form.setRowVisible(widget, visible)
        self.description.setText(
            BUILTINS.get(name, "")
            if builtin
            else {
                "csv": "A table with a header row; one column is the target.",
                "npz": "Arrays of inputs and targets saved with numpy.savez (an .npz), "
                "or two .npy files: the inputs' as path, the targets' as targets array "
                "(memory-mapped, not copied).",
                "images": "A folder with one sub-folder of pictures per class "
                "(read batch by batch while training).",
                "image_list": "A CSV of path,label rows; paths relative to the CSV.",
            }.get(source, "")
        )

    # ------------------------------------------------------------- editing
    def _on_source_changed(self, _index: int) -> None:
        self._show_rows(self.source.currentData() or "")
        self._on_edit()

    def _on_browse(self) -> None:
        source = self.source.currentData()
        path = self._ask_path(source)
        if path:
            base = self.project.base_dir if self.project is not None else None
            if base is not None:
                try:
                    path = os.path.relpath(path, base)
                except ValueError:
                    pass
            self.path.setText(path)
            self._on_edit()

    def _ask_path(self, source: str) -> str | None:
        """Ask for the file or folder of ``source`` (tests replace this)."""
        if source == "images":
            return QFileDialog.getExistingDirectory(self, "Image folder") or None
        pattern = (
            "CSV files (*.csv *.tsv *.txt)"
            if source in ("csv", "image_list")
            else "NumPy arrays (*.npz *.npy);;NumPy .npz (*.npz);;NumPy .npy (*.npy)"
        )
        path, _ = QFileDialog.getOpenFileName(self, "Data file", "", f"{pattern};;All (*)")
        return path or None

    def _on_edit(self, *_args: Any) -> None:
        if self._loading or self.project is None:
            return
        new = self.build_section()
        if new != self.project.data:
            self.undo_stack.push(SetSection("data", new, "Change data settings"))

    def build_section(self) -> dict[str, Any]:
        """The data section the widgets describe (keys of other sources dropped)."""
        old = self.section()
        source = self.source.currentData() or "builtin:digits"
        s: dict[str, Any] = {"source": source}
        if source != old.get("source"):
            for key in ("validation_split", "test_split", "seed", "standardize"):
                if key in old:
                    s[key] = old[key]
            return s
        name = source.removeprefix("builtin:")
        if not source.startswith("builtin:") and self.path.text().strip():
            s["path"] = self.path.text().strip()
        if source == "csv":
            self._text(s, "target", self.target.currentText())
            self._names(s, "features", self.features.text())
            self._names(s, "categorical", self.categorical.text())
            if self.task.currentData():
                s["task"] = self.task.currentData()
            self._choice(s, old, "missing", self.missing)
            if "delimiter" in old:
                s["delimiter"] = old["delimiter"]
        elif source == "npz":
            self._text(s, "x", self.x_array.currentText())
            self._text(s, "y", self.y_array.currentText())
        elif source in IMAGE_SOURCES:
            if self.image_size.value():
                s["image_size"] = [self.image_size.value()] * 2
            if self.color_mode.currentText() in ("grayscale", "rgb"):
                s["color_mode"] = self.color_mode.currentText()
            if self.resize_mode.currentData() != "stretch" or "resize" in old:
                s["resize"] = self.resize_mode.currentData()
            self._choice(s, old, "cache", self.cache)
            self._choice(s, old, "corrupt_files", self.corrupt)
            for key in IMAGE_KEYS:
                if key in old:
                    s[key] = old[key]
        elif name in PLANE_SETS or name == "adding":
            self._number(s, old, "samples", self.samples.value(), 1000 if name == "adding" else 500)
            if name in PLANE_SETS and name != "xor":
                self._number(
                    s, old, "noise", round(self.noise.value(), 4), {"moons": 0.1}.get(name, 0.05)
                )
            if name == "adding":
                self._number(s, old, "length", self.length.value(), 50)
        s["validation_split"] = round(self.validation.value(), 4)
        self._number(s, old, "test_split", round(self.test.value(), 4), 0.0)
        self._number(s, old, "seed", self.seed.value(), 0)
        if self.standardize.currentData() is not None:
            s["standardize"] = self.standardize.currentData()
        return s

    @staticmethod
    def _text(s: dict[str, Any], key: str, text: str) -> None:
        if text.strip():
            s[key] = text.strip()

    @staticmethod
    def _names(s: dict[str, Any], key: str, text: str) -> None:
        names = [p.strip() for p in text.split(",") if p.strip()]
        if names:
            s[key] = names

    @staticmethod
    def _choice(s: dict[str, Any], old: dict[str, Any], key: str, combo: QComboBox) -> None:
        """A combo's value, written when it is not the default (first) or was there."""
        if combo.currentIndex() > 0 or key in old:
            s[key] = combo.currentData()

    @staticmethod
    def _number(s: dict[str, Any], old: dict[str, Any], key: str, value: Any, default: Any) -> None:
        if value != default or key in old:
            s[key] = value

    # ------------------------------------------------------------- loading
    def reload(self) -> None:
        """Load the data for the preview in the background (the last edit wins)."""
        if self.project is None:
            return
        section = self.section()
        source = str(section.get("source", ""))
        self.summary.setText("Loading the data…")
        self.spinner.show()
        self._job.submit(
            load_preview,
            section,
            self.project.base_dir,
            self.model_input if source in IMAGE_SOURCES else None,
        )

    def _fill_pickers(self, section: dict[str, Any], names: list[str]) -> None:
        source = section.get("source")
        if source not in ("csv", "npz") or not section.get("path"):
            return
        combos = (self.target,) if source == "csv" else (self.x_array, self.y_array)
        for combo in combos:
            text = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            combo.setEditText(text)
            combo.blockSignals(False)

    @property
    def busy(self) -> bool:
        """True while a preview is loading."""
        return self._job.busy

    def _on_preview(self, preview: Preview) -> None:
        if self.project is None or preview.section != self.project.data:
            return  # the section changed meanwhile; its own load is on the way
        self.spinner.hide()
        self._fill_pickers(preview.section, preview.names)
        if preview.dataset is None:
            self._on_load_failed(preview.error, preview.fix)
        else:
            self._thumbnails = preview.thumbnails
            self._on_loaded(preview.dataset, preview.summary)

    def _on_job_failed(self, exc: BaseException) -> None:
        self.spinner.hide()
        self._on_load_failed(str(exc) or type(exc).__name__)

    def _on_load_failed(self, error: str, fix: DataFix | None = None) -> None:
        self.dataset = None
        self.load_error, self.load_fix = error, fix
        self.fix_button.setText(fix.text if fix else "")
        self.fix_button.setVisible(fix is not None)
        self.summary.setText("")
        self.message.setText(f"The data cannot be loaded: {error}")
        self.message.setStyleSheet("color: #dc2626;")
        self.preview.setCurrentWidget(self.message_page)
        self._update_fit()

    def fix_command(self) -> SetSection | None:
        """The undoable command applying :attr:`load_fix` to the data section as it is
        now (None without a fix)."""
        fix = self.load_fix
        if fix is None or self.project is None:
            return None
        return SetSection("data", {**self.project.data, **fix.changes}, fix.text)

    def apply_fix(self) -> None:
        command = self.fix_command()
        if command is not None:
            self.undo_stack.push(command)

    def _on_loaded(self, ds: Dataset, info: dict[str, Any]) -> None:
        self.dataset = ds
        self.load_error, self.load_fix = "", None
        self.fix_button.hide()
        shape = tuple(info["input_shape"])
        if ds.task == "classification":
            target = f"{ds.num_classes} classes"
        else:
            target = f"regression, target shape {tuple(info['target_shape'])}"
        splits = f"{info['train']:,} train · {info['validation']:,} validation"
        if info["test"]:
            splits += f" · {info['test']:,} test"
        self.summary.setText(
            f"<b>{ds.source}</b>: {splits} · {target} · one sample is "
            f"{shape}" + (" · standardized" if info["standardized"] else "")
        )
        self._show_preview(ds)
        self._update_fit()
        self.loaded.emit(info)

    # ------------------------------------------------------------- preview
    def _raw(self, x: np.ndarray, ds: Dataset) -> np.ndarray:
        if ds.mean is None or ds.std is None:
            return x
        return x * ds.std + ds.mean

    def _label(self, ds: Dataset, y: Any) -> str:
        if ds.task == "classification":
            return ds.class_names[int(y)] if int(y) < len(ds.class_names) else str(int(y))
        values = np.ravel(y)
        return ", ".join(f"{v:.3g}" for v in values[:3])

    def _show_preview(self, ds: Dataset) -> None:
        shape = ds.input_shape
        if len(shape) == 3 and shape[-1] in (1, 3) and min(shape[:2]) >= 4:
            self._show_images(ds)
        elif len(shape) == 1 and shape[0] == 2 and ds.task == "classification":
            self._show_scatter(ds)
        elif len(shape) == 2:
            self._show_sequences(ds)
        elif len(shape) == 1:
            self._show_table(ds)
        else:
            self.message.setStyleSheet("")
            self.message.setText(f"No preview for samples of shape {shape}.")
            self.preview.setCurrentWidget(self.message_page)

    def _show_table(self, ds: Dataset) -> None:
        x = self._raw(ds.take("train", PREVIEW_ROWS), ds)
        names = list(ds.feature_names) or [f"x{i + 1}" for i in range(x.shape[1])]
        self.table.clear()
        self.table.setRowCount(len(x))
        self.table.setColumnCount(len(names) + 1)
        self.table.setHorizontalHeaderLabels(names + ["target"])
        for r, row in enumerate(x):
            for c, value in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(f"{value:.4g}"))
            self.table.setItem(r, len(names), QTableWidgetItem(self._label(ds, ds.y_train[r])))
        self.table.resizeColumnsToContents()
        self.preview.setCurrentWidget(self.table)

    def _show_images(self, ds: Dataset) -> None:
        self.thumbnails.clear()
        if ds.images is not None:  # decoded in the background, from the files
            for image, label, tip in self._thumbnails:
                item = QListWidgetItem(QIcon(QPixmap.fromImage(image)), label)
                item.setToolTip(tip)
                self.thumbnails.addItem(item)
            self.preview.setCurrentWidget(self.thumbnails)
            return
        for i in range(min(THUMBNAILS, ds.count("train"))):
            picture = self._raw(ds.x_train[i], ds)
            item = QListWidgetItem(QIcon(thumbnail(picture, 48)), self._label(ds, ds.y_train[i]))
            self.thumbnails.addItem(item)
        self.preview.setCurrentWidget(self.thumbnails)

    def _make_plot(self) -> None:
        import pyqtgraph as pg

        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setBackground(None)
        self.plot_widget.setMinimumHeight(160)
        self.plot = self.plot_widget.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.addLegend(offset=(-6, 6), labelTextSize="8pt")
        self.preview.addWidget(self.plot_widget)

    def _plot_now(self, ds: Dataset) -> bool:
        """Whether to draw a plot preview of ``ds`` now: not while the panel is hidden
        (the window checks the data before the Training tab is first shown, and need not
        import pyqtgraph for it); then it is drawn when the panel is shown."""
        if not self.isVisible():
            self._plot_due = ds
            self.preview.setCurrentWidget(self.message_page)
            self.message.setText("")
            return False
        self._plot_due = None
        if self.plot_widget is None:
            self._make_plot()
        return True

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._plot_due is not None and self._plot_due is self.dataset:
            self._show_preview(self._plot_due)

    def _show_scatter(self, ds: Dataset) -> None:
        if not self._plot_now(ds):
            return
        self.plot.clear()
        x = self._raw(ds.take("train", SCATTER_POINTS), ds)
        y = ds.y_train[: len(x)]
        for c, name in enumerate(ds.class_names):
            pts = x[y == c]
            color = CLASS_COLORS[c % len(CLASS_COLORS)]
            self.plot.plot(
                pts[:, 0],
                pts[:, 1],
                pen=None,
                symbol="o",
                symbolSize=5,
                symbolBrush=color,
                symbolPen=None,
                name=f"class {name}",
            )
        names = ds.feature_names or ["x1", "x2"]
        self.plot.setLabel("bottom", names[0])
        self.plot.setLabel("left", names[1])
        self.preview.setCurrentWidget(self.plot_widget)

    def _show_sequences(self, ds: Dataset) -> None:
        if not self._plot_now(ds):
            return
        import pyqtgraph as pg

        self.plot.clear()
        x = self._raw(ds.take("train", SEQUENCES), ds)
        for i, seq in enumerate(x):
            color = CLASS_COLORS[i % len(CLASS_COLORS)]
            self.plot.plot(
                np.arange(len(seq)),
                seq[:, 0],
                pen=pg.mkPen(color, width=1.5),
                name=f"sample {i + 1} (target {self._label(ds, ds.y_train[i])})",
            )
        self.plot.setLabel("bottom", "time step")
        self.plot.setLabel("left", "feature 1")
        self.preview.setCurrentWidget(self.plot_widget)

    # ----------------------------------------------------------------- fit
    def set_model_shapes(self, input_shape: tuple | None, output_shape: tuple | None) -> None:
        """The model's input and output shapes without the batch axis (None: unknown)."""
        changed_input = input_shape != self.model_input
        self.model_input, self.model_output = input_shape, output_shape
        if (
            changed_input
            and self.project is not None
            and self.project.data.get("source") in IMAGE_SOURCES
        ):
            self.reload()
        else:
            self._update_fit()

    def _update_fit(self) -> None:
        ds = self.dataset
        problems: list[str] = []
        if ds is not None and self.model_input is not None and self.project is not None:
            loss = loss_name(self.project.training or {}, ds.task, ds.num_classes)
            output = self.model_output
            if output is None:  # not known yet: check the input only
                output = (ds.num_classes,) if ds.task == "classification" else ds.target_shape
            try:
                problems = check_fit(ds, self.model_input, output, loss)
            except Exception as exc:
                problems = [f"the data cannot be checked against the model: {exc}"]
        if problems:
            self.fit_label.setText(
                "<span style='color:#dc2626'><b>The data does not fit the "
                "model:</b> " + "; ".join(problems) + "</span>"
            )
        elif ds is not None and self.model_input is not None:
            self.fit_label.setText("<span style='color:#16a34a'>● The data fits the model</span>")
        else:
            self.fit_label.setText("")
        if problems != self.fit_problems:
            self.fit_problems = problems
            self.fit_changed.emit(list(problems))


def _short(description: str) -> str:
    """A built-in set's description up to its first colon, comma or shape: "Two
    interleaving half circles in 2-D" (not "... in 2-D (2")."""
    return description.split(":")[0].split(",")[0].split(" (")[0].strip()


def thumbnail(picture: np.ndarray, size: int) -> QPixmap:
    """A thumbnail of one (H, W) or (H, W, 1 | 3) picture, scaled to its own range, to
    fit ``size`` pixels (nearest pixel)."""
    a = np.asarray(picture, dtype=np.float64)
    a = a[:, :, None] if a.ndim == 2 else a
    low, high = float(np.nanmin(a)), float(np.nanmax(a))
    a = (a - low) / (high - low) if high > low else np.zeros_like(a)
    a = np.ascontiguousarray((a * 255).round().astype(np.uint8))
    h, w, c = a.shape
    if c == 1:
        image = QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8)
    else:
        image = QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy()).scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
    )


def main() -> None:
    """``python -m gui.training.data_panel [project.json]``: the panel on its own."""
    app = QApplication(sys.argv[:1])
    project = load_project(sys.argv[1]) if len(sys.argv) > 1 else new_project()
    panel = DataPanel()
    panel.set_project(project, UndoStack(project))
    panel.resize(460, 760)
    panel.show()
    app.exec()


if __name__ == "__main__":
    main()
