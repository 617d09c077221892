"""Export a run's trained model (or a project's untrained build) from a dialog.

The dialog picks the format (keras, SavedModel, ONNX, TFLite with optional
quantisation, a Python script, legacy HDF5), the output path and whether to verify
the file by reloading it; :func:`engine.io.export.export` then runs in a child process
of its own (:class:`gui.engine_service.EngineJob`: TensorFlow never loads in the
window) while a busy bar shows what it is doing, and the result (file, size, largest
difference from the source model) or the error message appears in the dialog. The UI
never waits for the export, and no traceback ever reaches the user.

While it runs, Cancel kills the export's process and the dialog says "Export
cancelled": the target is never partial (exports write through a temporary name) and
the job's reader thread removes the temporary files the killed process left
(:func:`engine.service.jobs.remove_partial_export`).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.human import human_size
from engine.io.export import SUFFIXES, ExportError
from gui import theme
from gui.engine_service import EngineJob

FORMAT_LABELS = {
    "keras": "Keras (.keras) — the full model, reloadable in Keras",
    "savedmodel": "TensorFlow SavedModel (folder) — TF Serving, TF.js converters",
    "onnx": "ONNX (.onnx) — ONNX Runtime, other frameworks",
    "tflite": "TensorFlow Lite (.tflite) — phones and microcontrollers",
    "python": "Python script (.py) — rebuilds and trains the model",
    "h5": "Legacy HDF5 (.h5) — older Keras versions",
}
QUANTIZE_LABELS = {
    "none": "none (float32)",
    "float16": "float16 weights",
    "int8": "int8 weights (dynamic range)",
}

_LIVE: set[EngineJob] = set()
"""Exports still running (kept alive even if their dialog is closed)."""


def one_line(exc: BaseException, fmt: str) -> str:
    """A message for the user from an exception: its first meaningful line, never a
    traceback."""
    lines = [
        ln.strip()
        for ln in str(exc).splitlines()
        if ln.strip() and not ln.strip().startswith(("Traceback", 'File "', "^"))
    ]
    text = lines[0] if lines else type(exc).__name__
    if len(text) > 400:
        text = text[:397] + "..."
    if isinstance(exc, ExportError):
        return text
    return f"{fmt} export failed: {text}"


class ExportDialog(QDialog):
    """Choose a format and a path, export in the background, show how the check went.

    Args:
        source: A run directory (its trained ``model.keras`` is exported) or a
            :class:`engine.model.project.Project` (an untrained build).
        parent: Optional parent widget.

    Signals:
        finished_export(bool, str): Emitted when an export ends: success and the
            message shown (the result line, or the error).
    """

    finished_export = Signal(bool, str)

    def __init__(self, source: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.result: Any = None
        self.error: str | None = None
        self._thread: EngineJob | None = None
        is_run = isinstance(source, (str, os.PathLike))
        imported = not is_run and bool(getattr(source, "extra", {}).get("weights"))
        what = (
            f"run {Path(source).name}"
            if is_run
            else f"project '{getattr(source, 'name', 'Untitled')}'"
            + ("" if imported else " (untrained)")
        )
        self.setWindowTitle(f"Export {what}")
        self.resize(560, 300)

        layout = QVBoxLayout(self)
        if is_run:
            text = f"Export the model of {what}."
        elif imported:
            text = (
                f"Export the model of {what} with the weights imported with it (layers "
                "changed since the import are freshly initialised)."
            )
        else:
            text = (
                f"Export the model of {what}: its weights are freshly initialised; "
                "export a finished run for trained weights."
            )
        self.intro = intro = QLabel(text)
        intro.setWordWrap(True)
        layout.addWidget(intro)

        form = QFormLayout()
        self.format_box = QComboBox()
        for fmt, label in FORMAT_LABELS.items():
            self.format_box.addItem(label, fmt)
        form.addRow("Format", self.format_box)
        self.quantize_box = QComboBox()
        for q, label in QUANTIZE_LABELS.items():
            self.quantize_box.addItem(label, q)
        form.addRow("Quantisation", self.quantize_box)
        path_row = QHBoxLayout()
        self.path_edit = QLineEdit()
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        form.addRow("Save to", path_row)
        self.verify_box = QCheckBox("Reload the file and compare its predictions with the model's")
        self.verify_box.setChecked(True)
        form.addRow("Verify", self.verify_box)
        layout.addLayout(form)

        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.progress.hide()
        layout.addWidget(self.progress)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status_label)
        layout.addStretch(1)

        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton(
            "Export", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.cancel_button = self.buttons.addButton(
            "Cancel export", QDialogButtonBox.ButtonRole.RejectRole
        )
        self.cancel_button.setToolTip("Stop the export; nothing is written at the target")
        self.cancel_button.hide()
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button.clicked.connect(self.cancel_export)
        self.close_button.clicked.connect(self.reject)
        layout.addWidget(self.buttons)

        self.format_box.currentIndexChanged.connect(self._on_format_changed)
        self.path_edit.setText(str(self._default_path("keras")))
        self._on_format_changed()

    # ------------------------------------------------------------------ choices
    @property
    def fmt(self) -> str:
        return str(self.format_box.currentData())

    def set_format(self, fmt: str) -> None:
        """Select ``fmt`` (one of :data:`FORMAT_LABELS`)."""
        self.format_box.setCurrentIndex(self.format_box.findData(fmt))

    def _default_path(self, fmt: str) -> Path:
        if isinstance(self.source, (str, os.PathLike)):
            run = Path(self.source)
            return run / "export" / f"model{SUFFIXES[fmt]}"
        name = (
            "".join(
                c if c.isalnum() or c in "-_" else "_"
                for c in getattr(self.source, "name", "model")
            )
            or "model"
        )
        path = getattr(self.source, "path", None)
        folder = Path(path).parent if path else Path.home()
        return folder / f"{name}{SUFFIXES[fmt]}"

    def _on_format_changed(self) -> None:
        fmt = self.fmt
        self.quantize_box.setEnabled(fmt == "tflite")
        if fmt != "tflite":
            self.quantize_box.setCurrentIndex(0)
        text = self.path_edit.text().strip()
        if text:
            path = Path(text)
            stem = path.name[: -len(path.suffix)] if path.suffix else path.name
            self.path_edit.setText(str(path.with_name(stem + SUFFIXES[fmt])))
        else:
            self.path_edit.setText(str(self._default_path(fmt)))

    def _browse(self) -> None:
        current = self.path_edit.text().strip()
        if self.fmt == "savedmodel":
            path = QFileDialog.getExistingDirectory(
                self, "Folder for the SavedModel", str(Path(current).parent)
            )
        else:
            suffix = SUFFIXES[self.fmt]
            path, _ = QFileDialog.getSaveFileName(
                self, "Export to", current, f"{self.fmt} files (*{suffix})"
            )
        if path:
            self.path_edit.setText(path)

    # ------------------------------------------------------------------ running
    def is_running(self) -> bool:
        return self._thread is not None

    def start_export(self) -> None:
        """Start the export in the background (the dialog stays responsive)."""
        if self._thread is not None:
            return
        out = self.path_edit.text().strip()
        if not out:
            self._show_error("Choose where to save the export.")
            return
        fmt = self.fmt
        if isinstance(self.source, (str, os.PathLike)):
            source: Any = str(self.source)
            project_path = None
        else:  # the project travels as its dict
            source = self.source.to_dict()
            project_path = str(self.source.path) if self.source.path else None
        args = {
            "source": source,
            "path": project_path,
            "fmt": fmt,
            "out": out,
            "verify": self.verify_box.isChecked(),
            "quantize": str(self.quantize_box.currentData()),
        }
        thread = EngineJob("export", args)
        thread.done.connect(self._on_result)
        thread.failed.connect(self._on_failed)
        thread.progress.connect(self._on_progress)
        for signal in (thread.done, thread.failed):
            signal.connect(lambda *_: _LIVE.discard(thread))
        _LIVE.add(thread)
        self._thread = thread
        self.result, self.error = None, None
        self._set_busy(True)
        self.status_label.setStyleSheet("")
        self.status_label.setText(f"Exporting to {self.fmt}…")
        thread.start()

    def cancel_export(self) -> None:
        """Kill the running export's process; the dialog says "Export cancelled" and
        the options are editable again (the temporary files go with the job)."""
        thread = self._thread
        if thread is None:
            return
        thread.cancel()
        _LIVE.discard(thread)
        self._thread = None
        self._set_busy(False)
        self.result, self.error = None, None
        self.status_label.setStyleSheet("")
        self.status_label.setText("Export cancelled: nothing was written.")
        self.finished_export.emit(False, "Export cancelled")

    def _on_failed(self, exc: BaseException) -> None:
        self._on_error(one_line(exc, self.fmt))  # the format stays fixed while busy

    def _on_progress(self, text: str) -> None:
        if self._thread is not None:
            self.status_label.setText(html.escape(text))

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.export_button.setVisible(not busy)
        for w in (
            self.export_button,
            self.format_box,
            self.quantize_box,
            self.path_edit,
            self.browse_button,
            self.verify_box,
        ):
            w.setEnabled(not busy)
        if not busy:
            self.quantize_box.setEnabled(self.fmt == "tflite")

    def _on_result(self, res: Any) -> None:
        self._thread = None
        self._set_busy(False)
        self.result = res
        if res.max_abs_diff is not None:
            diff = f"max |diff| {res.max_abs_diff:.3g}"
        else:
            diff = "max |diff| not measured"
        ok_colour = "#15803d" if not theme.is_dark() else "#4ade80"
        detail = str(res.message)
        if detail.lower().startswith("verified"):
            detail = detail[len("verified") :].lstrip(" :—-")
        if res.verified:
            state = f"<b style='color:{ok_colour}'>Verified</b>"
        elif not self.verify_box.isChecked():
            state, detail = "<b>Written, not verified</b>", ""
        else:
            state = f"<b style='color:{theme.colors()['error']}'>Check failed</b>"
        weights = getattr(res, "weights", None)
        extra = f"<br>Weights: {html.escape(str(weights))}" if weights else ""
        head = f"{state}: {html.escape(detail)}" if detail else state
        diff = "" if "max |diff|" in detail else f" · {diff}"  # said once
        self.status_label.setText(
            f"{head}<br>File: {html.escape(str(res.path))}<br>"
            f"Size: {human_size(res.size_bytes)}{diff}{extra}"
        )
        ok = bool(res.verified or not self.verify_box.isChecked())
        self.finished_export.emit(ok, self.message())

    def _on_error(self, message: str) -> None:
        self._thread = None
        self._set_busy(False)
        self._show_error(message)
        self.finished_export.emit(False, message)

    def _show_error(self, message: str) -> None:
        self.error = message
        self.status_label.setStyleSheet(f"color: {theme.colors()['error']};")
        self.status_label.setText(html.escape(message))

    def message(self) -> str:
        """The text the dialog shows under the options (result or error), as plain text."""
        doc = QTextDocument()
        doc.setHtml(self.status_label.text())
        return doc.toPlainText()


def wait_for_exports(timeout_ms: int = 120_000) -> bool:
    """Wait until every background export has ended (tests, application exit); their
    results are then queued for the UI thread."""
    return all(job.wait(timeout_ms / 1000) for job in list(_LIVE))


UNTRAINED = "untrained"
""":class:`ExportChoice`'s answer for the untrained project (instead of a run folder)."""


