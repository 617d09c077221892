"""File > New from Pretrained… (and the start page's button): choose a pretrained
network and an image folder; the engine (:func:`engine.cli.new.new_from_pretrained`)
makes the transfer-learning project.

The image folder's class sub-folders are listed on a background thread (a folder on
a slow or network disk never blocks the window); OK is enabled once they are known.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.catalog.backbones import BACKBONES
from engine.cli.new import NewProjectError, class_folders, new_from_pretrained
from engine.model.project import Project

DEFAULT_BACKBONE = "MobileNetV2"

_PREPROCESS_WORDS = {
    "tf": "scales pixels to [-1, 1]",
    "torch": "ImageNet mean and standard deviation",
    "caffe": "BGR minus the ImageNet mean",
    "none": "rescales pixels itself",
}


class NewPretrainedDialog(QDialog):
    """A network, an image folder, an input size and the starting weights."""

    classes_listed = Signal(int, object)  # request number, list of names or an error text

    def __init__(self, parent: QWidget | None = None, folder: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("New from Pretrained")
        self._request = 0
        self._classes: list[str] | None = None
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Transfer learning: a network pretrained on ImageNet, frozen, turns each picture "
            "into features; only a small new classifier learns your classes. Put each "
            "class's images in a sub-folder named after the class."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        layout.addLayout(form)

        self.backbone = QComboBox()
        for name, b in BACKBONES.items():
            self.backbone.addItem(f"{name}  ({b.size}x{b.size})", name)
        self.backbone.setCurrentIndex(self.backbone.findData(DEFAULT_BACKBONE))
        self.backbone.currentIndexChanged.connect(self._on_backbone)
        form.addRow("Network", self.backbone)

        row = QHBoxLayout()
        self.folder = QLineEdit(folder)
        self.folder.setPlaceholderText("a folder with one sub-folder of images per class")
        self.folder.editingFinished.connect(self._list_classes)
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse)
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form.addRow("Image folder", row)
        self.classes_label = QLabel("")
        self.classes_label.setWordWrap(True)
        form.addRow("", self.classes_label)

        self.input_size = QSpinBox()
        self.input_size.setRange(32, 1024)
        self.input_size.setSuffix(" px")
        self.input_size.setToolTip("Input height and width; smaller trains faster")
        form.addRow("Input size", self.input_size)

        self.weights = QComboBox()
        self.weights.addItem("ImageNet (Keras downloads them once, then caches them)", "imagenet")
        self.weights.addItem("None (random start, no download)", None)
        form.addRow("Weights", self.weights)
        self.about = QLabel("")
        self.about.setWordWrap(True)
        form.addRow("", self.about)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.classes_listed.connect(self._on_classes)
        self._on_backbone()
        self._sync_ok()
        if folder:
            self._list_classes()

    # ------------------------------------------------------------------ state
    def chosen_backbone(self) -> str:
        return str(self.backbone.currentData())

    def classes(self) -> list[str] | None:
        return self._classes

    def project(self) -> Project:
        """The new project (call after the dialog was accepted).

        Raises:
            NewProjectError: When the choices cannot make one.
        """
        return new_from_pretrained(
            self.chosen_backbone(),
            self.folder.text().strip(),
            size=self.input_size.value(),
            weights=self.weights.currentData(),
            classes=self._classes,
        )

    # --------------------------------------------------------------- reactions
    def _on_backbone(self, *_args: Any) -> None:
        b = BACKBONES[self.chosen_backbone()]
        self.input_size.setMinimum(b.min_size)
        self.input_size.setValue(b.size)
        self.about.setText(
            f"{b.name} was trained at {b.size}x{b.size} (it takes {b.min_size} and up); "
            f"its preprocessing node {_PREPROCESS_WORDS[b.preprocess]}."
        )

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Image folder", self.folder.text())
        if folder:
            self.folder.setText(folder)
            self._list_classes()

    def _list_classes(self) -> None:
        text = self.folder.text().strip()
        self._request += 1
        self._classes = None
        self._sync_ok()
        if not text:
            self.classes_label.setText("")
            return
        self.classes_label.setText("looking for class folders\u2026")
        request = self._request

        def work() -> None:
            try:
                found: Any = class_folders(Path(text))
            except NewProjectError as exc:
                found = str(exc)
            self.classes_listed.emit(request, found)

        threading.Thread(target=work, name="list-classes", daemon=True).start()

    def _on_classes(self, request: int, found: Any) -> None:
        if request != self._request:
            return  # an older folder's answer
        if isinstance(found, str):
            self.classes_label.setText(f"<span style='color:#c0392b'>{found}</span>")
            self._classes = None
        else:
            shown = ", ".join(found[:8]) + (f" and {len(found) - 8} more" if len(found) > 8 else "")
            self.classes_label.setText(f"{len(found)} classes: {shown}")
            self._classes = list(found)
        self._sync_ok()

    def _sync_ok(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(self._classes is not None)


def create_from_dialog(window: Any, dialog: NewPretrainedDialog) -> bool:
    """Show ``dialog``; when accepted, make its project ``window``'s (unsaved, like a
    preset). A choice the engine refuses is shown and nothing changes."""
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return False
    return adopt(window, dialog)


def adopt(window: Any, dialog: NewPretrainedDialog) -> bool:
    """Make the accepted ``dialog``'s project ``window``'s."""
    try:
        project = dialog.project()
    except NewProjectError as exc:
        window._warn("Cannot create the project", str(exc))
        return False
    window._replace_project(project)
    window.statusBar().showMessage(
        f"New project: {dialog.chosen_backbone()} (frozen) on {len(dialog.classes() or [])} "
        "classes. Train it as it is, then fine-tune.",
        8000,
    )
    return True
