"""The Experiments tab: the trials of the project's hyper-parameter search.

One row per trial (number, state, value of the search's metric, epochs, time, then
each searched parameter), sortable by any column; "Apply best trial" gives the
project the best trial's values as one undoable edit
(:func:`engine.tune.space.apply_command`). The study is read in a background thread
(:func:`engine.tune.study.read_study`; Optuna and SQLite stay off the UI thread).
Searches are started from the command line for now (``layerlab tune PROJECT``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.human import duration
from engine.tune.space import SearchError, apply_command
from engine.tune.study import read_study

FIXED = ("Trial", "State", "Value", "Epochs", "Time")


class _Item(QTableWidgetItem):
    """A cell that sorts by its number when it has one."""

    def __init__(self, text: str, key: Any = None) -> None:
        super().__init__(text)
        self.key = key
        self.setFlags(self.flags() & ~Qt.ItemFlag.ItemIsEditable)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.key, getattr(other, "key", None)
        if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)):
            return mine < theirs
        if isinstance(mine, (int, float)) != isinstance(theirs, (int, float)):
            return isinstance(mine, (int, float))  # numbers before blanks
        return self.text() < other.text()


class ExperimentsView(QWidget):
    """The trials table of the search of the project ``current()`` returns.

    Args:
        current: Returns ``(project, undo_stack)`` (the dock's), read on each refresh.
    """

    loaded = Signal(object, str)  # summary or None, message (from the loading thread)

    def __init__(
        self, current: Callable[[], tuple[Any, Any]], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._current = current
        self.summary: dict[str, Any] | None = None
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.refresh_button = QPushButton("Refresh")
        self.apply_button = QPushButton("Apply best trial")
        self.apply_button.setEnabled(False)
        self.apply_button.setToolTip("Give the project the best trial's values (one undo step)")
        self.table = QTableWidget(0, len(FIXED))
        self.table.setHorizontalHeaderLabels(FIXED)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        bar = QHBoxLayout()
        bar.addWidget(self.status, 1)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        self.refresh_button.clicked.connect(self.refresh)
        self.apply_button.clicked.connect(self.apply_best)
        self.loaded.connect(self._show)
        self._loading: threading.Thread | None = None

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> threading.Thread | None:
        """Read the study again, in a background thread; the table follows."""
        project, _ = self._current()
        if project is None:
            self._show(None, "No project.")
            return None
        if project.extra.get("search") is None:
            self._show(None, 'This project has no "search" section (see docs/project-format.md).')
            return None
        if self._loading is not None and self._loading.is_alive():
            return self._loading
        self.status.setText("Reading the study ...")
        project = project.copy()  # the thread reads a snapshot; editing goes on

        def load() -> None:
            try:
                found = read_study(project)
            except SearchError as exc:
                self.loaded.emit(None, str(exc))
            except Exception as exc:  # a damaged or locked database: say so, never crash
                self.loaded.emit(None, f"The study cannot be read: {exc}")
            else:
                text = "" if found else "No trials yet: run `layerlab tune PROJECT`."
                self.loaded.emit(found, text)

        self._loading = threading.Thread(target=load, daemon=True, name="layerlab-experiments")
        self._loading.start()
        return self._loading

    def _show(self, summary: dict[str, Any] | None, message: str) -> None:
        self.summary = summary
        trials = (summary or {}).get("trials") or []
        params = list(dict.fromkeys(k for t in trials for k in t["params"]))
        table = self.table
        table.setSortingEnabled(False)
        table.setColumnCount(len(FIXED) + len(params))
        table.setHorizontalHeaderLabels([*FIXED, *params])
        table.setRowCount(len(trials))
        for row, t in enumerate(trials):
            value = t.get("value")
            cells = [
                _Item(str(t["trial"]), t["trial"]),
                _Item(t["state"]),
                _Item("" if value is None else f"{value:.4g}", value),
                _Item(str(t.get("epochs") or ""), t.get("epochs")),
                _Item(duration(t["time_s"]) if t.get("time_s") else "", t.get("time_s")),
            ]
            for name in params:
                v = t["params"].get(name)
                cells.append(
                    _Item("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v), v)
                )
            for col, item in enumerate(cells):
                table.setItem(row, col, item)
        best = (summary or {}).get("best")
        for row, t in enumerate(trials):  # the best trial in bold
            if best is not None and t["trial"] == best["trial"]:
                for col in range(table.columnCount()):
                    font = table.item(row, col).font()
                    font.setBold(True)
                    table.item(row, col).setFont(font)
        table.setSortingEnabled(True)
        table.sortItems(0, Qt.SortOrder.AscendingOrder)
        self.apply_button.setEnabled(best is not None)
        if best is not None and not message:
            message = f"{len(trials)} trials; best: trial {best['trial']} ({best['value']:.4g})"
        self.status.setText(message)

    def apply_best(self) -> None:
        """Give the project the best trial's values, as one undoable edit."""
        project, undo_stack = self._current()
        best = (self.summary or {}).get("best")
        if project is None or undo_stack is None or best is None:
            return
        undo_stack.push(apply_command(project, best["params"], f"Apply trial {best['trial']}"))
        self.status.setText(f"Applied trial {best['trial']}'s values (Edit > Undo takes them back)")