def run_choice_text(run: Any, number: int) -> str:
    """One line naming a run in :class:`ExportChoice`: number, status, epochs, best metric."""
    when = run.started.strftime("%d %b %H:%M")
    best = ""
    if run.best_val_accuracy is not None:
        best = f" · best val accuracy {run.best_val_accuracy:.3f}"
    elif run.best_val_loss is not None:
        best = f" · best val loss {run.best_val_loss:.4g}"
    epochs = f"{run.epochs} epoch{'s' * (run.epochs != 1)}"
    return f"Run #{number} ({run.status}, {when}) · {epochs}{best}"


class ExportChoice(QDialog):
    """File > Export: which model to export, a trained run or the untrained project.

    Args:
        runs: :class:`engine.train.history.RunInfo` of the project's runs, newest first;
            those with a model are listed. The latest finished one is selected.
        parent: Optional parent widget.

    ``choice()`` is the selected run folder (str) or :data:`UNTRAINED`.
    """

    def __init__(self, runs: list[Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export which model?")
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Export the trained model of a run, or the project as it is now with freshly "
            "initialised weights."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.list = QListWidget()
        total = len(runs)
        default_row = None
        for i, run in enumerate(runs):
            if not run.has_model:
                continue
            item = QListWidgetItem(run_choice_text(run, total - i))
            item.setData(Qt.ItemDataRole.UserRole, str(run.run_dir))
            item.setToolTip(str(run.run_dir))
            self.list.addItem(item)
            if default_row is None and run.status == "finished":
                default_row = self.list.count() - 1
        item = QListWidgetItem("The untrained project (its weights freshly initialised)")
        item.setData(Qt.ItemDataRole.UserRole, UNTRAINED)
        self.list.addItem(item)
        self.list.setCurrentRow(0 if default_row is None else default_row)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        layout.addWidget(self.list, 1)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export…")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        width = self.list.sizeHintForColumn(0) + 60
        self.resize(max(480, min(width, 900)), 300)

    def choice(self) -> str:
        item = self.list.currentItem()
        return str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else UNTRAINED
