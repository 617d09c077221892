"""What changed between two runs: layers added, removed or edited, and settings.

``DiffView(run_a, run_b)`` compares the project snapshots (``project.json``) of two
run directories, ``a`` being the earlier one; its text lists are also available as
``layer_lines()`` and ``setting_rows()`` for whoever wants them without the widgets.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.train.history import layer_diff, read_run_info, settings_diff, value_text, when_text
from gui import theme


class DiffView(QDialog):
    """A dialog naming the layers and settings that differ between two runs.

    Args:
        run_a: The earlier run directory (the "from" side).
        run_b: The later run directory (the "to" side).
        parent: Optional parent widget.
    """

    def __init__(
        self, run_a: str | os.PathLike, run_b: str | os.PathLike, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.run_a, self.run_b = Path(run_a), Path(run_b)
        self.setWindowTitle(f"Compare runs {self.run_a.name} → {self.run_b.name}")
        self.resize(640, 480)
        self._layers = layer_diff(self.run_a, self.run_b)
        self._settings = settings_diff(self.run_a, self.run_b)

        layout = QVBoxLayout(self)
        layout.addWidget(self._heading())

        layout.addWidget(self._section_label(_count("Layers", len(self._layers))))
        self.layer_list = QListWidget()
        self.layer_list.setAlternatingRowColors(True)
        self.layer_list.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self.layer_list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        if self._layers:
            for line in self._layers:
                item = QListWidgetItem(line)
                item.setForeground(QColor(self._colour(line)))
                self.layer_list.addItem(item)
        else:
            self.layer_list.addItem(QListWidgetItem("The two models have the same layers."))
        layout.addWidget(self.layer_list, 1)

        layout.addWidget(self._section_label(_count("Settings", len(self._settings))))
        self.settings_table = QTableWidget(len(self._settings), 3)
        self.settings_table.setHorizontalHeaderLabels(["Setting", self.run_a.name, self.run_b.name])
        self.settings_table.verticalHeader().setVisible(False)
        self.settings_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.settings_table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.settings_table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        header = self.settings_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for row, (key, old, new) in enumerate(self._settings):
            for col, text in enumerate((key, value_text(old), value_text(new))):
                self.settings_table.setItem(row, col, QTableWidgetItem(text))
        self.settings_table.resizeColumnsToContents()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.settings_table, 1)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def layer_lines(self) -> list[str]:
        """The layer differences, one line each (empty when the models match)."""
        return list(self._layers)

    def setting_rows(self) -> list[tuple[str, str, str]]:
        """``(setting, value in a, value in b)`` as shown in the table."""
        table = self.settings_table
        return [
            tuple(table.item(r, c).text() for c in range(3))  # type: ignore[misc]
            for r in range(table.rowCount())
        ]

    def _heading(self) -> QLabel:
        parts = []
        for tag, run in (("A", self.run_a), ("B", self.run_b)):
            info = read_run_info(run)
            parts.append(
                f"<b>{tag}</b> {run.name} — {when_text(info.started)}, "
                f"{info.status}, {info.epochs} epochs"
            )
        label = QLabel("<br>".join(parts))
        label.setTextFormat(Qt.TextFormat.RichText)
        return label

    @staticmethod
    def _section_label(text: str) -> QLabel:
        label = QLabel(text)
        font = QFont(label.font())
        font.setBold(True)
        label.setFont(font)
        return label

    @staticmethod
    def _colour(line: str) -> str:
        c = theme.colors()
        if line.startswith("added"):
            return "#15803d" if not theme.is_dark() else "#4ade80"
        if line.startswith("removed"):
            return c["error"]
        return c["text"]


def _count(what: str, n: int) -> str:
    return f"{what} ({n} difference{'s' if n != 1 else ''})" if n else f"{what} (the same)"
