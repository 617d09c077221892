"""LayerLab's main window: palette | canvas | inspector, problems and summary below.

Every edit goes through the project's :class:`engine.model.commands.UndoStack`; the
window only wires views together and owns the menus, the toolbar and the status bar.
Files (open, save, recent files, unsaved-changes questions, crash recovery) are
:class:`gui.file_actions.FileActions`, a mixin of the window; Help > Layer guide is
:mod:`gui.layer_guide`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QPointF, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.model.commands import UndoStack
from engine.model.graph import GraphError
from engine.model.project import Project, new_project
from gui import theme
from gui.autosave import Autosaver
from gui.canvas.scene import GraphScene
from gui.canvas.view import GraphView
from gui.code_preview import CodePreview
from gui.disk_watch import ChangedBar, DiskWatch
from gui.file_actions import FileActions, default_project, preset_files, settings
from gui.inspector.panel import Inspector
from gui.layer_guide import LayerGuide
from gui.palette import LayerPalette
from gui.paths import blocks_dir
from gui.problems import ProblemsPanel, SummaryTable
from gui.start_page import StartPage
from gui.startup_probe import StartupProbe
from gui.training.dock import TrainingDock
from gui.validation_controller import BUSY_MESSAGE, LOADING_MESSAGE, ValidationController

WARM_WORKER_KEY = "training/warm_worker"
"""The setting "Keep a training worker ready" (View menu); on unless turned off."""

WARM_DELAY_MS = 1000
"""How long after the first shapes (the engine service has loaded TensorFlow, the
window is idle) the warm worker starts."""
WORKER_STARTING = "Training engine starting…"
WORKER_READY = "Ready to train"


def _link(text: str, color: str) -> str:
    """``text`` as a link in ``color``, not underlined (the status bar's problem count)."""
    return f"<a href='problems' style='color:{color}; text-decoration:none'>{text}</a>"


class MainWindow(FileActions, QMainWindow):
    """The editor window for one project at a time.

    Args:
        project: The project to show (default: :func:`default_project`).
        load_tensorflow: Import keras in the background and show shapes once ready.
        check_recovery: After the window is first shown, offer to restore a
            recovery file a crashed session left.
        use_settings: Restore/save geometry, theme and recent files (QSettings).
        autosave: Write the recovery file while there are unsaved changes.
        start_page: Show the start page (new, presets, open, recent) until a project
            is chosen; ``project`` is then an empty new one meanwhile.
    """

    def __init__(
        self,
        project: Project | None = None,
        *,
        load_tensorflow: bool = True,
        check_recovery: bool = True,
        use_settings: bool = True,
        autosave: bool = True,
        start_page: bool = False,
    ) -> None:
        super().__init__()
        self.setObjectName("LayerLabMainWindow")
        self.use_settings = use_settings
        self._load_tensorflow = load_tensorflow
        self._check_recovery = check_recovery
        self._shown_once = False
        if project is None:
            project = new_project() if start_page else default_project()
        self.project: Project = project
        self.undo_stack = UndoStack(self.project)
        self._unsaved_restore = False
        self.dark = False

        self.scene = GraphScene(self.project, self.undo_stack)
        self.view = GraphView(self.scene)
        self.changed_bar = ChangedBar()  # "the file changed on disk" above the canvas
        self.changed_bar.reload_requested.connect(self.reload_from_disk)
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.changed_bar)
        column.addWidget(self.view, 1)
        # The central area: the canvas (Design view) or the training workspace (Training
        # view: the Training dock's settings, curves, runs and log get the window).
        self.central_stack = QStackedWidget()
        self.central_stack.addWidget(central)
        self.train_page = QWidget()
        self.train_page.setObjectName("train_page")
        QVBoxLayout(self.train_page).setContentsMargins(0, 0, 0, 0)
        self.central_stack.addWidget(self.train_page)
        self.perspective = "design"
        self._design_state: QByteArray | None = None
        self.setCentralWidget(self.central_stack)
        self.disk_watch = DiskWatch(self)
        self.disk_watch.changed.connect(self._on_file_changed)

        self.palette = LayerPalette(blocks_folder=blocks_dir())
        # never narrower than its longest layer name: a restored layout cannot cut them
        self.palette.setMinimumWidth(self.palette.sizeHint().width())
        self.inspector = Inspector()
        self.problems = ProblemsPanel()
        self.summary = SummaryTable()
        self.code = CodePreview()
        self.validation = ValidationController(self, load_tensorflow=load_tensorflow)
        self.autosaver = Autosaver(self._autosave_state, self) if autosave else None

        self._build_docks()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._build_training()
        self._connect()
        self._attach(self.project, self.undo_stack)
        if use_settings:
            self._restore_settings()
        else:
            self.resize(1400, 900)
        if load_tensorflow and not self.validation.ready:
            self._on_validation_status(LOADING_MESSAGE)
        self.start_page: StartPage | None = None
        if start_page:
            self.show_start_page()

    # ------------------------------------------------------------------ layout
    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        self.setDockNestingEnabled(True)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.palette_dock = self._dock(
            "Layers", "palette_dock", self.palette, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.inspector_dock = self._dock(
            "Inspector", "inspector_dock", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.setDocumentMode(True)
        self.bottom_tabs.addTab(self.problems, "Problems")
        self.bottom_tabs.addTab(self.summary, "Model summary")
        self.bottom_dock = self._dock(
            "Model", "bottom_dock", self.bottom_tabs, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.bottom_dock.setTitleBarWidget(QWidget())  # the tabs are title enough
        self.code_dock = self._dock(
            "Generated code", "code_dock", self.code, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.code_dock.hide()
        self.resizeDocks(
            [self.palette_dock, self.inspector_dock], [230, 330], Qt.Orientation.Horizontal
        )
        self.resizeDocks([self.bottom_dock], [190], Qt.Orientation.Vertical)

    def _action(
        self,
        text: str,
        slot: Any = None,
        shortcut: Any = None,
        tip: str = "",
        checkable: bool = False,
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.setCheckable(checkable)
        if slot is not None:
            action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        key = QKeySequence.StandardKey
        a = self._action
        self.act_new = a("&New", self.new_file, key.New, "Start an empty model")
        self.act_new_pretrained = a(
            "New from Pre&trained…",
            self.new_from_pretrained,
            tip="Transfer learning: a pretrained network and your image folder",
        )
        self.act_open = a("&Open…", self.open_dialog, key.Open, "Open a project file")
        self.act_save = a("&Save", self.save, key.Save, "Save the project")
        self.act_save_as = a("Save &As…", self.save_as, key.SaveAs, "Save under a new name")
        self.act_import = a("&Import Keras model…", self.import_keras)
        self.act_export = a("&Export…", self.export_model)
        self.act_quit = a("&Quit", self.close, key.Quit)
        self.act_undo = a("&Undo", self._undo, key.Undo)
        self.act_redo = a("&Redo", self._redo, key.Redo)
        # The toolbar's buttons keep a fixed text (the menu items say what they undo):
        # a growing "Undo Set activation of 'dense_1'" would move every button after it.
        self.tool_undo = a("Undo", self._undo)
        self.tool_redo = a("Redo", self._redo)
        self.act_cut = a("Cu&t", self._cut, key.Cut)
        self.act_copy = a("&Copy", lambda: self.scene.copy_selection(), key.Copy)
        self.act_paste = a("&Paste", lambda: self.scene.paste(), key.Paste)
        self.act_duplicate = a("&Duplicate", lambda: self.scene.duplicate(), "Ctrl+D")
        self.act_delete = a("De&lete", lambda: self.scene.delete_selection(), key.Delete)
        self.act_select_all = a("Select &All", self.select_all, key.SelectAll)
        self.act_find = a(
            "&Find Layer…",
            lambda: self.view.open_find(),
            key.Find,
            "Find layers by name, type or parameter value (Enter: next, Esc: close)",
        )
        self.act_group = a(
            "&Group as Block",
            lambda: self.scene.group_selection(),
            "Ctrl+G",
            "Group the selected layers as a block that can collapse to one card",
        )
        self.act_ungroup = a(
            "U&ngroup Block",
            lambda: self.scene.ungroup(),
            "Ctrl+Shift+G",
            "Remove the selected block (its layers stay)",
        )
        self.act_zoom_in = a("Zoom &In", lambda: self.view.zoom_in(), key.ZoomIn)
        self.act_zoom_out = a("Zoom &Out", lambda: self.view.zoom_out(), key.ZoomOut)
        self.act_fit = a(
            "&Fit to Window", lambda: self.view.fit(), "Ctrl+0", "Show the whole model"
        )
        self.act_layout = a(
            "Auto &Layout",
            lambda: self.scene.auto_layout(),
            "Ctrl+L",
            "Arrange the layers top to bottom",
        )
        self.act_light = a("&Light Theme", lambda: self.set_dark(False), checkable=True)
        self.act_dark = a("&Dark Theme", lambda: self.set_dark(True), checkable=True)
        group = QActionGroup(self)
        group.addAction(self.act_light)
        group.addAction(self.act_dark)
        self.act_light.setChecked(True)
        self.act_validate = a(
            "&Validate", self.validate_now, "F8", "Check the model and show its problems"
        )
        self.act_summary = a("&Summary", self.show_summary, "F6", "Layers, shapes, parameters")
        self.act_code = a(
            "Generated &Code",
            self.toggle_code,
            "F7",
            "Preview the Python script this model becomes",
            checkable=True,
        )
        self.act_guide = a("&Layer Guide", self.show_layer_guide, key.HelpContents)
        self.act_about = a("&About LayerLab", self.show_about)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        file.addAction(self.act_new)
        self.presets_menu = file.addMenu("New from &Preset")
        for name, path in preset_files():
            self.presets_menu.addAction(name, lambda p=path: self.new_from_preset(p))
        self.presets_menu.setEnabled(bool(self.presets_menu.actions()))
        file.addAction(self.act_new_pretrained)
        file.addAction(self.act_open)
        self.recent_menu = file.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file.addSeparator()
        file.addAction(self.act_save)
        file.addAction(self.act_save_as)
        file.addSeparator()
        file.addAction(self.act_import)
        file.addAction(self.act_export)
        file.addSeparator()
        file.addAction(self.act_quit)
        edit = bar.addMenu("&Edit")
        for action in (
            self.act_undo,
            self.act_redo,
            None,
            self.act_cut,
            self.act_copy,
            self.act_paste,
            self.act_duplicate,
            self.act_delete,
            None,
            self.act_select_all,
            self.act_find,
            None,
            self.act_group,
            self.act_ungroup,
        ):
            edit.addSeparator() if action is None else edit.addAction(action)
        view = self.view_menu = bar.addMenu("&View")
        for action in (
            self.act_zoom_in,
            self.act_zoom_out,
            self.act_fit,
            None,
            self.act_layout,
            None,
            self.act_light,
            self.act_dark,
            None,
        ):
            view.addSeparator() if action is None else view.addAction(action)
        self.act_warm_worker = self._action(
            "&Keep a Training Worker Ready",
            tip="Keep a training process with TensorFlow loaded waiting, so that Train "
            "starts in about a second (it holds some memory while it waits)",
            checkable=True,
        )
        # on in the app unless the user turned it off; off in windows without settings
        # (tests, benchmarks, screenshots), which turn it on when they want one
        on = self.use_settings and str(settings().value(WARM_WORKER_KEY, "true")).lower() != "false"
        self.act_warm_worker.setChecked(on)
        self.act_warm_worker.toggled.connect(self._on_warm_worker_toggled)
        view.addAction(self.act_warm_worker)
        view.addSeparator()
        panels = self.panels_menu = view.addMenu("&Panels")
        for dock in (self.palette_dock, self.inspector_dock, self.bottom_dock):
            panels.addAction(dock.toggleViewAction())
        model = self.model_menu = bar.addMenu("&Model")
        model.addAction(self.act_validate)
        model.addAction(self.act_summary)
        model.addAction(self.act_code)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_guide)
        help_menu.addAction(self.act_about)

    def _build_toolbar(self) -> None:
        tools = self.main_toolbar = self.addToolBar("Main")
        tools.setObjectName("main_toolbar")
        tools.setMovable(False)
        tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for action in (
            self.act_new,
            self.act_open,
            self.act_save,
            None,
            self.tool_undo,
            self.tool_redo,
            None,
            self.act_fit,
            self.act_layout,
            None,
            self.act_validate,
            self.act_code,
        ):
            tools.addSeparator() if action is None else tools.addAction(action)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.problems_label = QLabel()  # a link: clicked, it shows the Problems list
        self.problems_label.setToolTip("Show the Problems list")
        self.problems_label.linkActivated.connect(lambda _link: self.show_problem_list())
        self.params_label = QLabel()
        self.tf_label = QLabel()
        # "Computing shapes…" while the engine service works on an edit (or restarts)
        self.shapes_label = QLabel(BUSY_MESSAGE)
        # the warm training worker: "Training engine starting…", then "Ready to train"
        self.worker_label = QLabel()
        labels = (self.worker_label, self.shapes_label, self.tf_label)
        for label in (*labels, self.params_label, self.problems_label):
            label.setContentsMargins(8, 0, 8, 0)
            bar.addPermanentWidget(label)
        for label in labels:
            label.setVisible(False)

    def _connect(self) -> None:
        self.palette.add_requested.connect(self.add_layer_at_centre)
        self.palette.place_requested.connect(self.place_block_at_centre)
        self.palette.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.scene.block_actions.append(("Save to My Blocks", self.save_block_to_library))
        self.inspector.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.problems.node_clicked.connect(self.show_node)
        self.summary.node_clicked.connect(self.show_node)
        self.bottom_tabs.currentChanged.connect(self._on_bottom_tab)
        self.problems.fix_requested.connect(self.apply_fix)
        self.validation.updated.connect(self._on_analysis)
        self.validation.status.connect(self._on_validation_status)
        self.validation.tensorflow_ready.connect(self._on_tensorflow_ready)
        self.validation.busy.connect(self._on_shapes_busy)
        self.code_dock.visibilityChanged.connect(self.act_code.setChecked)

    # ---------------------------------------------------------------- training
    def _build_training(self) -> None:
        """The Training dock, Model > Train (F5) and Stop, and the run's status."""
        dock = self.training_dock = TrainingDock(
            self,
            model_errors=lambda: [
                p.message for p in self.validation.problems if p.severity == "error"
            ],
        )
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        self.tabifyDockWidget(self.bottom_dock, dock)
        self.bottom_dock.raise_()
        self.act_train = self._action(
            "&Train", dock.train, "F5", "Train the model on its data (Training panel)"
        )
        self.act_stop = self._action(
            "S&top Training",
            dock.stop,
            "Shift+F5",
            "Stop the run after this batch, keeping the model",
        )
        self.act_stop.setEnabled(False)
        self.model_menu.addSeparator()
        self.model_menu.addAction(self.act_train)
        self.model_menu.addAction(self.act_stop)
        self.panels_menu.addAction(dock.toggleViewAction())
        self.main_toolbar.addSeparator()
        self.main_toolbar.addAction(self.act_train)
        self.main_toolbar.addAction(self.act_stop)
        self.act_design_view = self._action(
            "&Design",
            lambda: self.set_perspective("design"),
            "Ctrl+1",
            "Design view: the canvas, layers and inspector (Ctrl+1)",
            checkable=True,
        )
        self.act_training_view = self._action(
            "Trai&ning",
            lambda: self.set_perspective("train"),
            "Ctrl+2",
            "Training view: data and training settings, curves, runs and log get the "
            "whole window (Ctrl+2)",
            checkable=True,
        )
        group = QActionGroup(self)
        group.addAction(self.act_design_view)
        group.addAction(self.act_training_view)
        self.act_design_view.setChecked(True)
        self.view_menu.insertActions(
            self.view_menu.actions()[0], [self.act_design_view, self.act_training_view]
        )
        self.view_menu.insertSeparator(self.view_menu.actions()[2])
        self.main_toolbar.addSeparator()
        self.main_toolbar.addAction(self.act_design_view)
        self.main_toolbar.addAction(self.act_training_view)
        self.train_label = QLabel()
        self.train_label.setContentsMargins(8, 0, 8, 0)
        self.train_label.setVisible(False)
        self.statusBar().insertPermanentWidget(0, self.train_label)
        dock.status_text.connect(self._on_training_status)
        dock.state_changed.connect(self._on_training_state)
        dock.data_problems_changed.connect(lambda _p: self._show_problems())
        self.validation.updated.connect(lambda: dock.update_model(self.validation.info))
        self.validation.tensorflow_ready.connect(dock.tensorflow_ready)
        # idle once the engine service has loaded TensorFlow and drawn shapes: then the
        # warm worker (the two imports would otherwise share the cores)
        self.validation.tensorflow_ready.connect(
            lambda: QTimer.singleShot(WARM_DELAY_MS, self._start_warm_worker_at_start_up)
        )
        # and the data, checked against the model before the Training tab is first shown
        # (the status bar's count said "No problems" until then)
        self.validation.tensorflow_ready.connect(dock.prepare_data_check)
        dock.session.warm_changed.connect(self._on_warm_worker)

    DESIGN_DOCKS = ("palette_dock", "inspector_dock", "bottom_dock", "code_dock")

    def set_perspective(self, name: str) -> None:
        """``"design"``: the canvas in the middle, the panels around it, Training a dock.
        ``"train"``: the Training dock's content fills the central area; the design
        panels are hidden (their places come back with Design). Remembered in settings."""
        name = "train" if name == "train" else "design"
        if name == "train" and getattr(self, "start_page", None) is not None:
            if self.on_start_page():
                self._leave_start_page()
        (self.act_training_view if name == "train" else self.act_design_view).setChecked(True)
        if name == self.perspective:
            return
        dock = self.training_dock
        if name == "train":
            self._design_state = self.saveState()
            dock.build()
            content = dock.scroll.takeWidget()
            self.train_page.layout().addWidget(content)
            content.show()
            dock.hide()
            for attr in self.DESIGN_DOCKS:
                getattr(self, attr).hide()
            self.central_stack.setCurrentWidget(self.train_page)
        else:
            content = dock.split
            self.train_page.layout().removeWidget(content)
            dock.scroll.setWidget(content)
            self.central_stack.setCurrentIndex(0)
            if self._design_state is not None:
                self.restoreState(self._design_state)
            else:
                for attr in ("palette_dock", "inspector_dock", "bottom_dock"):
                    getattr(self, attr).show()
            QTimer.singleShot(0, self._fit_view)
        self.perspective = name
        dock.toggleViewAction().setEnabled(name == "design")
        if self.use_settings:
            settings().setValue("perspective", name)

    def _on_training_state(self, state: str) -> None:
        self.act_train.setEnabled(state == "idle")
        self.act_stop.setEnabled(state not in ("idle", "stopping"))
        dock = self.training_dock
        if state in ("idle", "starting"):
            self._on_warm_worker(dock.session.warm_state)
        if self.perspective == "train":
            return
        if state == "starting" and not dock.isFloating() and dock.height() < 360:
            self.resizeDocks([dock], [max(360, int(self.height() * 0.45))], Qt.Orientation.Vertical)

    def _on_training_status(self, text: str) -> None:
        self.train_label.setText(text)
        self.train_label.setVisible(bool(text))

    # ----------------------------------------------------------------- project
    def _attach(self, project: Project, undo_stack: UndoStack) -> None:
        """Point every view at ``project`` (first time or after new/open)."""
        self.project, self.undo_stack = project, undo_stack
        if self.scene.project is not project:
            self.scene.set_project(project, undo_stack)
        self._connect_scene()
        self.inspector.set_project(project, undo_stack)
        self.training_dock.set_project(project, undo_stack)
        self._on_selection(list(self.scene.selected_ids()))
        self.validation.set_project(project)
        self.code.set_project(project, undo_stack)
        undo_stack.events.changed.connect(self._on_stack_changed)
        undo_stack.events.clean_changed.connect(self._on_clean_changed)
        self._on_stack_changed()
        self._update_title()
        self._watch_open_file()
        self.validation.flush()
        QTimer.singleShot(0, self._fit_view)

    def _connect_scene(self) -> None:
        if getattr(self, "_scene_connected", None) is self.scene:
            return
        self.scene.selection_ids_changed.connect(self._on_selection)
        self.scene.status_message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.scene.node_activated.connect(self._on_node_activated)
        self.scene.activations_requested.connect(self.training_dock.show_activations)
        self._scene_connected = self.scene

    def _replace_project(self, project: Project, clean: bool = True) -> None:
        old_stack = self.undo_stack
        old_stack.events.changed.disconnect(self._on_stack_changed)
        old_stack.events.clean_changed.disconnect(self._on_clean_changed)
        stack = UndoStack(project)
        self._unsaved_restore = not clean  # restored/imported work: unsaved until saved
        self._attach(project, stack)
        self._leave_start_page()
        if self.autosaver is not None:
            self.autosaver.save_now()

    # ------------------------------------------------------------- start page
    def show_start_page(self) -> None:
        """The start page in the central area (the design panels hidden meanwhile)."""
        self.set_perspective("design")
        if self.start_page is None:
            page = self.start_page = StartPage()
            page.new_requested.connect(self.new_file)
            page.preset_requested.connect(self.new_from_preset)
            page.pretrained_requested.connect(self.new_from_pretrained)
            page.open_requested.connect(self.open_dialog)
            page.recent_requested.connect(self.open_path)
            self.central_stack.addWidget(page)
        self.start_page.set_recent(self.recent_files())
        docks = (self.palette_dock, self.inspector_dock, self.bottom_dock, self.training_dock)
        self._start_docks = [d for d in docks if not d.isHidden()] or list(docks[:3])
        # the panels' sizes, given back on leaving (before the window is shown they are
        # not laid out yet: then the saved layout is applied again on leaving)
        self._start_state = self.saveState() if self.isVisible() else None
        for dock in (*docks, self.code_dock):
            dock.hide()
        self.central_stack.setCurrentWidget(self.start_page)

    def on_start_page(self) -> bool:
        return self.start_page is not None and self.central_stack.currentWidget() is self.start_page

    def _leave_start_page(self) -> None:
        if not self.on_start_page():
            return
        self.central_stack.setCurrentIndex(0)
        state = self._start_state
        if state is None and self.use_settings:
            state = settings().value("state")
        if not isinstance(state, QByteArray) or not self.restoreState(state):
            for dock in self._start_docks:
                dock.show()
        self.bottom_dock.raise_()

    def _fit_view(self) -> None:
        self.view.fit(min_zoom=0.5)

    def _update_title(self) -> None:
        if self.project.path:
            name = Path(self.project.path).name
        else:
            name = self.project.name or "Untitled"
        self.setWindowTitle(f"{name}[*] — LayerLab")
        self.setWindowModified(not self.is_clean())

    def is_clean(self) -> bool:
        """True when the open project has nothing unsaved."""
        return self.undo_stack.is_clean and not self._unsaved_restore

    # ---------------------------------------------------------------- events
    def _on_stack_changed(self) -> None:
        stack = self.undo_stack
        undo = f"Undo {stack.undo_text}" if stack.can_undo else "Undo"
        redo = f"Redo {stack.redo_text}" if stack.can_redo else "Redo"
        shortcut = QKeySequence.StandardKey
        for menu, tool, text, can, key in (
            (self.act_undo, self.tool_undo, undo, stack.can_undo, shortcut.Undo),
            (self.act_redo, self.tool_redo, redo, stack.can_redo, shortcut.Redo),
        ):
            menu.setEnabled(can)
            tool.setEnabled(can)
            menu.setText("&" + text)
            keys = QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText)
            tool.setToolTip(f"{text} ({keys})" if keys else text)
        self.setWindowModified(not self.is_clean())
        if self.autosaver is not None:
            self.autosaver.schedule()
        self.training_dock.refresh_data_problems()  # e.g. the loss's from_logits

    def _on_clean_changed(self, _clean: bool) -> None:
        self.setWindowModified(not self.is_clean())

    def _on_selection(self, ids: list[str]) -> None:
        self.inspector.show_nodes(list(ids))
        self.training_dock.layer_selected(list(ids))  # the Inside tab's activations
        for action in (self.act_cut, self.act_copy, self.act_duplicate, self.act_delete):
            action.setEnabled(bool(ids))

    def _on_node_activated(self, node_id: str) -> None:
        self.inspector_dock.show()
        self.inspector_dock.raise_()

    def _on_validation_status(self, text: str) -> None:
        if text == LOADING_MESSAGE:
            self.tf_label.setText(text)
            self.tf_label.setVisible(True)
        else:
            self.statusBar().showMessage(text, 4000)

    def start_warm_worker(self) -> None:
        """Start the warm training worker now, if "Keep a training worker ready" is on."""
        if self.act_warm_worker.isChecked():
            self.training_dock.keep_worker_ready(True)

    def _start_warm_worker_at_start_up(self) -> None:
        if self._load_tensorflow and self.isVisible():
            self.start_warm_worker()

    def _on_warm_worker_toggled(self, on: bool) -> None:
        if self.use_settings:
            settings().setValue(WARM_WORKER_KEY, on)
        self.training_dock.keep_worker_ready(on)

    def _on_warm_worker(self, state: str) -> None:
        """Say how the warm worker is doing; not while a run trains (the spare that
        starts then is for the next run: said once the run has ended)."""
        text = {"starting": WORKER_STARTING, "ready": WORKER_READY}.get(state, "")
        if self.training_dock.session.running:
            text = ""
        self.worker_label.setText(text)
        self.worker_label.setVisible(bool(text))
        if text and state == "ready":
            self.statusBar().showMessage("Training worker ready", 5000)

    def _on_shapes_busy(self, busy: bool) -> None:
        self.shapes_label.setVisible(busy and self.validation.ready)

    def _on_tensorflow_ready(self) -> None:
        self.tf_label.setVisible(False)

    def _on_analysis(self) -> None:
        ctrl = self.validation
        self.scene.set_analysis(ctrl.info, ctrl.problems)
        self.inspector.set_analysis(ctrl.info, ctrl.problems)
        self._show_problems()

    def _show_problems(self) -> None:
        """The model's problems and the data's (the Training dock's) in the list and the
        status bar's count."""
        self.problems.set_problems(
            list(self.validation.problems) + list(self.training_dock.data_problems),
            fixits=self.scene.fixits,
        )
        errors, warnings = self.problems.counts()
        if errors or warnings:
            parts = [f"{errors} error{'s' * (errors != 1)}"] if errors else []
            parts += [f"{warnings} warning{'s' * (warnings != 1)}"] if warnings else []
            text = ", ".join(parts)
            color = theme.colors()["error" if errors else "warning"]
            self.problems_label.setText(_link(f"● {text}", color))
            self.bottom_tabs.setTabText(0, f"Problems ({errors + warnings})")
        else:
            ok = "#16a34a"
            self.problems_label.setText(_link("● No problems", ok))
            self.bottom_tabs.setTabText(0, "Problems")
        self._update_summary()

    def show_problem_list(self) -> None:
        """The Problems list in front (the Design view's bottom panel, with its fixes)."""
        self.set_perspective("design")
        self.bottom_dock.show()
        self.bottom_dock.raise_()
        self.bottom_tabs.setCurrentWidget(self.problems)

    def _update_summary(self) -> None:
        """The status bar's parameter count, and the Model summary table when it is shown
        (a 500-layer table costs ~20 ms to rebuild: a hidden one is rebuilt when shown)."""
        totals = self.validation.totals()
        if totals is None:
            self.params_label.setText("")
        else:
            mb = totals[0] * 4 / (1024 * 1024)
            partial = " so far" if self.problems.counts()[0] else ""
            frozen = f" ({totals[2]:,} non-trainable)" if totals[2] else ""
            self.params_label.setText(f"{totals[0]:,} params{partial}{frozen} · {mb:.2f} MB")
        self._summary_stale = self.bottom_tabs.currentWidget() is not self.summary
        if self._summary_stale:
            return
        graph = self.project.graph
        try:
            order = graph.topological_order()
        except GraphError:
            order = list(graph.nodes)
        info = self.validation.info
        rows = []
        for nid in order:
            node, layer = graph.nodes[nid], info.get(nid)
            rows.append(
                (
                    nid,
                    node.type,
                    getattr(layer, "output_shape", None),
                    getattr(layer, "params", None) if layer is not None else None,
                    getattr(layer, "non_trainable", None) if layer is not None else None,
                    not node.trainable,
                )
            )
        if totals is None:
            note = (
                "Shapes and parameter counts appear when TensorFlow is ready."
                if not self.validation.ready
                else ""
            )
            self.summary.set_rows(rows, note)
        else:
            self.summary.set_rows(rows)
            self.summary.set_totals(*totals)

    def _on_bottom_tab(self, _index: int) -> None:
        if getattr(self, "_summary_stale", False):
            self._update_summary()

    # ---------------------------------------------------------------- editing
    def _undo(self) -> None:
        self._run_edit(self.undo_stack.undo)

    def _redo(self) -> None:
        self._run_edit(self.undo_stack.redo)

    def _run_edit(self, fn: Any) -> None:
        try:
            fn()
        except GraphError as exc:
            self.statusBar().showMessage(str(exc), 6000)

    def _cut(self) -> None:
        self.scene.copy_selection()
        self.scene.delete_selection()

    def select_all(self) -> None:
        self.scene.select_ids(list(self.project.graph.nodes))

    def add_layer_at_centre(self, layer_type: str) -> None:
        """Add ``layer_type`` at the view's centre, wired after the selected layer."""
        selected = list(self.scene.selected_ids())
        after = selected[-1] if selected else None
        centre = self.view.mapToScene(self.view.viewport().rect().center())
        try:
            self.scene.add_layer(layer_type, QPointF(centre), after=after)
        except GraphError as exc:
            self.statusBar().showMessage(str(exc), 6000)

    def place_block_at_centre(self, fragment: dict) -> None:
        """Place a saved block (from "My blocks") at the view's centre, wired after the
        selected layer (one undo step)."""
        selected = list(self.scene.selected_ids())
        centre = self.view.mapToScene(self.view.viewport().rect().center())
        self.scene.place_block(fragment, QPointF(centre), after=selected[-1] if selected else None)

    def save_block_to_library(self, block_id: str) -> None:
        """Save a block to "My blocks" (a small file in the app's data folder; never
        replacing another), off the UI thread; the palette lists it when written."""
        self.palette.save_block(self.project.graph, block_id)

    def apply_fix(self, problem: Any) -> None:
        """Apply a problem's one-click fix as one undoable edit."""
        fix = getattr(problem, "fix", None)
        if fix is None:
            return
        try:
            self.undo_stack.push(fix())
        except GraphError as exc:
            self.statusBar().showMessage(str(exc), 6000)
            return
        self.statusBar().showMessage(f"{problem.fix_text} (Undo reverts it)", 5000)

    def show_node(self, node_id: str) -> None:
        """Select ``node_id`` and centre the canvas on it."""
        if node_id not in self.project.graph.nodes:
            return
        self.scene.select_ids([node_id])
        self.view.center_on(node_id)

    # ------------------------------------------------------------------ model
    def validate_now(self) -> None:
        self.validation.flush()
        self.bottom_dock.show()
        self.bottom_tabs.setCurrentWidget(self.problems)
        n = len(self.validation.problems)
        where = "" if self.validation.ready else " (structure only: TensorFlow is still loading)"
        self.statusBar().showMessage(
            ("No problems found" if not n else f"{n} problem{'s' * (n != 1)} found") + where, 5000
        )

    def show_summary(self) -> None:
        self.bottom_dock.show()
        self.bottom_tabs.setCurrentWidget(self.summary)

    def toggle_code(self, checked: bool | None = None) -> None:
        show = self.code_dock.isHidden() if checked is None else checked
        was_hidden = self.code_dock.isHidden()
        self.code_dock.setVisible(show)
        if show:
            self.code_dock.raise_()
            if was_hidden and not self.code_dock.isFloating():
                half = max(200, self.inspector_dock.height() // 2)
                self.resizeDocks(
                    [self.inspector_dock, self.code_dock], [half, half], Qt.Orientation.Vertical
                )

    def set_dark(self, dark: bool) -> None:
        """Switch between the light and dark theme (remembered in settings)."""
        self.dark = dark
        app = QApplication.instance()
        if app is not None:
            theme.apply_theme(app, dark)
        (self.act_dark if dark else self.act_light).setChecked(True)
        self.scene.set_dark(dark)
        self._on_analysis()

    # ------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        s = settings()
        geometry = s.value("geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        state = s.value("state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        if str(s.value("dark", "false")).lower() == "true":
            self.set_dark(True)
        if s.value("perspective", "design") == "train":
            self.set_perspective("train")

    def _save_settings(self) -> None:
        if not self.use_settings:
            return
        s = settings()
        s.setValue("geometry", self.saveGeometry())
        in_train = self.perspective == "train" and self._design_state is not None
        if not self.on_start_page():  # its hidden panels are not the user's layout
            s.setValue("state", self._design_state if in_train else self.saveState())
        s.setValue("perspective", self.perspective)
        s.setValue("dark", self.dark)
        s.sync()

    # ---------------------------------------------------------- life cycle
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._shown_once:
            return
        self._shown_once = True
        QTimer.singleShot(0, self._first_shown)

    def _first_shown(self) -> None:
        probe = os.environ.get("LAYERLAB_STARTUP_PROBE")
        if probe:
            self._probe = StartupProbe(probe, self)
        self._fit_view()
        self.validation.start()  # TensorFlow loads only once the window is up
        if self._check_recovery:  # a real start-up (not a screenshot or a test window)
            self.clean_stale_temps_at_start()
            self.offer_recovery()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.training_dock.confirm_close() or not self.maybe_save():
            event.ignore()
            return
        self._save_settings()
        self.training_dock.shutdown()
        if self.autosaver is not None:
            self.autosaver.stop()
            self.autosaver.clear()
        event.accept()

    # ---------------------------------------------------------------- help
    def show_layer_guide(self) -> None:
        dialog = LayerGuide(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About LayerLab",
            "<b>LayerLab</b><br>Build, train and export Keras models by drag "
            f"and drop.<br><br>Python {sys.version.split()[0]}",
        )
