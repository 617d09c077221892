"""LayerLab's main window: palette | canvas | inspector, problems and summary below.

Every edit goes through the project's :class:`engine.model.commands.UndoStack`; the
window only wires views together, owns the menus, and handles files (open,
save, recent files, unsaved-changes questions, crash recovery).

The questions the window asks (save changes?, restore recovery?, which file?)
and its warnings are small methods (``_ask_save``, ``_ask_restore``,
``_ask_open_path``, ``_ask_save_path``, ``_warn``) so tests can replace them.
"""

from __future__ import annotations

import html
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QObject, QPointF, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.build.weights import carry_weights
from engine.catalog.specs import CATEGORIES
from engine.catalog.table import CATALOG
from engine.io.importer import grouped_notes
from engine.model.commands import UndoStack
from engine.model.graph import GraphError
from engine.model.project import Project, ProjectError, load_project, new_project, save_project
from gui import theme
from gui.autosave import Autosaver, find_recovery, imports_dir
from gui.canvas import GraphScene, GraphView
from gui.code_preview import CodePreview
from gui.inspector import Inspector
from gui.palette import LayerPalette
from gui.problems import ProblemsPanel, SummaryTable
from gui.training.export_dialog import ExportDialog
from gui.validation_controller import LOADING_MESSAGE, ValidationController
from presets import presets_dir

FILE_FILTER = "LayerLab projects (*.json);;All files (*)"
MAX_RECENT = 8


