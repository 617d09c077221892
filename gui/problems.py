"""The Problems panel and the Model summary table (bottom tabs of the main window)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.theme import severity_icon

NODE_ROLE = Qt.ItemDataRole.UserRole + 1


class ProblemsPanel(QTreeWidget):
    """Every problem: severity icon, node, message. Clicking one asks to show its node.
    A problem with a certain fix (``fix_text`` and ``fix``, as the data problems of
    :class:`gui.training.dock.DataProblem`) has a button that applies it; so has one
    with shape fix-its (:mod:`engine.model.fixits`): one fix is a button saying what it
    does, several a "Fix" button whose menu says what each does.

    Signals:
        node_clicked(str): the id of the problem's node.
        fix_requested(object): the problem (or :class:`~engine.model.fixits.FixIt`)
            whose fix was chosen: it has ``fix_text`` and ``fix()`` -> a command.
    """

    node_clicked = Signal(str)
    fix_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(4)
        self.setHeaderLabels(["", "Layer", "Problem", ""])
        self.setRootIsDecorated(False)
        self.setAlternatingRowColors(True)
        self.setUniformRowHeights(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.fix_buttons: list[QPushButton] = []
        self.setColumnWidth(0, 30)
        self.setColumnWidth(1, 140)
        self._icons = {"error": severity_icon("error"), "warning": severity_icon("warning")}
        self._ok_icon = severity_icon("ok")
        self.itemClicked.connect(self._on_clicked)
        self.itemActivated.connect(self._on_clicked)

    def set_problems(
        self, problems: Iterable[Any], fixits: Mapping[str, list[Any]] | None = None
    ) -> None:
        """Show ``Problem``-like objects (``node``, ``severity``, ``message``); errors first.

        Args:
            problems: The problems.
            fixits: Node id -> its fix-its (objects with ``fix_text`` and ``fix``), shown
                on the first problem of that node.
        """
        fixits = dict(fixits or {})
        self.clear()
        self.fix_buttons = []
        ordered = sorted(problems, key=lambda p: (p.severity != "error",))
        if not ordered:
            item = QTreeWidgetItem(["", "", "No problems found: the model can be built."])
            item.setIcon(0, self._ok_icon)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.addTopLevelItem(item)
            return
        for problem in ordered:
            item = QTreeWidgetItem(["", problem.node or "(model)", problem.message])
            item.setIcon(0, self._icons.get(problem.severity, self._icons["warning"]))
            item.setToolTip(0, problem.severity)
            item.setToolTip(2, problem.message)
            item.setData(0, NODE_ROLE, problem.node)
            self.addTopLevelItem(item)
            fix_text = getattr(problem, "fix_text", "")
            if fix_text and getattr(problem, "fix", None) is not None:
                button = QPushButton(fix_text)
                button.setToolTip(f"{fix_text} (one undoable edit)")
                button.clicked.connect(lambda _c=False, p=problem: self.fix_requested.emit(p))
                self.setItemWidget(item, 3, button)
                self.fix_buttons.append(button)
            elif fixits.get(problem.node):
                self._add_fixits(item, fixits.pop(problem.node))

    def _add_fixits(self, item: QTreeWidgetItem, fixes: list[Any]) -> None:
        if len(fixes) == 1:
            button = QPushButton(fixes[0].fix_text)
            button.setToolTip(f"{fixes[0].fix_text} (one undoable edit)")
            button.clicked.connect(lambda _c=False, f=fixes[0]: self.fix_requested.emit(f))
        else:
            button = QPushButton("Fix")  # Qt adds the menu arrow
            menu = QMenu(button)
            for fix in fixes:
                menu.addAction(fix.fix_text, lambda f=fix: self.fix_requested.emit(f))
            button.setMenu(menu)
            button.setToolTip(
                "Ways to fix it (each one undoable edit):\n" + "\n".join(f.fix_text for f in fixes)
            )
        self.setItemWidget(item, 3, button)
        self.fix_buttons.append(button)

    def counts(self) -> tuple[int, int]:
        """(errors, warnings) currently shown."""
        kinds = [self.topLevelItem(i).toolTip(0) for i in range(self.topLevelItemCount())]
        return kinds.count("error"), kinds.count("warning")

    def _on_clicked(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        node = item.data(0, NODE_ROLE)
        if node:
            self.node_clicked.emit(node)


def format_shape(shape: Any) -> str:
    """``(None, 8, 8, 6)`` -> ``(None, 8, 8, 6)``; lists of shapes joined; None -> ``?``."""
    if shape is None:
        return "?"
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return ", ".join(format_shape(s) for s in shape)
    if isinstance(shape, (list, tuple)):
        inner = ", ".join("None" if d is None else str(d) for d in shape)
        return f"({inner},)" if len(shape) == 1 else f"({inner})"
    return str(shape)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


class SummaryTable(QWidget):
    """A Keras-summary-like table: layer, type, output shape, params and the non-trainable
    part of them (frozen layers: all of it, their rows muted); totals below. Clicking a
    row (or Enter on it) asks to show its layer.

    Signals:
        node_clicked(str): the id of the clicked row's layer.
    """

    node_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(
            ["Layer", "Type", "Output shape", "Params", "Non-trainable"]
        )
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.cellClicked.connect(self._on_row)
        self.table.cellActivated.connect(self._on_row)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        params_header = QTableWidgetItem("Params")
        params_header.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.table.setHorizontalHeaderItem(3, params_header)
        frozen_header = QTableWidgetItem("Non-trainable")
        frozen_header.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        frozen_header.setToolTip(
            "Weights training leaves as they are: those of frozen layers, and statistics "
            "such as BatchNormalization's moving mean and variance"
        )
        self.table.setHorizontalHeaderItem(4, frozen_header)
        self.totals = QLabel()
        self.totals.setObjectName("Muted")
        self.totals.setContentsMargins(8, 4, 8, 4)
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.totals)

    def set_rows(self, rows: list[tuple[Any, ...]], note: str = "") -> None:
        """Show ``(id, type, output_shape, params[, non_trainable[, frozen]])`` rows.

        Args:
            rows: One per layer in model order; ``params`` and ``non_trainable`` None
                when unknown; ``frozen`` True for a frozen layer (its row is muted and
                its type says "frozen").
            note: Shown instead of totals when shapes are not available yet.
        """
        self.table.setRowCount(len(rows))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText)
        for r, row in enumerate(rows):
            node_id, node_type, shape, params = row[:4]
            non_trainable = row[4] if len(row) > 4 else None
            frozen = bool(row[5]) if len(row) > 5 else False
            values = [
                node_id,
                f"{node_type} · frozen" if frozen else node_type,
                format_shape(shape) if shape is not None else "—",
                f"{params:,}" if params is not None else "—",
                f"{non_trainable:,}" if non_trainable is not None else "—",
            ]
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setData(NODE_ROLE, node_id)
                if c >= 3:
                    item.setTextAlignment(right)
                if frozen:
                    item.setForeground(muted)
                    item.setToolTip(
                        f"'{node_id}' is frozen: training leaves its weights as they are"
                    )
                self.table.setItem(r, c, item)
        self.totals.setText(note)

    def _on_row(self, row: int, _column: int = 0) -> None:
        item = self.table.item(row, 0)
        node = item.data(NODE_ROLE) if item is not None else None
        if node:
            self.node_clicked.emit(node)

    def set_totals(self, total: int, trainable: int, non_trainable: int) -> None:
        """The totals line, with weight memory in MB at float32 (4 bytes a weight)."""
        mb = total * 4 / (1024 * 1024)
        self.totals.setText(
            f"Total params: {total:,}  ({mb:.2f} MB at float32)   ·   "
            f"Trainable: {trainable:,}   ·   Non-trainable: {non_trainable:,}"
        )

    def rows(self) -> list[list[str]]:
        """The table's text, row by row (for tests and copying)."""
        return [
            [self.table.item(r, c).text() for c in range(self.table.columnCount())]
            for r in range(self.table.rowCount())
        ]
