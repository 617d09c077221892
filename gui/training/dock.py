"""The Training dock: data and training settings, the live view, runs and evaluation.

Left: the Data and Training panels (settings, saved in the project, undoable).
Right: the live view of the current run, the run history and the evaluation of a
finished run. The dock owns the :class:`TrainingSession` and turns its signals into
what the user sees: curves, progress, log lines, a status text for the window's
status bar and, when a run fails, a dialog saying what happened and what to try.

The run history, evaluation view and export dialog are separate modules
(``runs_panel``, ``evaluation_view``, ``export_dialog``). The views that plot
(data, training, live, evaluation) import pyqtgraph, which takes about 0.6 s: they
are imported when the dock is first built, not when the window starts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QWidget,
)

from engine.train.cluster import ClusterError, worker_commands
from engine.train.history import base_dir_of, list_runs
from engine.train.runs import read_history, read_json
from gui.paths import new_project_run_dir, project_runs_root
from gui.training.data_problems import DataProblem, data_problems
from gui.training.errors import error_text, status_text
from gui.training.export_dialog import ExportDialog
from gui.training.runs_panel import RunsPanel
from gui.training.session import TrainingSession

PAUSE_CLUSTER_TIP = (
    "Pause is not available for a run across several machines: every "
    "worker would have to hold at the same step. Stop keeps the model "
    "trained so far."
)


def model_shapes(project: Any, info: dict[str, Any]) -> tuple[tuple | None, tuple | None]:
    """The model's (input, output) shapes without the batch axis; None where unknown.

    Args:
        project: The project (its graph's Input nodes and outputs).
        info: Shape inference's ``{node id: LayerInfo}`` (may be empty).
    """
    graph = project.graph
    inputs = [n for n in graph.nodes.values() if n.type == "Input"]
    in_shape = out_shape = None
    if len(inputs) == 1:
        layer = info.get(inputs[0].id)
        shape = getattr(layer, "output_shape", None)
        if isinstance(shape, tuple):
            in_shape = tuple(shape[1:])
        elif inputs[0].params.get("shape") is not None:
            in_shape = tuple(inputs[0].params["shape"])
    outputs = [n for n in graph.output_nodes() if graph.inputs_of(n)]
    if len(outputs) == 1:
        shape = getattr(info.get(outputs[0]), "output_shape", None)
        if isinstance(shape, tuple):
            out_shape = tuple(shape[1:])
    return in_shape, out_shape


NO_RUN_YET = (
    "No finished run yet: train the model (Model \u25b8 Train, F5). When a run ends, "
    "its evaluation appears here on its own."
)


def latest_finished_run(project: Any) -> Path | None:
    """The newest run of ``project`` that ended normally with a model, or None."""
    if project is None:
        return None
    for run in list_runs(project_runs_root(project)):
        if run.status == "finished" and run.has_model:
            return run.run_dir
    return None


def _scroll(widget: QWidget, sideways: bool = False) -> QScrollArea:
    """``widget`` in a scroll area: vertical only (a settings panel, never clipped on
    the right: it is given its width), or also ``sideways`` when narrower than needed."""
    area = QScrollArea()
    if not sideways:
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


class TrainingDock(QDockWidget):
    """Training from the window: settings, live view, history, evaluation.

    Args:
        parent: The main window.
        model_errors: Returns the model's current error messages (the window's
            validation); a run does not start while there are any.

    Signals:
        run_finished(str): a run ended (done, stopped or failed): its folder.
        state_changed(str): the session's state (``idle``, ``running``, ...).
        status_text(str): a short text for the status bar ("" when idle).
        data_problems_changed(list): the data and the model do not fit, or the data
            cannot be loaded: :class:`DataProblem` objects (empty when all is well).
    """

    run_finished = Signal(str)
    data_problems_changed = Signal(list)
    state_changed = Signal(str)
    status_text = Signal(str)

    def __init__(
        self, parent: QWidget | None = None, model_errors: Callable[[], list[str]] | None = None
    ) -> None:
        super().__init__("Training", parent)
        self.setObjectName("training_dock")
        self.model_errors = model_errors or (lambda: [])
        self.project: Any = None
        self.undo_stack: Any = None
        self.session = TrainingSession(self)
        self.runs_panel: Any = None
        self.evaluation_view: Any = None
        self.export_dialog: Any = None
        self._epochs_total: Any = "?"
        self._built = False
        self._data_panel: Any = None
        self._model_info: dict[str, Any] | None = None
        self._tensorflow_ready = False
        self.data_problems: list[DataProblem] = []
        self._eval_pinned = False  # the user chose a run to evaluate (Runs > Evaluate)
        self.setWidget(self._placeholder("Loading the training views…"))
        self.visibilityChanged.connect(lambda visible: visible and self.build())
        self.session.state_changed.connect(self._on_state_changed)
        self.session.started.connect(self._on_started)
        self.session.epoch.connect(self._on_epoch)
        self.session.finished.connect(self._on_finished)
        self.session.failed.connect(self._on_failed)

    # The views are built the first time they are needed (shown, or a run starts),
    # so the window opens without paying for plots nobody looks at yet.
    @property
    def data_panel(self) -> Any:
        self.build()
        return self._data_panel

    @property
    def training_panel(self) -> Any:
        self.build()
        return self._training_panel

    @property
    def live(self) -> Any:
        self.build()
        return self._live

    def build(self) -> None:
        """Create the panels and views (once)."""
        if self._built:
            return
        self._built = True
        # Lazy: these import pyqtgraph (~0.6 s), which the window does not need to open.
        from gui.training.evaluation_view import EvaluationView
        from gui.training.experiments_view import ExperimentsView
        from gui.training.live_view import LiveView
        from gui.training.training_panel import TrainingPanel

        self.prepare_data_check()
        self._training_panel = TrainingPanel()
        self._live = LiveView()
        self.settings_tabs = QTabWidget()
        self.settings_tabs.setDocumentMode(True)
        self.settings_tabs.addTab(_scroll(self.data_panel), "Data")
        self.settings_tabs.addTab(_scroll(self.training_panel), "Training")
        self.view_tabs = QTabWidget()
        self.view_tabs.setDocumentMode(True)
        self.view_tabs.addTab(self.live, "Live")
        self.runs_panel = RunsPanel()
        self.evaluation_view = EvaluationView()
        self.view_tabs.addTab(self.runs_panel, "Runs")
        self.view_tabs.addTab(self.evaluation_view, "Evaluation")
        self.experiments_view = ExperimentsView(lambda: (self.project, self.undo_stack))
        self.view_tabs.addTab(self.experiments_view, "Experiments")
        from gui.training.inside_view import InsideView  # pyqtgraph: lazy, like the others

        self.inside_view = InsideView(lambda: latest_finished_run(self.project))
        self.view_tabs.addTab(self.inside_view, "Inside")
        # The settings column is as wide as its widest panel needs (never clipped on
        # the right: the panels scroll only vertically); the splitter moves either way.
        bar = self.settings_tabs.style().pixelMetric(
            self.settings_tabs.style().PixelMetric.PM_ScrollBarExtent
        )
        need = max(
            self._data_panel.minimumSizeHint().width(),
            self._training_panel.minimumSizeHint().width(),
        )
        self.settings_tabs.setMinimumWidth(max(300, need + bar + 8))
        split = self.split = QSplitter(Qt.Orientation.Horizontal)
        split.setObjectName("training_split")
        split.addWidget(self.settings_tabs)
        split.addWidget(self.view_tabs)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 5)
        split.setSizes([self.settings_tabs.minimumWidth() + 40, 900])
        # In the Design view the dock scrolls its views (both ways: a narrow dock would
        # cut the Live view's right side off) instead of imposing their minimum size on
        # the panels it is docked with (the Training view shows them unwrapped).
        self.scroll = _scroll(split, sideways=True)
        self.setWidget(self.scroll)

        self._connect()
        if self.project is not None:
            self._show_project()
        if self._data_panel.dataset is not None:  # loaded before the views were made
            self.training_panel.set_train_samples(self._data_panel.dataset.count("train"))
        if self._tensorflow_ready:
            self.tensorflow_ready()

    @staticmethod
    def _placeholder(text: str) -> QLabel:
        label = QLabel(text)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setStyleSheet("color: gray;")
        return label

    def _connect(self) -> None:
        s, live = self.session, self._live
        s.batch.connect(live.on_batch)
        s.warning.connect(live.on_warning)
        s.boundary.connect(live.on_boundary)
        s.boundary.connect(self.inside_view.on_boundary)
        s.waiting.connect(self._on_waiting)
        live.train_requested.connect(self.train)
        live.pause_requested.connect(self.session.pause)
        live.resume_requested.connect(self.session.resume)
        live.stop_requested.connect(self.session.stop)
        live.export_requested.connect(self.export_run)
        self.data_panel.loaded.connect(
            lambda info: self.training_panel.set_train_samples(int(info.get("train") or 0))
        )
        panel = self.runs_panel
        panel.overlay_requested.connect(self.overlay_runs)
        panel.evaluate_requested.connect(self.evaluate_run)
        panel.export_requested.connect(self.export_run)
        panel.resume_requested.connect(self.resume_run)
        self.run_finished.connect(panel.add_run)
        self.run_finished.connect(lambda _run: self._evaluate_latest(new_run=True))
        self.run_finished.connect(lambda _run: self.inside_view.run_ended())
        self.view_tabs.currentChanged.connect(lambda _i: self._evaluate_latest())

    # ------------------------------------------------------------- project
    def prepare_data_check(self) -> None:
        """Make the data panel (once), without the other views: it loads the project's
        data in the background and checks it against the model, so the Problems list
        and the status bar's count hold the data's problems before the Training tab is
        ever shown. Light (no pyqtgraph until it draws a plot): the window calls this
        once it is idle after start-up; :meth:`build` calls it too."""
        if self._data_panel is not None:
            return
        from gui.training.data_panel import DataPanel

        data = self._data_panel = DataPanel()
        data.fit_changed.connect(lambda _p: self._emit_data_problems())
        # after the panel's own handlers (connected first): a failed load sets load_error
        data._job.done.connect(lambda _r: self._emit_data_problems())
        data._job.failed.connect(lambda _e: self._emit_data_problems())
        if self.project is not None:
            data.set_project(self.project, self.undo_stack)
            if self._model_info is not None:
                self.update_model(self._model_info)

    def set_project(self, project: Any, undo_stack: Any) -> None:
        """Show and edit ``project`` (a run going on keeps its own snapshot)."""
        self.project, self.undo_stack = project, undo_stack
        if self._data_panel is not None:
            self._data_panel.set_project(project, undo_stack)
        self._show_project()

    def _show_project(self) -> None:
        """The views other than the data panel show :attr:`project` (once built)."""
        if not self._built:
            return
        self.training_panel.set_project(self.project, self.undo_stack)
        if self.runs_panel is not None:
            self.runs_panel.set_project(self.project)
        self._eval_pinned = False
        self._evaluate_latest()

    def update_model(self, info: dict[str, Any]) -> None:
        """The model changed: check the data against its shapes (``info`` from validation)."""
        self._model_info = info
        if self.project is not None and self._data_panel is not None:
            self._data_panel.set_model_shapes(*model_shapes(self.project, info))
            self.refresh_data_problems()  # an output activation changes no shape

    def refresh_data_problems(self) -> None:
        """Check again what depends on the graph and the training section, not on
        shapes (the output layer's activation against the loss): after any edit."""
        if self._data_panel is not None:
            self._emit_data_problems()

    def tensorflow_ready(self) -> None:
        self._tensorflow_ready = True
        if self._built:
            self.training_panel.tensorflow_ready()

    def _emit_data_problems(self) -> None:
        panel = self._data_panel
        fix = (panel.load_fix.text, panel.fix_command) if panel.load_fix else None
        found = data_problems(
            self.project, panel.dataset, panel.fit_problems, panel.load_error, fix
        )
        key = [(p.node, p.message, p.fix_text) for p in found]
        if key != getattr(self, "_data_key", []):
            self._data_key = key
            self.data_problems = found
            self.data_problems_changed.emit(found)

    # ------------------------------------------------------------ run history
    def overlay_runs(self, run_dirs: list) -> None:
        """Overlay the per-epoch history of each run folder on the live curves."""
        histories = {}
        for run_dir in run_dirs:
            path = Path(run_dir)
            histories[self.runs_panel.run_label(path)] = read_history(path)
        self.live.plots.overlay(histories)
        if histories:
            self.view_tabs.setCurrentWidget(self.live)

    def evaluate_run(self, run_dir: str) -> None:
        if self.evaluation_view is not None:
            self._eval_pinned = True
            self.evaluation_view.show_run(run_dir)
            self.view_tabs.setCurrentWidget(self.evaluation_view)

    def _evaluate_latest(self, new_run: bool = False) -> None:
        """The Evaluation tab shows the latest finished run on its own (a run the user
        chose stays until a new run ends); without one it says how to get one."""
        view = self.evaluation_view
        if view is None or self.view_tabs.currentWidget() is not view:
            if new_run:
                self._eval_pinned = False
            return
        if new_run:
            self._eval_pinned = False
        if self._eval_pinned and view.run_dir is not None:
            return
        latest = latest_finished_run(self.project)
        if latest is None:
            view.show_no_run(NO_RUN_YET)
        elif view.run_dir != latest:
            view.show_run(latest)

    # ------------------------------------------------------------ a card's activations
    def layer_selected(self, ids: list[str]) -> None:
        """Cards selected on the canvas: while the Inside tab's Activations are shown,
        scroll to the (first) selected layer's activations."""
        view = self.inside_view if self._built else None
        if not ids or view is None or not view.isVisible():
            return
        if view.tabs.currentIndex() == 0:  # Activations
            view.show_layer(ids[0])

    def show_activations(self, node_id: str) -> None:
        """A card's "Show Activations": the Inside tab's Activations at that layer."""
        self.build()
        self.show()
        self.raise_()
        view = self.inside_view
        self.view_tabs.setCurrentWidget(view)
        view.tabs.setCurrentIndex(0)
        view.show_layer(node_id)

    def export_run(self, run_dir: str) -> None:
        dialog = ExportDialog(run_dir, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.export_dialog = dialog
        dialog.open()

    # ------------------------------------------------------------- running
    @property
    def state(self) -> str:
        return self.session.state

    def train(self) -> bool:
        """Start a new run of the project as it is now. False if it cannot start."""
        if self.project is None or self.session.running:
            return False
        problems = self.training_panel.problems
        if problems:
            self.settings_tabs.setCurrentIndex(1)
            self._show_error(
                "The run cannot start with these settings",
                "Fix the training settings first:\n\n" + "\n".join(f"• {p}" for p in problems),
            )
            return False
        unsaved = self._cluster_unsaved()
        if unsaved:
            self._show_error("Save the project first", unsaved)
            return False
        errors = list(self.model_errors())
        if errors:
            self._show_error(
                "The model has errors",
                "Fix the model first (see Problems):\n\n" + "\n".join(f"• {p}" for p in errors[:8]),
            )
            return False
        if self.data_panel.fit_problems:
            self.settings_tabs.setCurrentIndex(0)
            self._show_error(
                "The data does not fit the model",
                "\n\n".join(p[:1].upper() + p[1:] + "." for p in self.data_panel.fit_problems)
                + "\n\nChange the model's input or output layer, or the data.",
            )
            return False
        try:
            run_dir = new_project_run_dir(self.project)
        except OSError as exc:
            self._show_error("No folder for the run", f"The run folder cannot be created: {exc}")
            return False
        self._start(self.project.to_dict(), run_dir, resume=False, base_dir=self.project.base_dir)
        return True

    def resume_run(self, run_dir: str) -> bool:
        """Continue ``run_dir`` from its last checkpoint (its own settings)."""
        if self.session.running:
            return False
        path = Path(run_dir)
        snapshot = read_json(path / "project.json") or (
            self.project.to_dict() if self.project is not None else {}
        )
        status = read_json(path / "status.json") or {}
        total = int((snapshot.get("training") or {}).get("epochs", 10))
        done = int(status.get("epochs_done") or 0)
        epochs = total if done >= total else None  # a finished run trains that many more
        base = base_dir_of(path)
        if base is None and self.project is not None:
            base = self.project.base_dir
        self._start(snapshot, path, resume=True, base_dir=base, epochs=epochs)
        for i, _ in enumerate((history := read_history(path)).get("loss", [])):
            self.live.plots.add_epoch(
                {"epoch": i + 1, "logs": {k: v[i] for k, v in history.items() if i < len(v)}}
            )
        return True

    def _start(
        self,
        snapshot: dict[str, Any],
        run_dir: Path,
        *,
        resume: bool,
        base_dir: Any,
        epochs: int | None = None,
    ) -> None:
        self._epochs_total = (snapshot.get("training") or {}).get("epochs", "?")
        self.live.on_run_starting(run_dir, resume)
        self.view_tabs.setCurrentWidget(self.live)
        if self.scroll.widget() is self.split:  # in the dock, not in the Training view
            self.show()
            self.raise_()  # in front of the Model tab it is stacked with
        self.session.start(snapshot, run_dir, epochs=epochs, resume=resume, base_dir=base_dir)
        if self.session.cluster:
            self._log_cluster(snapshot)

    def stop(self) -> None:
        self.session.stop()

    def pause(self) -> None:
        self.session.pause()

    def resume(self) -> None:
        self.session.resume()

    def shutdown(self) -> None:
        """End a run going on and the warm worker (the window closes)."""
        self.session.shutdown()

    def keep_worker_ready(self, on: bool) -> None:
        """Keep a warm training worker waiting (set up for the project's device), or not."""
        if on:
            device = (self.project.training or {}).get("device") if self.project else None
            self.session.keep_warm(device if isinstance(device, str) else None)
        else:
            self.session.stop_warm()

    def confirm_close(self) -> bool:
        """True when the window may close: no run is going on, or the user lets it end."""
        return not self.session.running or self._ask_stop()

    def _ask_stop(self) -> bool:
        """Ask whether to end the run going on (tests replace this)."""
        answer = QMessageBox.question(
            self.window(),
            "A run is going on",
            "Closing LayerLab ends the training run going on. The checkpoints written so "
            "far are kept, so it can be resumed later. Close anyway?",
            QMessageBox.StandardButton.Close | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Close

    # -------------------------------------------------------------- events
    def _on_state_changed(self, state: str) -> None:
        self.build()
        self.live.set_state(state)
        self._pause_rule()
        self.state_changed.emit(state)
        self._update_status(state)

    def _update_status(self, state: str, epoch: int | None = None) -> None:
        text = {
            "starting": "Training: starting…",
            "paused": "Training paused",
            "stopping": "Training: stopping…",
        }.get(state, "")
        if state == "running":
            text = f"Training: epoch {epoch or '…'}/{self._epochs_total}"
        self.status_text.emit(text)

    def _on_started(self, event: dict[str, Any]) -> None:
        self._epochs_total = event.get("epochs", self._epochs_total)
        self.live.on_started(event)
        self._update_status(self.session.state, int(event.get("initial_epoch", 0)) + 1)

    def _on_epoch(self, event: dict[str, Any]) -> None:
        self.live.on_epoch(event)
        if self.session.state == "running":
            self._update_status(
                "running", min(int(event.get("epoch", 0)) + 1, int(self._epochs_total or 1))
            )

    def _on_finished(self, event: dict[str, Any]) -> None:
        self.live.on_finished(event)
        run_dir = str(event.get("run_dir") or self.session.run_dir or "")
        if run_dir:
            self.run_finished.emit(run_dir)

    def _on_failed(self, event: dict[str, Any]) -> None:
        run_dir = self.session.run_dir
        if event.get("stopped"):  # the user stopped a cluster run before it trained
            live = self.live
            live.plots.finish()
            live.progress.setRange(0, 1)
            live.progress.setValue(0)
            live.progress.setFormat("Stopped before every worker joined")
            message = str(event.get("message", ""))
            live.append_log(message[:1].upper() + message[1:])
            self.status_text.emit("")
            return
        self.live.on_failed(event)
        self.status_text.emit(status_text(event))
        if run_dir is not None and run_dir.is_dir():
            self.run_finished.emit(str(run_dir))  # a failed run is listed too
        self._show_error(*error_text(event, run_dir))

    # ------------------------------------------------------------- cluster
    def _cluster_unsaved(self) -> str:
        """Why a cluster run cannot start yet ("" when it can, or for a local run)."""
        if self.training_panel.cluster is None:
            return ""
        if getattr(self.project, "path", None) is None:
            return (
                "This project trains on a cluster: the other machines read the project "
                "file, so save it first (File ▸ Save), then start them with the "
                "commands the cluster dialog shows."
            )
        stack = self.undo_stack
        if stack is not None and not getattr(stack, "is_clean", True):
            return (
                f"This project trains on a cluster, and the other machines read "
                f"{self.project.path}: save your changes first, or every worker "
                "refuses to train on a project that differs from the chief's."
            )
        return ""

    def _log_cluster(self, snapshot: dict[str, Any]) -> None:
        """Say in the log which machines the chief waits for, and what to run there."""
        workers = self.session.cluster
        path = getattr(self.project, "path", None) or "PROJECT"
        self.live.append_log(f"Chief of {len(workers)} workers ({workers[0]})")
        try:
            commands = worker_commands(path, workers, 0)
        except ClusterError:
            return
        if commands:
            self.live.append_log("On the other machines run:\n  " + "\n  ".join(commands))

    def _on_waiting(self, workers: list) -> None:
        text = "Waiting for workers: " + ", ".join(workers)
        self.live.append_log(text)
        self.live.progress.setFormat(text)
        self.status_text.emit(f"Training: {text[0].lower()}{text[1:]}")

    def _pause_rule(self) -> None:
        """Pause does not exist for a cluster run: say so on the (disabled) button."""
        button = self.live.pause_button
        if not hasattr(self, "_pause_tip"):
            self._pause_tip = button.toolTip()
        if self.session.cluster and self.session.running:
            button.setEnabled(False)
            button.setToolTip(PAUSE_CLUSTER_TIP)
        else:
            button.setToolTip(self._pause_tip)

    def _show_error(self, title: str, text: str) -> None:
        """Tell the user what went wrong (tests replace this)."""
        box = QMessageBox(
            QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self.window()
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
