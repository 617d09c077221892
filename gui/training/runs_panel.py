"""The run history of a project: one row per run, with what to do next with it.

Each row says when the run started, how long it took, how it ended, the settings that
differed from the run before it ("lr 0.001→0.01, epochs 10→20, +1 layer") and its
best validation metrics. Several rows can be selected: their curves can be overlaid,
two can be compared (:class:`gui.training.diff_view.DiffView`), one can be evaluated,
exported (:class:`gui.training.export_dialog.ExportDialog`), resumed when it was
stopped with a checkpoint, or deleted after a confirmation.

The panel only reads run directories (see :mod:`engine.train.history`); training,
overlaying and evaluating are done by whoever listens to its signals.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    SIGNAL,
    QFileSystemWatcher,
    QItemSelection,
    QItemSelectionModel,
    QPoint,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QFont, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.human import duration
from engine.train.config import monitor_mode
from engine.train.history import (
    RunInfo,
    change_summary,
    layer_diff,
    list_runs,
    metric_label,
    settings_diff,
    value_text,
    when_text,
)
from engine.train.runs import ORIGIN
from gui import theme
from gui.paths import project_runs_root
from gui.training.diff_view import DiffView
from gui.training.export_dialog import ExportDialog

FIXED_COLUMNS = ("Run", "When", "Duration", "Status", "Epochs", "Changes from the previous run")
CHANGES_COLUMN = FIXED_COLUMNS.index("Changes from the previous run")
HEADER_TIPS = {
    "Run": "The run's number: #1 is the project's first run",
    "Changes from the previous run": "What changed from the previous run (hover a cell for every change)",
    "Epochs": 'Epochs trained ("ft from N": fine-tuning, phase 2, began at epoch N)',
}
MAX_METRIC_COLUMNS = 4
RUNNING_REFRESH_MS = 2000
"""How often the list is read again while one of its runs is still training."""
STARTING_GRACE_S = 120
"""How long a new run folder without a snapshot counts as a run about to start."""
STATUS_COLOURS = {
    "finished": "#16a34a",
    "stopped": "#d97706",
    "failed": "#dc2626",
    "running": "#2563eb",
}


def epochs_text(run: RunInfo) -> str:
    """The Epochs cell: ``"5"``, or ``"5 (fine-tune from 4)"`` for a run that fine-tuned from
    epoch 4 on (the training section's ``fine_tune``)."""
    if run.fine_tune_from:
        return f"{run.epochs} (fine-tune from {run.fine_tune_from})"
    return str(run.epochs)


def _metric_order(key: str) -> tuple[int, str]:
    return ({"val_loss": 0, "val_accuracy": 1}.get(key, 2), key)


class RunsPanel(QWidget):
    """A project's runs, newest first, with overlay/evaluate/compare/export/resume/delete.

    Attributes:
        open_dialogs: Compare and Export… open their dialogs themselves (on by
            default); the signals are emitted either way. Export… opens its dialog
            only when nothing is connected to ``export_requested`` (a listener that
            wants the signal shows its own dialog).
        confirm: ``confirm(title, text) -> bool`` asks before deleting; replace it in
            tests.

    Signals:
        overlay_requested(list): Run directories whose curves to overlay.
        evaluate_requested(str): A run directory to evaluate.
        export_requested(str): A run directory to export.
        resume_requested(str): A stopped run directory to resume.
        compare_requested(str, str): The earlier and the later of two runs.
        run_deleted(str): A run directory that was deleted.
        selection_changed(list): The selected run directories.
    """

    overlay_requested = Signal(list)
    evaluate_requested = Signal(str)
    export_requested = Signal(str)
    resume_requested = Signal(str)
    compare_requested = Signal(str, str)
    run_deleted = Signal(str)
    selection_changed = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.open_dialogs = True
        self.confirm: Callable[[str, str], bool] = self._ask
        self.project: Any = None
        self.root: Path | None = None
        self.runs: list[RunInfo] = []
        self.dialogs: list[QWidget] = []
        self._metric_keys: list[str] = []

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.where_label = QLabel("")
        self.where_label.setStyleSheet(f"color: {theme.colors()['muted']};")
        self.where_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.where_label)

        self._tips: dict[QAction, str] = {}
        self._make_actions()
        bar = QHBoxLayout()
        bar.setSpacing(4)
        for action in (
            self.overlay_action,
            self.evaluate_action,
            self.compare_action,
            self.export_action,
            self.resume_action,
            self.delete_action,
        ):
            bar.addWidget(self._button(action))
        bar.addStretch(1)
        bar.addWidget(self._button(self.refresh_action))
        layout.addLayout(bar)

        self.table = QTableWidget(0, len(FIXED_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(FIXED_COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)
        self.table.itemDoubleClicked.connect(lambda _item: self._evaluate())
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 10)
        layout.addWidget(self.table, 1)

        self.empty_label = QLabel(
            "No runs yet. Press Train to start the first one; every "
            "run of this project will be listed here."
        )
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet(f"color: {theme.colors()['muted']}; padding: 24px;")
        layout.addWidget(self.empty_label, 1)

        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(lambda _p: self._refresh_timer.start())
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(400)
        self._refresh_timer.timeout.connect(self.refresh)
        self._running_timer = QTimer(self)  # a running run's duration and end show up
        self._running_timer.setInterval(RUNNING_REFRESH_MS)
        self._running_timer.timeout.connect(self.refresh)
        self.refresh()

    # ------------------------------------------------------------------ actions
    def _make_actions(self) -> None:
        def action(text: str, tip: str, slot: Callable[[], None]) -> QAction:
            a = QAction(text, self)
            a.setToolTip(tip)
            a.setStatusTip(tip)
            a.triggered.connect(slot)
            return a

        self.overlay_action = action(
            "Overlay curves", "Plot the selected runs' curves together", self._overlay
        )
        self.evaluate_action = action(
            "Evaluate",
            "Show the confusion matrix, per-class metrics and mistakes of the selected run",
            self._evaluate,
        )
        self.compare_action = action(
            "Compare",
            "Show which layers and settings differ between the two selected runs",
            self._compare,
        )
        self.export_action = action(
            "Export…", "Export the selected run's trained model", self._export
        )
        self.resume_action = action(
            "Resume", "Continue the selected stopped run from its last checkpoint", self._resume
        )
        self.delete_action = action("Delete", "Delete the selected runs' folders", self._delete)
        self.refresh_action = action("Refresh", "Read the runs folder again", self.refresh)
        self.delete_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.delete_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.addAction(self.delete_action)

    @staticmethod
    def _button(action: QAction) -> QToolButton:
        button = QToolButton()
        button.setObjectName("PanelButton")
        button.setDefaultAction(action)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        button.setAutoRaise(False)
        return button

    # ------------------------------------------------------------------ contents
    def set_project(self, project: Any) -> None:
        """Show the runs of ``project`` (under :func:`gui.paths.project_runs_root`)."""
        self.project = project
        self.set_root(project_runs_root(project))

    def set_root(self, root: str | os.PathLike | None) -> None:
        """Show the runs directly under ``root``."""
        if self._watcher.directories():
            self._watcher.removePaths(self._watcher.directories())
        self.root = Path(root) if root is not None else None
        self.refresh()

    def add_run(self, run_dir: str | os.PathLike) -> None:
        """A run was started or has ended: list it (again) and select it."""
        run_dir = Path(run_dir)
        if self.root is None or run_dir.parent != self.root:
            self.root = run_dir.parent
        self.refresh()
        self.select_runs([run_dir])

    def refresh(self) -> None:
        """Read the runs folder again (the selection is kept)."""
        selected = self.selected_runs()
        self.runs = list_runs(self.root) if self.root is not None else []
        if self.root is not None:
            self.where_label.setText(
                f"{len(self.runs)} run{'s' if len(self.runs) != 1 else ''} in {self.root}"
            )
            self._watch(self.root)
        else:
            self.where_label.setText("")
        self._fill()
        self.table.setVisible(bool(self.runs))
        self.empty_label.setVisible(not self.runs)
        self.select_runs([Path(p) for p in selected], emit=False)
        self._update_actions()
        running = any(r.status == "running" for r in self.runs) or self._starting()
        if running and not self._running_timer.isActive():
            self._running_timer.start()
        elif not running:
            self._running_timer.stop()

    def _watch(self, root: Path) -> None:
        """Watch ``root`` for runs coming and going (its parent until it exists)."""
        target = root if root.is_dir() else root.parent
        watched = self._watcher.directories()
        if str(target) in watched or not target.is_dir():
            return
        if watched:
            self._watcher.removePaths(watched)
        self._watcher.addPath(str(target))

    def _starting(self) -> bool:
        """A run folder was made moments ago and its snapshot is not written yet."""
        if self.root is None or not self.root.is_dir():
            return False
        now = time.time()
        for d in self.root.iterdir():
            origin = d / ORIGIN
            if origin.is_file() and not (d / "project.json").is_file():
                with contextlib.suppress(OSError):
                    if now - origin.stat().st_mtime < STARTING_GRACE_S:
                        return True
        return False

    def _fill(self) -> None:
        keys = sorted({k for r in self.runs for k in r.best}, key=_metric_order)
        self._metric_keys = keys[:MAX_METRIC_COLUMNS]
        headers = list(FIXED_COLUMNS) + [f"best {metric_label(k)}" for k in self._metric_keys]
        table = self.table
        table.blockSignals(True)
        table.clearContents()
        table.setColumnCount(len(headers))
        table.setHorizontalHeaderLabels(headers)
        table.setRowCount(len(self.runs))
        best_of = self._best_per_metric()
        bold = QFont(table.font())
        bold.setBold(True)
        for row, run in enumerate(self.runs):
            previous = self.runs[row + 1] if row + 1 < len(self.runs) else None
            cells = [
                f"#{len(self.runs) - row}",
                when_text(run.started),
                duration(run.duration_s),
                run.status,
                epochs_text(run),
                self._changes_text(run, previous),
            ]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 0:
                    item.setData(Qt.ItemDataRole.UserRole, str(run.run_dir))
                if col in (0, 1):
                    item.setToolTip(
                        f"run {text if col == 0 else cells[0]}: {run.name}\n{run.run_dir}"
                    )
                if col == 3:
                    item.setForeground(QColor(STATUS_COLOURS.get(run.status, "#6b7280")))
                    item.setFont(bold)
                    if run.message:
                        item.setToolTip(run.message)
                    elif run.can_resume:
                        item.setToolTip("stopped early; Resume continues from the last checkpoint")
                if col in (0, 2, 4):
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if col == 4 and run.fine_tune_from:
                    item.setToolTip(
                        f"Phase 1: epochs 1-{run.fine_tune_from - 1} with the frozen layers "
                        f"frozen; phase 2 (fine-tuning): epochs {run.fine_tune_from}-"
                        f"{run.epochs}, the top layers unfrozen at a lower learning rate"
                    )
                if col == CHANGES_COLUMN:
                    item.setToolTip(self._changes_tooltip(run, previous))
                table.setItem(row, col, item)
            for i, key in enumerate(self._metric_keys):
                value = run.best.get(key)
                item = QTableWidgetItem("—" if value is None else f"{value:.4g}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if value is not None and len(self.runs) > 1 and best_of.get(key) == value:
                    item.setFont(bold)
                    item.setToolTip(f"the best {metric_label(key)} of all runs")
                table.setItem(row, len(FIXED_COLUMNS) + i, item)
        for col, name in enumerate(headers):
            tip = HEADER_TIPS.get(
                name, f"The best {name[5:]} of each run" if col >= len(FIXED_COLUMNS) else ""
            )
            table.horizontalHeaderItem(col).setToolTip(tip)
        table.blockSignals(False)
        # every column as wide as its longest text (a narrow panel scrolls sideways
        # rather than cutting "Adam→SGD"); the last one takes what is left
        header = table.horizontalHeader()
        header.setStretchLastSection(True)
        for col in range(table.columnCount()):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)

    def _best_per_metric(self) -> dict[str, float]:
        out = {}
        for key in self._metric_keys:
            values = [r.best[key] for r in self.runs if key in r.best]
            if values:
                out[key] = max(values) if monitor_mode(key) == "max" else min(values)
        return out

    @staticmethod
    def _changes_text(run: RunInfo, previous: RunInfo | None) -> str:
        if previous is None:
            return "first run"
        return change_summary(previous.run_dir, run.run_dir) or "same settings"

    @staticmethod
    def _changes_tooltip(run: RunInfo, previous: RunInfo | None) -> str:
        if previous is None:
            return "The oldest run of this project."
        lines = [f"From run {previous.run_dir.name} to {run.run_dir.name}:"]
        lines += [
            f"  {k}: {value_text(a)} → {value_text(b)}"
            for k, a, b in settings_diff(previous.run_dir, run.run_dir)
        ]
        lines += [f"  {line}" for line in layer_diff(previous.run_dir, run.run_dir)]
        if len(lines) == 1:
            lines.append("  nothing changed")
        return "\n".join(lines)

    def run_label(self, run_dir: str | os.PathLike) -> str:
        """A run's name for legends: its number and what changed ("#3 lr 0.01→0.001")."""
        path = Path(run_dir)
        for row, run in enumerate(self.runs):
            if run.run_dir == path:
                previous = self.runs[row + 1] if row + 1 < len(self.runs) else None
                return f"#{len(self.runs) - row} {self._changes_text(run, previous)}"
        return path.name

    def row_texts(self) -> list[dict[str, str]]:
        """Each row as header -> text (what a user reads in the table)."""
        headers = [
            self.table.horizontalHeaderItem(c).text() for c in range(self.table.columnCount())
        ]
        return [
            {h: self.table.item(r, c).text() for c, h in enumerate(headers)}
            for r in range(self.table.rowCount())
        ]

    # ------------------------------------------------------------------ selection
    def selected_runs(self) -> list[str]:
        """The selected run directories, newest first."""
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        out = []
        for r in rows:
            item = self.table.item(r, 0)
            if item is not None:
                out.append(str(item.data(Qt.ItemDataRole.UserRole)))
        return out

    def select_runs(self, run_dirs: list[Any], emit: bool = True) -> None:
        """Select the rows of ``run_dirs`` (others are deselected)."""
        wanted = {str(Path(p)) for p in run_dirs}
        table = self.table
        table.blockSignals(True)
        table.clearSelection()
        model, sel = table.model(), table.selectionModel()
        selection = QItemSelection()
        for r in range(table.rowCount()):
            if table.item(r, 0).data(Qt.ItemDataRole.UserRole) in wanted:
                selection.select(model.index(r, 0), model.index(r, table.columnCount() - 1))
        sel.select(selection, QItemSelectionModel.SelectionFlag.Select)
        table.blockSignals(False)
        self._update_actions()
        if emit:
            self.selection_changed.emit(self.selected_runs())

    def _selected_infos(self) -> list[RunInfo]:
        chosen = set(self.selected_runs())
        return [r for r in self.runs if str(r.run_dir) in chosen]

    def _on_selection_changed(self) -> None:
        self._update_actions()
        self.selection_changed.emit(self.selected_runs())

    def _update_actions(self) -> None:
        """Enable each action only when it can act on the selection; a disabled one
        says in its tooltip what it needs."""
        infos = self._selected_infos()
        one = infos[0] if len(infos) == 1 else None
        states = {
            self.overlay_action: (bool(infos), "Select one or more runs to overlay their curves"),
            self.evaluate_action: (
                one is not None and one.has_evaluation,
                "Select one finished run to evaluate"
                if one is None
                else "This run has no evaluation (it did not finish)",
            ),
            self.compare_action: (len(infos) == 2, "Select exactly two runs to compare"),
            self.export_action: (
                one is not None and one.has_model,
                "Select one run to export"
                if one is None
                else "This run has no trained model to export",
            ),
            self.resume_action: (
                one is not None and one.can_resume,
                "Select one stopped run to resume"
                if one is None
                else "Only a stopped run with a checkpoint can be resumed",
            ),
            self.delete_action: (
                bool(infos) and all(r.status != "running" for r in infos),
                "Select runs to delete (a running run cannot be deleted)",
            ),
        }
        for action, (enabled, why) in states.items():
            action.setEnabled(enabled)
            tip = self._tips.setdefault(action, action.toolTip())
            action.setToolTip(tip if enabled else f"{why}.")

    def _context_menu(self, pos: QPoint) -> None:
        if not self.selected_runs():
            return
        menu = QMenu(self)
        for action in (
            self.overlay_action,
            self.evaluate_action,
            self.compare_action,
            self.export_action,
            self.resume_action,
        ):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.delete_action)
        menu.exec(self.table.viewport().mapToGlobal(pos))

    # ------------------------------------------------------------------ the actions
    def _overlay(self) -> None:
        runs = self.selected_runs()
        if runs:
            self.overlay_requested.emit(runs)

    def _evaluate(self) -> None:
        if self.evaluate_action.isEnabled():
            self.evaluate_requested.emit(self.selected_runs()[0])

    def _compare(self) -> None:
        infos = self._selected_infos()
        if len(infos) != 2:
            return
        older, newer = sorted(infos, key=lambda r: (r.started, r.run_dir.name))
        self.compare_requested.emit(str(older.run_dir), str(newer.run_dir))
        if self.open_dialogs:
            self._show_dialog(DiffView(older.run_dir, newer.run_dir, self))

    def _export(self) -> None:
        if not self.export_action.isEnabled():
            return
        run = self.selected_runs()[0]
        handled = self.receivers(SIGNAL("export_requested(QString)")) > 0
        self.export_requested.emit(run)
        if self.open_dialogs and not handled:
            self._show_dialog(ExportDialog(run, self))

    def _show_dialog(self, dialog: QWidget) -> None:
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialogs.append(dialog)
        dialog.destroyed.connect(
            lambda *_: self.dialogs.remove(dialog) if dialog in self.dialogs else None
        )
        dialog.show()

    def _resume(self) -> None:
        if self.resume_action.isEnabled():
            self.resume_requested.emit(self.selected_runs()[0])

    def _delete(self) -> None:
        infos = [r for r in self._selected_infos() if r.status != "running"]
        if not infos:
            return
        names = ", ".join(r.run_dir.name for r in infos)
        text = (
            f"Delete {len(infos)} run{'s' if len(infos) > 1 else ''} ({names})? "
            "Their models, checkpoints and curves are removed from disk."
        )
        if not self.confirm("Delete runs", text):
            return
        failed = []
        for run in infos:
            if not (run.run_dir / "project.json").is_file():
                continue  # not a run directory: never remove it
            try:
                shutil.rmtree(run.run_dir)
            except OSError as exc:
                failed.append(f"{run.run_dir}: {exc.strerror or exc}")
                continue
            self.run_deleted.emit(str(run.run_dir))
        self.refresh()
        if failed:
            QMessageBox.warning(self, "Delete runs", "Could not delete:\n" + "\n".join(failed))

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes
