"""The start page shown when LayerLab opens without a file: a new empty project, a
gallery of the presets (description and the accuracy measured in presets/README.md),
Open… and the recent files."""

from __future__ import annotations

import json
import re
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from presets import presets_dir

PATH_ROLE = Qt.ItemDataRole.UserRole


def measured_results(readme: Path | None = None) -> dict[str, str]:
    """``{preset stem: "96.1% val accuracy"}`` from the table in presets/README.md."""
    readme = readme or presets_dir() / "README.md"
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`([\w.-]+)`", cells[0]) if len(cells) >= 6 else None
        if match:
            out[match.group(1)] = cells[5]
    return out


def preset_entries() -> list[tuple[str, str, str, Path]]:
    """``(name, description, measured result, path)`` of every preset, by name."""
    results = measured_results()
    out = []
    for path in sorted(presets_dir().glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        name = str(data.get("name") or path.stem)
        out.append((name, str(data.get("description") or ""), results.get(path.stem, ""), path))
    return sorted(out, key=lambda e: e[0].lower())


def first_sentence(text: str, limit: int = 160) -> str:
    sentence = text.split(". ")[0].strip().rstrip(".")
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "\u2026"


class StartPage(QWidget):
    """What to open first.

    Signals:
        new_requested(): an empty project.
        pretrained_requested(): New from Pretrained… (transfer learning).
        preset_requested(object): a preset's path (a new unsaved project from it).
        open_requested(): File > Open….
        recent_requested(str): a recent file's path.
    """

    new_requested = Signal()
    pretrained_requested = Signal()
    preset_requested = Signal(object)
    open_requested = Signal()
    recent_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("start_page")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(32, 24, 32, 24)
        title = QLabel(
            "<h2>Welcome to LayerLab</h2>Build a Keras model by drag and drop, "
            "train it, see what it gets wrong, and export it."
        )
        title.setWordWrap(True)
        outer.addWidget(title)
        columns = QHBoxLayout()
        outer.addLayout(columns, 1)

        left = QVBoxLayout()
        self.new_button = QPushButton("New empty project")
        self.new_button.clicked.connect(self.new_requested)
        self.open_button = QPushButton("Open\u2026")
        self.open_button.clicked.connect(self.open_requested)
        left.addWidget(self.new_button)
        self.pretrained_button = QPushButton("New from pretrained\u2026")
        self.pretrained_button.setToolTip(
            "Transfer learning: a network pretrained on ImageNet and your image folder"
        )
        self.pretrained_button.clicked.connect(self.pretrained_requested)
        left.addWidget(self.pretrained_button)
        left.addWidget(self.open_button)
        left.addSpacing(12)
        left.addWidget(QLabel("<b>Recent files</b>"))
        self.recent = QListWidget()
        self.recent.itemActivated.connect(
            lambda item: self.recent_requested.emit(str(item.data(PATH_ROLE)))
        )
        self.recent.itemDoubleClicked.connect(
            lambda item: self.recent_requested.emit(str(item.data(PATH_ROLE)))
        )
        left.addWidget(self.recent, 1)
        columns.addLayout(left, 2)

        right = QVBoxLayout()
        right.addWidget(
            QLabel(
                "<b>New from a preset</b> (double-click; the accuracy was "
                "measured with the preset's own settings)"
            )
        )
        self.gallery = QListWidget()
        self.gallery.setWordWrap(True)
        self.gallery.setAlternatingRowColors(True)
        for name, description, result, path in preset_entries():
            head = f"{name}" + (f"  \u00b7  {result}" if result else "")
            item = QListWidgetItem(
                head + ("\n" + first_sentence(description) if description else "")
            )
            item.setData(PATH_ROLE, str(path))
            item.setToolTip(f"{name}\n\n{description}\n\n{path.name}")
            self.gallery.addItem(item)
        self.gallery.itemActivated.connect(self._preset)
        self.gallery.itemDoubleClicked.connect(self._preset)
        right.addWidget(self.gallery, 1)
        columns.addLayout(right, 3)

    def _preset(self, item: QListWidgetItem) -> None:
        self.preset_requested.emit(Path(str(item.data(PATH_ROLE))))

    def set_recent(self, paths: list[str]) -> None:
        """Show ``paths`` (newest first), or say there are none."""
        self.recent.clear()
        for path in paths:
            item = QListWidgetItem(f"{Path(path).name}\n{Path(path).parent}")
            item.setData(PATH_ROLE, path)
            item.setToolTip(path)
            self.recent.addItem(item)
        if not paths:
            item = QListWidgetItem("(no recent files yet)")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.recent.addItem(item)

    def preset_texts(self) -> list[str]:
        return [self.gallery.item(i).text() for i in range(self.gallery.count())]