def settings() -> QSettings:
    """The app's settings; ``$LAYERLAB_SETTINGS`` (an .ini path) redirects them for tests."""
    path = os.environ.get("LAYERLAB_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings("LayerLab", "LayerLab")


def preset_files() -> list[tuple[str, Path]]:
    """``(name, path)`` of every preset project, sorted by name."""
    out = []
    for path in sorted(presets_dir().glob("*.json")):
        try:
            name = json.loads(path.read_text(encoding="utf-8")).get("name") or path.stem
        except (OSError, ValueError, AttributeError):
            name = path.stem
        out.append((str(name), path))
    return sorted(out)


def default_project() -> Project:
    """presets/lenet5.json when it loads, else an empty new project."""
    path = presets_dir() / "lenet5.json"
    if path.exists():
        try:
            project = load_project(path)
            project.path = None  # a preset is a template: saving asks for a new file
            return project
        except ProjectError:
            pass
    return new_project()


class MainWindow(QMainWindow):
    """The editor window for one project at a time.

    Args:
        project: The project to show (default: :func:`default_project`).
        load_tensorflow: Import keras in the background and show shapes once ready.
        check_recovery: After the window is first shown, offer to restore a
            recovery file a crashed session left.
        use_settings: Restore/save geometry, theme and recent files (QSettings).
        autosave: Write the recovery file while there are unsaved changes.
    """

    def __init__(
        self,
        project: Project | None = None,
        *,
        load_tensorflow: bool = True,
        check_recovery: bool = True,
        use_settings: bool = True,
        autosave: bool = True,
    ) -> None:
        super().__init__()
        self.setObjectName("LayerLabMainWindow")
        self.use_settings = use_settings
        self._check_recovery = check_recovery
        self._shown_once = False
        self.project: Project = project or default_project()
        self.undo_stack = UndoStack(self.project)
        self._unsaved_restore = False
        self.dark = False

        self.scene = GraphScene(self.project, self.undo_stack)
        self.view = GraphView(self.scene)
        self.setCentralWidget(self.view)

        self.palette = LayerPalette()
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
        self.act_open = a("&Open…", self.open_dialog, key.Open, "Open a project file")
        self.act_save = a("&Save", self.save, key.Save, "Save the project")
        self.act_save_as = a("Save &As…", self.save_as, key.SaveAs, "Save under a new name")
        self.act_import = a("&Import Keras model…", self.import_keras)
        self.act_export = a("&Export…", self.export_model)
        self.act_quit = a("&Quit", self.close, key.Quit)
        self.act_undo = a("&Undo", self._undo, key.Undo)
        self.act_redo = a("&Redo", self._redo, key.Redo)
        self.act_cut = a("Cu&t", self._cut, key.Cut)
        self.act_copy = a("&Copy", lambda: self.scene.copy_selection(), key.Copy)
        self.act_paste = a("&Paste", lambda: self.scene.paste(), key.Paste)
        self.act_duplicate = a("&Duplicate", lambda: self.scene.duplicate(), "Ctrl+D")
        self.act_delete = a("De&lete", lambda: self.scene.delete_selection(), key.Delete)
        self.act_select_all = a("Select &All", self.select_all, key.SelectAll)
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
        ):
            edit.addSeparator() if action is None else edit.addAction(action)
        view = bar.addMenu("&View")
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
            self.act_undo,
            self.act_redo,
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
        self.problems_label = QLabel()
        self.params_label = QLabel()
        self.tf_label = QLabel()
        for label in (self.tf_label, self.params_label, self.problems_label):
            label.setContentsMargins(8, 0, 8, 0)
            bar.addPermanentWidget(label)
        self.tf_label.setVisible(False)

    def _connect(self) -> None:
        self.palette.add_requested.connect(self.add_layer_at_centre)
        self.problems.node_clicked.connect(self.show_node)
        self.validation.updated.connect(self._on_analysis)
        self.validation.status.connect(self._on_validation_status)
        self.validation.tensorflow_ready.connect(self._on_tensorflow_ready)
        self.code_dock.visibilityChanged.connect(self.act_code.setChecked)

    # ---------------------------------------------------------------- training
    def _build_training(self) -> None:
        """The Training dock, Model > Train (F5) and Stop, and the run's status."""
        from gui.training.dock import TrainingDock

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
        self.train_label = QLabel()
        self.train_label.setContentsMargins(8, 0, 8, 0)
        self.train_label.setVisible(False)
        self.statusBar().insertPermanentWidget(0, self.train_label)
        dock.status_text.connect(self._on_training_status)
        dock.state_changed.connect(self._on_training_state)
        self.validation.updated.connect(lambda: dock.update_model(self.validation.info))
        self.validation.tensorflow_ready.connect(dock.tensorflow_ready)

    def _on_training_state(self, state: str) -> None:
        self.act_train.setEnabled(state == "idle")
        self.act_stop.setEnabled(state not in ("idle", "stopping"))
        dock = self.training_dock
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
        self.validation.flush()
        QTimer.singleShot(0, self._fit_view)

    def _connect_scene(self) -> None:
        if getattr(self, "_scene_connected", None) is self.scene:
            return
        self.scene.selection_ids_changed.connect(self._on_selection)
        self.scene.status_message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.scene.node_activated.connect(self._on_node_activated)
        self._scene_connected = self.scene

    def _replace_project(self, project: Project, clean: bool = True) -> None:
        old_stack = self.undo_stack
        old_stack.events.changed.disconnect(self._on_stack_changed)
        old_stack.events.clean_changed.disconnect(self._on_clean_changed)
        stack = UndoStack(project)
        self._unsaved_restore = not clean  # restored/imported work: unsaved until saved
        self._attach(project, stack)
        if self.autosaver is not None:
            self.autosaver.save_now()

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
        self.act_undo.setEnabled(stack.can_undo)
        self.act_redo.setEnabled(stack.can_redo)
        self.act_undo.setText(f"&Undo {stack.undo_text}" if stack.can_undo else "&Undo")
        self.act_redo.setText(f"&Redo {stack.redo_text}" if stack.can_redo else "&Redo")
        self.setWindowModified(not self.is_clean())
        if self.autosaver is not None:
            self.autosaver.schedule()

    def _on_clean_changed(self, _clean: bool) -> None:
        self.setWindowModified(not self.is_clean())

    def _on_selection(self, ids: list[str]) -> None:
        self.inspector.show_nodes(list(ids))
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

    def _on_tensorflow_ready(self) -> None:
        self.tf_label.setVisible(False)

    def _on_analysis(self) -> None:
        ctrl = self.validation
        self.scene.set_analysis(ctrl.info, ctrl.problems)
        self.problems.set_problems(ctrl.problems)
        self.inspector.set_analysis(ctrl.info, ctrl.problems)
        errors, warnings = self.problems.counts()
        if errors or warnings:
            parts = [f"{errors} error{'s' * (errors != 1)}"] if errors else []
            parts += [f"{warnings} warning{'s' * (warnings != 1)}"] if warnings else []
            text = ", ".join(parts)
            color = theme.colors()["error" if errors else "warning"]
            self.problems_label.setText(f"<span style='color:{color}'>● {text}</span>")
            self.bottom_tabs.setTabText(0, f"Problems ({errors + warnings})")
        else:
            ok = "#16a34a"
            self.problems_label.setText(f"<span style='color:{ok}'>● No problems</span>")
            self.bottom_tabs.setTabText(0, "Problems")
        self._update_summary()

    def _update_summary(self) -> None:
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
                )
            )
        totals = self.validation.totals()
        if totals is None:
            note = (
                "Shapes and parameter counts appear when TensorFlow is ready."
                if not self.validation.ready
                else ""
            )
            self.summary.set_rows(rows, note)
            self.params_label.setText("")
        else:
            self.summary.set_rows(rows)
            self.summary.set_totals(*totals)
            mb = totals[0] * 4 / (1024 * 1024)
            partial = " so far" if self.problems.counts()[0] else ""
            self.params_label.setText(f"{totals[0]:,} params{partial} · {mb:.2f} MB")

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

    # ------------------------------------------------------------------ files
    def _ask_save(self) -> str:
        """Ask whether to save unsaved changes: ``"save"``, ``"discard"`` or ``"cancel"``."""
        buttons = (
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel
        )
        name = Path(self.project.path).name if self.project.path else self.project.name
        answer = QMessageBox.question(
            self,
            "Unsaved changes",
            f"Save the changes to '{name}' first?",
            buttons,
            QMessageBox.StandardButton.Save,
        )
        return {
            QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard",
        }.get(answer, "cancel")

    def _ask_restore(self, when: str, path: str | None) -> bool:
        """Ask whether to restore the work a crashed session left (True = restore)."""
        what = f"'{Path(path).name}'" if path else "an unsaved project"
        answer = QMessageBox.question(
            self,
            "Restore unsaved work?",
            f"LayerLab did not close properly last time. Restore the unsaved changes to "
            f"{what} from {when}?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _ask_open_path(self) -> str | None:
        start = str(self.project.path.parent) if self.project.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open project", start, FILE_FILTER)
        return path or None

    def _ask_save_path(self) -> str | None:
        start = str(self.project.path) if self.project.path else f"{self.project.name}.json"
        path, _ = QFileDialog.getSaveFileName(self, "Save project", start, FILE_FILTER)
        if path and not Path(path).suffix:
            path += ".json"
        return path or None

    def _warn(self, title: str, message: str) -> None:
        QMessageBox.warning(self, title, message)

    def _inform(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, title, message, parent=self)
        box.setStyleSheet("QLabel#qt_msgbox_label { min-width: 560px; }")  # long notes
        box.exec()

    def maybe_save(self) -> bool:
        """True when it is fine to drop the current project (saved, discarded, or clean)."""
        if self.is_clean():
            return True
        answer = self._ask_save()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def new_file(self) -> None:
        if self.maybe_save():
            self._replace_project(new_project())

    def new_from_preset(self, path: Path) -> None:
        if not self.maybe_save():
            return
        try:
            project = load_project(path)
        except ProjectError as exc:
            self._warn("Cannot open preset", str(exc))
            return
        project.path = None
        self._replace_project(project)

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        path = self._ask_open_path()
        if path:
            self.open_path(path, ask=False)

    def open_path(self, path: str | os.PathLike, ask: bool = True) -> bool:
        """Open a project file; on failure show the engine's message and keep the current one."""
        if ask and not self.maybe_save():
            return False
        try:
            project = load_project(path)
        except ProjectError as exc:
            self._warn("Cannot open project", str(exc))
            return False
        self._replace_project(project)
        self._add_recent(Path(path))
        return True

    def save(self) -> bool:
        if self.project.path is None:
            return self.save_as()
        return self._save_to(Path(self.project.path))

    def save_as(self) -> bool:
        path = self._ask_save_path()
        return self._save_to(Path(path)) if path else False

    def _save_to(self, path: Path) -> bool:
        try:
            if carry_weights(self.project, path) is not None:
                self.training_dock.training_panel.refresh()  # the file's new name
            save_project(self.project, path)
        except OSError as exc:
            self._warn("Cannot save project", f"{path}: {exc.strerror or exc}")
            return False
        self.undo_stack.set_clean()
        self._unsaved_restore = False
        self._update_title()
        self._add_recent(path)
        if self.autosaver is not None:
            self.autosaver.clear()
        self.statusBar().showMessage(f"Saved {path}", 4000)
        return True

    def import_keras(self) -> None:
        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Import Keras model", "", "Keras models (*.keras *.h5 *.json);;All files (*)"
        )
        if path:
            self.import_path(path)

    def import_path(self, path: str | os.PathLike) -> bool:
        """Open a Keras model as a new unsaved project; its weights are kept (see
        :mod:`engine.build.weights`) and the importer's notes are shown."""
        from engine.io.importer import (
            ModelImportError,
            UnreadableModelError,
            import_model_with_notes,
        )

        weights = imports_dir() / f"{Path(path).stem}-{uuid.uuid4().hex[:8]}.weights.h5"
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            project, notes = import_model_with_notes(path, weights_out=weights)
        except (ModelImportError, UnreadableModelError, ValueError, OSError) as exc:
            self._warn("Cannot import model", str(exc))  # the message names the file
            return False
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            self._warn(
                "Cannot import model", f"{path}: cannot be imported ({type(exc).__name__}: {first})"
            )
            return False
        finally:
            QApplication.restoreOverrideCursor()
        if project.extra.get("weights"):
            project.extra["weights"] = str(weights.resolve())  # copied beside it on save
        self._replace_project(project, clean=False)
        n = sum(1 for node in project.graph.nodes.values() if node.type != "Input")
        kept = "with its weights" if project.extra.get("weights") else "without weights"
        self.statusBar().showMessage(f"Imported {n} layers from {Path(path).name} {kept}", 8000)
        if notes:
            self._inform(
                f"Imported {Path(path).name}",
                f"Imported {n} layers from {Path(path).name} {kept}. Some settings "
                "are approximated:\n\n" + "\n".join(f"• {line}" for line in grouped_notes(notes)),
            )
        return True

    def export_model(self) -> ExportDialog:
        """File > Export: the export dialog on a copy of the project as it is now (an
        untrained build, or one starting from its imported weights); it works in the
        background, so editing goes on."""
        snapshot = Project.from_dict(self.project.to_dict(), path=self.project.path)
        dialog = ExportDialog(snapshot, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    # ---------------------------------------------------------- recent files
    def recent_files(self) -> list[str]:
        if not self.use_settings:
            return []
        value = settings().value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _add_recent(self, path: Path) -> None:
        if not self.use_settings:
            return
        path_text = str(Path(path).resolve())
        recent = [p for p in self.recent_files() if p != path_text]
        settings().setValue("recent", [path_text] + recent[: MAX_RECENT - 1])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_files()
        for path in recent:
            self.recent_menu.addAction(path, lambda p=path: self.open_path(p))
        if not recent:
            self.recent_menu.addAction("(no recent files)").setEnabled(False)

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

    def _save_settings(self) -> None:
        if not self.use_settings:
            return
        s = settings()
        s.setValue("geometry", self.saveGeometry())
        s.setValue("state", self.saveState())
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
        if self._check_recovery:
            self.offer_recovery()

    def offer_recovery(self) -> bool:
        """If a crashed session left unsaved work, ask to restore it. True if restored."""
        recovery = find_recovery(self.autosaver.folder if self.autosaver else None)
        if recovery is None:
            return False
        when = time.strftime("%H:%M on %d %b", time.localtime(recovery.saved_at))
        if not self._ask_restore(when, recovery.path):
            recovery.discard()
            return False
        source = recovery.path or "recovered project"
        try:
            project = Project.from_dict(recovery.project, source=str(source))
        except ProjectError as exc:
            self._warn("Cannot restore project", str(exc))
            recovery.discard()
            return False
        project.path = Path(recovery.path) if recovery.path else None
        self._replace_project(project, clean=False)
        recovery.discard()
        self.statusBar().showMessage("Restored unsaved work", 5000)
        return True

    def _autosave_state(self) -> tuple[Project | None, bool]:
        return self.project, self.is_clean()

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


class StartupProbe(QObject):
    """For bench/startup.py: when the window was shown, when shapes were ready, and the
    longest stall of the UI event loop while TensorFlow loaded in the background.

    Writes ``<shown time>`` then ``shapes <ready time> <longest stall s>`` lines to the
    file named by ``$LAYERLAB_STARTUP_PROBE`` (or prints them when it is ``1``).
    """

    def __init__(self, target: str, window: MainWindow) -> None:
        super().__init__(window)
        self.target = None if target in ("1", "-", "true") else Path(target)
        self._write(f"{time.time():.6f}", "LAYERLAB_WINDOW_SHOWN")
        self._last = time.perf_counter()
        self.longest = 0.0
        self._tick = QTimer(self)
        self._tick.setInterval(10)
        self._tick.timeout.connect(self._on_tick)
        self._tick.start()
        if window.validation.ready:
            self._on_ready()
        else:
            window.validation.tensorflow_ready.connect(self._on_ready)

    def _on_tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last)
        self._last = now

    def _on_ready(self) -> None:
        self._tick.stop()
        self._write(f"shapes {time.time():.6f} {self.longest:.4f}", "LAYERLAB_SHAPES_READY")

    def _write(self, line: str, label: str) -> None:
        print(f"{label} {line}", flush=True)
        if self.target is not None:
            with self.target.open("a", encoding="utf-8") as f:
                f.write(line + "\n")


def layer_guide_html() -> str:
    """Every catalog layer's doc, grouped by category."""
    parts = ["<h2>Layer guide</h2>"]
    order = list(CATEGORIES) + [s.category for s in CATALOG.values()]
    for category in dict.fromkeys(order):
        specs = [s for s in CATALOG.values() if s.category == category]
        if not specs:
            continue
        color = theme.category_color(category).name()
        parts.append(f"<h3 style='color:{color}'>{html.escape(category)}</h3><dl>")
        for spec in specs:
            params = ", ".join(p.name for p in spec.params)
            parts.append(
                f"<dt><b>{html.escape(spec.type)}</b></dt>"
                f"<dd>{html.escape(spec.doc)}"
                + (f"<br><small>Parameters: {html.escape(params)}</small>" if params else "")
                + "</dd>"
            )
        parts.append("</dl>")
    return "\n".join(parts)


class LayerGuide(QDialog):
    """Help > Layer guide: what every layer does, by category."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Layer guide — LayerLab")
        self.resize(640, 720)
        self.browser = QTextBrowser()
        self.browser.setHtml(layer_guide_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
