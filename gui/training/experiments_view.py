"""The Experiments tab: edit, start, stop and follow the project's hyper-parameter search.

- **Search space** (:mod:`gui.training.experiments_space`): the ``search`` section as
  a table plus the study's settings; each change is one undoable edit
  (:class:`engine.tune.space.SetSearch`) and is checked at once
  (:func:`engine.tune.space.search_problems`: problems named under the table).
- **Start** runs ``layerlab tune PROJECT --json --snapshot FILE`` in a child process
  (:mod:`gui.training.experiments_process`; the window imports neither Optuna nor
  TensorFlow) and follows its JSON events: the trials table, the live curves
  (:mod:`gui.training.experiments_curves`) and the parallel coordinates
  (:mod:`gui.training.experiments_parallel`) move with every epoch. **Stop** sends
  SIGTERM: the running trial stops, the finished ones stay in the study and **Start**
  again resumes it. A space with a problem is refused by name before anything runs.
- Reading the study (**Refresh**, after a stopped search, and on showing the tab when
  the study file's mtime/size or the search section changed since the last read) is
  ``layerlab tune PROJECT --summary --json`` in a child process too (~1 s of CPU); it
  brings the parameter importances (:mod:`gui.training.experiments_importance`), which
  a running search also sends after each complete trial (its ``importances`` event).
- **Apply best trial** gives the project the best trial's values as one undoable edit
  (:func:`engine.tune.space.apply_command`); **Find learning rate…** opens the LR
  finder (:mod:`gui.training.lr_finder`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.human import duration
from engine.train.config import monitor_mode
from engine.train.runs import runs_root
from engine.tune.space import SetSearch, apply_command, search_problems
from engine.tune.study import OLD_STORAGE_FILE, STORAGE_FILE
from gui.training.experiments_curves import TrialCurves, trial_color
from gui.training.experiments_importance import ImportanceBars
from gui.training.experiments_parallel import ParallelCoordinates
from gui.training.experiments_process import JsonProcess, remove, write_snapshot
from gui.training.experiments_space import SpaceEditor
from gui.training.lr_finder import LrFinderDialog

FIXED = ("Trial", "State", "Value", "Epochs", "Time")
STOPPED = 130
"""``layerlab tune``'s exit status after a stop (SIGTERM or Ctrl-C)."""
SHUTDOWN_WAIT_MS = 10_000
"""How long quitting waits for a stopped search to end its trial before killing it."""
NO_SEARCH = (
    'This project has no "search" section: press "Add parameter" to start one '
    "(docs/project-format.md)."
)


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


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class ExperimentsView(QWidget):
    """The search of the project ``current()`` returns.

    Args:
        current: Returns ``(project, undo_stack)`` (the dock's), read on each action.
    """

    search_ended = Signal(int)  # the exit status of a search started here

    def __init__(
        self, current: Callable[[], tuple[Any, Any]], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._current = current
        self.summary: dict[str, Any] | None = None
        self.trials: dict[int, dict[str, Any]] = {}
        self.importances: dict[str, float] = {}
        self.search: JsonProcess | None = None
        self.reader: JsonProcess | None = None
        self._snapshots: dict[JsonProcess, str] = {}
        self._stack: Any = None
        self._read_key: tuple[Any, ...] | None = None  # what the shown summary was read from
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Run the search (again: resume it) in a child process")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the running trial; finished trials are kept")
        self.stop_button.setEnabled(False)
        self.refresh_button = QPushButton("Refresh")
        self.apply_button = QPushButton("Apply best trial")
        self.apply_button.setEnabled(False)
        self.apply_button.setToolTip("Give the project the best trial's values (one undo step)")
        self.lr_button = QPushButton("Find learning rate…")
        self.lr_button.setToolTip("Learning-rate range test: loss against rate, a suggestion")
        self.space = SpaceEditor()
        self.problems = QLabel("")
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #dc2626;")
        self.table = QTableWidget(0, len(FIXED))
        self.table.setHorizontalHeaderLabels(FIXED)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.curves = TrialCurves()
        self.parallel = ParallelCoordinates()
        self.importance = ImportanceBars()

        bar = QHBoxLayout()
        bar.addWidget(self.status, 1)
        for b in (self.start_button, self.stop_button, self.refresh_button, self.apply_button,
                  self.lr_button):  # fmt: skip
            bar.addWidget(b)
        box = QGroupBox("Search space")
        inner = QVBoxLayout(box)
        inner.addWidget(self.space, 1)
        inner.addWidget(self.problems)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(box)
        top.addWidget(self.table)
        top.setStretchFactor(0, 1)
        top.setStretchFactor(1, 1)
        top.setSizes([530, 360])  # the space's parameter paths are long
        plots = QSplitter(Qt.Orientation.Horizontal)
        for w in (self.curves, self.parallel, self.importance):
            plots.addWidget(w)
        plots.setStretchFactor(0, 3)
        plots.setStretchFactor(1, 4)
        plots.setStretchFactor(2, 2)
        split = self.split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(plots)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.refresh_button.clicked.connect(lambda: self.refresh())
        self.apply_button.clicked.connect(self.apply_best)
        self.lr_button.clicked.connect(self.open_lr_finder)
        self.space.changed.connect(self._space_changed)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # ------------------------------------------------------------------ the project
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.refresh(force=False)

    def _study_key(self, project: Any) -> tuple[Any, ...]:
        """What a summary depends on: the project's file, its search section and the
        default study files' (mtime, size); a stat, nothing read."""
        root = runs_root(project)
        files = []
        for name in (STORAGE_FILE, OLD_STORAGE_FILE, OLD_STORAGE_FILE + "-wal"):
            try:
                st = (root / name).stat()
                files.append((name, st.st_mtime_ns, st.st_size))
            except OSError:
                files.append((name, None, None))
        section = json.dumps(project.extra.get("search"), sort_keys=True, default=str)
        return (str(project.path), section, tuple(files))

    def _section(self) -> dict[str, Any] | None:
        project, _ = self._current()
        return None if project is None else project.extra.get("search")

    def _metric(self) -> tuple[str, str]:
        s = self._section() or {}
        metric = s.get("metric", "val_loss") if isinstance(s.get("metric"), str) else "val_loss"
        direction = s.get("direction") or ("maximize" if monitor_mode(metric) == "max" else
                                           "minimize")  # fmt: skip
        return metric, direction

    def _watch(self, stack: Any) -> None:
        """Follow the stack's undo/redo: the editor shows the section as it is."""
        if stack is self._stack or stack is None:
            return
        if self._stack is not None:
            self._stack.events.changed.disconnect(self._stack_changed)
        self._stack = stack
        stack.events.changed.connect(self._stack_changed)

    def _stack_changed(self) -> None:
        project, _ = self._current()
        if project is None:
            return
        section = project.extra.get("search")
        if (section or {}) != self.space.section:
            self.space.set_section(section, project.to_dict())
            self._check()

    def _load_editor(self) -> None:
        project, stack = self._current()
        self._watch(stack)
        if project is None:
            return
        self.space.set_section(project.extra.get("search"), project.to_dict())
        self._check()

    def _check(self) -> list[str]:
        """Problems of the section as it is, shown under the table (empty when fine)."""
        project, _ = self._current()
        problems = search_problems(project.to_dict()) if project is not None else []
        self.problems.setText("\n".join(f"• {p}" for p in problems))
        self.problems.setVisible(bool(problems))
        return problems

    def _space_changed(self, section: dict[str, Any]) -> None:
        project, stack = self._current()
        if project is None or stack is None:
            return
        stack.push(SetSearch(section, "Change the search"))
        problems = self._check()
        if self.status.text() == NO_SEARCH and not problems:  # the first parameter added
            self._show(None, "Press Start to run the search: its trials are runs of this project.")

    # ------------------------------------------------------------------ reading
    def refresh(self, force: bool = True) -> JsonProcess | None:
        """Read the study again (``layerlab tune --summary --json``, a child process);
        with ``force`` False (showing the tab), only when the study file or the search
        section changed since the summary shown was read."""
        self._load_editor()
        project, _ = self._current()
        if project is None:
            self._show(None, "No project.")
            return None
        if project.extra.get("search") is None:
            self._show(None, NO_SEARCH)
            return None
        if self.search is not None and self.search.running():
            return None  # the search's own events keep the table current
        if self._check():
            self._show(None, "Fix the search space (below the table) to read or run the study.")
            return None
        if project.path is None:
            self._show(None, "Save the project first: a search's trials are runs beside its file.")
            return None
        if self.reader is not None and self.reader.running():
            return self.reader
        key = self._study_key(project)
        if not force and key == self._read_key and self.summary is not None:
            return None  # unchanged since the last read: what is shown is current
        self._read_key = key
        self.status.setText("Reading the study …")
        reader = self.reader = self._process(["tune", str(project.path), "--summary", "--json"])
        reader.line.connect(lambda e, r=reader: self._summary_line(r, e))
        reader.ended.connect(lambda code, err, r=reader: self._read_ended(r, code, err))
        reader.start()
        return reader

    def _process(self, args: list[str]) -> JsonProcess:
        project, _ = self._current()
        snapshot = write_snapshot(project)
        proc = JsonProcess([*args, "--snapshot", snapshot], self)
        self._snapshots[proc] = snapshot
        return proc

    def _summary_line(self, reader: JsonProcess, event: dict[str, Any]) -> None:
        if reader is self.reader and "trials" in event:
            self._show(event, "" if event["trials"] else "No trials yet: press Start.")

    def _read_ended(self, reader: JsonProcess, code: int, error: str) -> None:
        remove(self._snapshots.pop(reader, None))
        if reader is self.reader and code != 0:
            self._read_key = None
            self._show(None, f"The study cannot be read: {error or f'exit status {code}'}")

    # ------------------------------------------------------------------ running
    def start(self) -> JsonProcess | None:
        """Run (or resume) the search in a child process; refuse a wrong space by name."""
        if self.search is not None and self.search.running():
            return self.search
        project, _ = self._current()
        if project is None:
            return None
        if project.extra.get("search") is None:
            self.status.setText('Add a parameter to search first ("Add parameter").')
            return None
        problems = self._check()
        if problems:
            self.status.setText("The search cannot start: " + "; ".join(problems))
            return None
        if project.path is None:
            self.status.setText(
                "Save the project first: a search's trials are runs beside its file."
            )
            return None
        if self.reader is not None:
            self.reader.kill()
        search = self.search = self._process(["tune", str(project.path), "--json"])
        search.line.connect(lambda e, s=search: self._event(s, e))
        search.ended.connect(lambda code, err, s=search: self._search_ended(s, code, err))
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.space.setEnabled(False)
        self.status.setText("Starting the search (each trial is a training run) …")
        search.start()
        return search

    def stop(self) -> None:
        """Stop the running trial and the search; finished trials stay in the study."""
        if self.search is not None and self.search.running():
            self.status.setText("Stopping …")
            self.stop_button.setEnabled(False)
            self.search.stop()

    def _event(self, search: JsonProcess, e: dict[str, Any]) -> None:
        if search is not self.search:
            return
        kind = e.get("event")
        if kind is None and "trials" in e:  # the last line: the whole study
            self._show(e, "")
            return
        if kind == "importances":  # after each complete trial, from the 3rd one
            self.importances = dict(e.get("importances") or {})
            self.importance.set_importances(self.importances)
            return
        n = e.get("trial")
        if kind == "trial":
            self.trials[n] = {"trial": n, "state": "running", "params": e.get("params") or {},
                              "value": None, "epochs": 0, "curve": []}  # fmt: skip
            self.status.setText(f"Trial {n} is training …")
        elif kind == "trial_epoch" and n in self.trials:
            t = self.trials[n]
            t["epochs"] = e["epoch"]
            value = e.get("value")
            t["curve"].append([e["epoch"], value])
            if value is not None:
                better = max if self._metric()[1] == "maximize" else min
                t["value"] = value if t["value"] is None else better(t["value"], value)
            self.curves.add_point(n, e["epoch"], value)
        elif kind == "trial_pruned" and n in self.trials:
            self.trials[n]["state"] = "pruning"
        elif kind == "trial_end" and n in self.trials:
            if e.get("state") == "lost":  # cut off by a stop: runs again on resume
                self.trials.pop(n)
                self.curves.points.pop(n, None)
            else:
                self.trials[n].update(
                    state=e.get("state"), value=e.get("value"), time_s=e.get("time_s")
                )
        else:
            return
        self._render(self._best())

    def _search_ended(self, search: JsonProcess, code: int, error: str) -> None:
        remove(self._snapshots.pop(search, None))
        if search is not self.search:
            return
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.space.setEnabled(True)
        if code == 0:
            text = self.status.text()
        elif code == STOPPED:
            text = "Stopped: the finished trials are kept; Start resumes the search."
        else:
            text = f"The search stopped: {error or f'exit status {code}'}"
        if code == 0:  # its last line was the whole study (importances too): shown
            project, _ = self._current()
            if project is not None and project.path is not None and self.summary is not None:
                self._read_key = self._study_key(project)  # showing the tab reads nothing
            self.status.setText(text)
            self.search_ended.emit(code)
            return
        reader = self.refresh()  # the study as stored
        if reader is not None:
            reader.ended.connect(lambda *_: self.status.setText(text))
        else:
            self.status.setText(text)
        self.search_ended.emit(code)

    # ------------------------------------------------------------------ showing
    def _best(self) -> dict[str, Any] | None:
        done = [t for t in self.trials.values() if t["state"] == "complete"
                and t.get("value") is not None]  # fmt: skip
        if not done:
            return None
        pick = max if self._metric()[1] == "maximize" else min
        b = pick(done, key=lambda t: t["value"])
        return {"trial": b["trial"], "params": b["params"], "value": b["value"]}

    def _show(self, summary: dict[str, Any] | None, message: str) -> None:
        self.summary = summary
        self.trials = {t["trial"]: dict(t) for t in (summary or {}).get("trials") or []}
        self.importances = dict((summary or {}).get("importances") or {})
        self.curves.clear()
        best = (summary or {}).get("best")
        self._render(best)
        self.importance.set_importances(self.importances)
        if best is not None and not message:
            message = (
                f"{len(self.trials)} trials; best: trial {best['trial']} ({best['value']:.4g})"
            )
        self.status.setText(message)

    def _render(self, best: dict[str, Any] | None) -> None:
        self.best = best
        trials = sorted(self.trials.values(), key=lambda t: t["trial"])
        section = self._section() or {}
        space = section.get("parameters") if isinstance(section.get("parameters"), dict) else {}
        params = list(dict.fromkeys([*(k for t in trials for k in t["params"])]))
        table = self.table
        table.setSortingEnabled(False)
        table.setColumnCount(len(FIXED) + len(params))
        table.setHorizontalHeaderLabels([*FIXED, *params])
        table.setRowCount(len(trials))
        best_n = None if best is None else best["trial"]
        for row, t in enumerate(trials):
            value = t.get("value")
            time_s = t.get("time_s")
            cells = [
                _Item(str(t["trial"]), t["trial"]),
                _Item(t["state"] or ""),
                _Item(_fmt(value), value),
                _Item(str(t.get("epochs") or ""), t.get("epochs")),
                _Item(duration(time_s) if time_s else "", time_s),
            ]
            cells += [_Item(_fmt(t["params"].get(n)), t["params"].get(n)) for n in params]
            cells[0].setForeground(trial_color(t["trial"]))
            for col, item in enumerate(cells):
                if t["trial"] == best_n:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                if t["state"] in ("running", "pruning"):
                    item.setBackground(QColor(37, 99, 235, 28))
                table.setItem(row, col, item)
        table.setSortingEnabled(True)
        table.sortItems(0, Qt.SortOrder.AscendingOrder)
        self.apply_button.setEnabled(best is not None)
        metric, direction = self._metric()
        self.curves.set_metric(metric)
        self.curves.set_trials(trials, best_n)
        self.parallel.set_trials(trials, space, metric, direction)

    # ------------------------------------------------------------------ actions
    def apply_best(self) -> None:
        """Give the project the best trial's values, as one undoable edit."""
        project, undo_stack = self._current()
        best = getattr(self, "best", None) or (self.summary or {}).get("best")
        if project is None or undo_stack is None or best is None:
            return
        undo_stack.push(apply_command(project, best["params"], f"Apply trial {best['trial']}"))
        self.status.setText(f"Applied trial {best['trial']}'s values (Edit > Undo takes them back)")

    def open_lr_finder(self) -> Any:
        """The learning-rate finder for the project (a dialog; its run is a child process)."""
        project, stack = self._current()
        if project is None or stack is None:
            return None
        dialog = LrFinderDialog(project, stack, self)
        dialog.show()
        dialog.run()
        return dialog

    def shutdown(self) -> None:
        """The app quits: stop a running search as Stop does (SIGTERM: its trial's
        process is stopped by it, not orphaned), then end what is left."""
        if self.search is not None and self.search.running():
            self.search.stop()
            self.search.process.waitForFinished(SHUTDOWN_WAIT_MS)
        for proc in (self.search, self.reader):
            if proc is not None:
                proc.kill()
