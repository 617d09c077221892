"""File handling of the main window: new, open, save, import, export, recent files,
crash recovery, and the presets and settings they use.

:class:`FileActions` is a mixin of :class:`gui.main_window.MainWindow`: its methods use
the window's ``project``, ``undo_stack``, ``autosaver``, ``training_dock``,
``use_settings``, ``_replace_project``, ``_update_title``, ``is_clean`` and status bar.
The questions it asks (save changes?, restore recovery?, which file?) and its warnings
are small methods (``_ask_save``, ``_ask_restore``, ``_ask_open_path``,
``_ask_save_path``, ``_warn``, ``_inform``) so tests can replace them.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from engine.build.weights import carry_weights
from engine.io.importing.read import ModelImportError, UnreadableModelError
from engine.io.importing.rebuild import grouped_notes, import_model_with_notes
from engine.model.project import Project, ProjectError, load_project, new_project, save_project
from gui.autosave import find_recovery, imports_dir
from gui.training.export_dialog import ExportDialog
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


class FileActions:
    """New/open/save/import/export, recent files and recovery, for the main window."""

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
