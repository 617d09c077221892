"""The Inside tab's input row: which input the tab looks inside for.

A sample of the run's validation split (a spin box), or a file of the user's own
(chosen with "Choose file…", dropped on the tab, or handed over by Try it); "Back to
samples" returns to the split. Once the engine has drawn an input, the row names it
and shows its thumbnail (:meth:`InputRow.show_source`). When a file cannot be looked
inside, :meth:`InputRow.keep_shown` puts the row back on the input still drawn, so
the row, the pictures and the next "Look inside" agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from gui.training.data_panel import thumbnail

THUMB_SIDE = 40
"""Pixels of the thumbnail of the input shown."""
FILE_FILTER = "Inputs (*.png *.jpg *.jpeg *.bmp *.gif *.npy *.csv);;All files (*)"


class InputRow(QWidget):
    """The sample box, the thumbnail and name of the input shown, and the file buttons."""

    file_chosen = Signal(str)
    """The user chose a file ("Choose file…")."""
    samples_wanted = Signal()
    """The user pressed "Back to samples"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.file: str | None = None  # an input of the user's own instead of a sample
        self.sample_box = QSpinBox()
        self.sample_box.setRange(0, 1_000_000)
        self.sample_box.setPrefix("sample ")
        self.sample_box.setToolTip("A sample of the run's validation split")
        self.thumb = QLabel()
        self.thumb.setFixedSize(THUMB_SIDE, THUMB_SIDE)
        self.thumb.setToolTip("The input shown (as the model takes it)")
        self.thumb.setVisible(False)
        self.source_label = QLabel("")
        self.choose_button = QPushButton("Choose file…")
        self.choose_button.setToolTip(
            "Look inside for an input of your own: an image file, a .npy sample or a "
            "one-row .csv (or drop a file on this tab)"
        )
        self.choose_button.clicked.connect(self._choose_file)
        self.samples_button = QPushButton("Back to samples")
        self.samples_button.setToolTip("Show a sample of the validation split again")
        self.samples_button.clicked.connect(self.samples_wanted)
        self.samples_button.setVisible(False)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in (
            self.thumb,
            self.source_label,
            self.sample_box,
            self.choose_button,
            self.samples_button,
        ):
            row.addWidget(widget)

    def set_file(self, path: str | None) -> None:
        """Take the input from the file at ``path``, or (None) from the samples."""
        self.file = path
        self.samples_button.setVisible(path is not None)
        self.sample_box.setEnabled(path is None)

    def keep_shown(self, manifest: dict[str, Any]) -> None:
        """A file could not be looked inside: back to the input ``manifest`` describes
        (what the tab still draws), or to the samples when nothing is drawn yet."""
        self.set_file(manifest.get("file") or None)
        if manifest.get("sample") is not None:
            self.sample_box.setValue(int(manifest["sample"]))

    def which(self) -> str:
        """The input asked for, in words: "file one.png" or "sample 3"."""
        if self.file is not None:
            return f"file {Path(self.file).name}"
        return f"sample {self.sample_box.value()}"

    def arguments(self) -> list[str]:
        """``layerlab inspect``'s arguments for the input asked for."""
        if self.file is not None:
            return ["--file", self.file]
        return ["--sample", str(self.sample_box.value())]

    def show_source(self, manifest: dict[str, Any], arrays: Path) -> None:
        """Which input is drawn, in words, and its thumbnail (for image inputs)."""
        file = manifest.get("file")
        split = manifest.get("split") or "validation"
        split = "training" if split == "train" else split
        self.source_label.setText(
            f"file {Path(file).name}" if file else f"sample {manifest.get('sample')} of {split}"
        )
        self.source_label.setToolTip(file or "")
        path = arrays / "input.npy"
        image = np.load(path) if path.is_file() else None
        if (
            image is None
            or image.ndim not in (2, 3)
            or (image.ndim == 3 and image.shape[-1] not in (1, 3))
        ):
            self.thumb.clear()
            self.thumb.setVisible(False)
            return
        self.thumb.setPixmap(thumbnail(image, THUMB_SIDE))
        self.thumb.setVisible(True)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Look Inside for a File", "", FILE_FILTER)
        if path:
            self.file_chosen.emit(path)
