"""File handling of the main window: new, open, save, import, export, recent files,
crash recovery, and the presets and settings they use.

:class:`FileActions` is a mixin of :class:`gui.main_window.MainWindow`: its methods use
the window's ``project``, ``undo_stack``, ``autosaver``, ``training_dock``,
``use_settings``, ``_replace_project``, ``_update_title``, ``is_clean`` and status bar.
The questions it asks (save changes?, restore recovery?, which file?, the file changed
on disk: overwrite?) and its warnings are small methods (``_ask_save``, ``_ask_restore``,
``_ask_open_path``, ``_ask_save_path``, ``_ask_changed_on_disk``, ``_warn``, ``_inform``)
so tests can replace them.

Saves lose nothing and leak nothing: before writing over the open file, Save compares
it with what was loaded or saved (:func:`engine.files.changed_on_disk`) and asks when
another window or tool changed it; a project naming a file that is not a weights file
LayerLab wrote is saved without copying that file (:class:`WeightsRefused`); a weights
copy that fails (a full disk) names the weights file and saves nothing; the copy runs
off the UI thread (:func:`gui.weights_copy.copy_weights`). Import reads
the model on a background thread (:class:`gui.background_import.ImportJob`).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QProgressDialog

from engine.build.weights import WeightsRefused
from engine.files import changed_on_disk, clean_stale_temps
from engine.io.importing.read import ModelImportError, UnreadableModelError
from engine.model.problems import resolve_weights
from engine.model.project import Project, ProjectError, load_project, new_project
from engine.train.history import list_runs
from gui.autosave import find_recovery, imports_dir, recovery_dir
from gui.background_import import ImportJob
from gui.new_pretrained import NewPretrainedDialog, create_from_dialog
from gui.paths import project_runs_root, save_project_as
from gui.training.export_dialog import UNTRAINED, ExportChoice, ExportDialog
from gui.weights_copy import copy_weights
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


def restore_question(when: str, path: str | None, name: Any) -> str:
    """The crash-recovery question, naming the project it restores (file and name)."""
    name = str(name).strip() if isinstance(name, str) and name.strip() else None
    if path:
        what = f"'{Path(path).name}'" + (f" (project \u201c{name}\u201d)" if name else "")
        where = f"\n\nIts file: {path}"
    else:
        what = f"the unsaved project \u201c{name}\u201d" if name else "an unsaved project"
        where = ""
    return (
        f"LayerLab did not close properly last time. Restore the unsaved changes to "
        f"{what} from {when}?{where}"
    )


def clean_folders(folders: Iterable[Path | None]) -> list[Path]:
    """Remove stale temporary files (:func:`engine.files.clean_stale_temps`) from each
    existing folder; returns what was removed. Never raises."""
    removed: list[Path] = []
    for folder in folders:
        try:
            if folder is not None and Path(folder).is_dir():
                removed += clean_stale_temps(folder)
        except OSError:
            continue  # best effort: a folder we cannot list keeps its files
    return removed


def _weights_target(path: Path) -> Path:
    """Where :func:`engine.build.weights.carry_weights` copies weights for a save as ``path``."""
    return path.resolve().parent / (path.stem + ".weights.h5")


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

    def _ask_restore(self, question: str) -> bool:
        """Ask ``question`` (:func:`restore_question`): restore the work a crashed
        session left? (True = restore)."""
        answer = QMessageBox.question(
            self,
            "Restore unsaved work?",
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _ask_changed_on_disk(self, message: str) -> str:
        """The open file changed on disk since it was opened or saved (``message`` says
        how): ``"reload"``, ``"overwrite"``, ``"save_as"`` or ``"cancel"``."""
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "File changed on disk",
            f"{message}.\n\nSaving now would overwrite that version with yours.",
            parent=self,
        )
        role = QMessageBox.ButtonRole
        answers = {
            box.addButton("Reload (discard my edits)", role.DestructiveRole): "reload",
            box.addButton("Overwrite", role.AcceptRole): "overwrite",
            box.addButton("Save Elsewhere\u2026", role.ActionRole): "save_as",
        }
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.exec()
        return answers.get(box.clickedButton(), "cancel")

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
        for node in project.graph.nodes.values():  # a weights file next to the preset
            weights = node.params.get("weights") if node.type == "Backbone" else None
            if isinstance(weights, str) and weights not in ("", "imagenet"):
                node.params["weights"] = str(resolve_weights(weights, path.parent))
        self._replace_project(project)

    def new_from_pretrained(self) -> None:
        """File > New from Pretrained…: a transfer-learning project (gui/new_pretrained.py)."""
        if self.maybe_save():
            create_from_dialog(self, NewPretrainedDialog(self))

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        path = self._ask_open_path()
        if path:
            self.open_path(path, ask=False)

    def open_path(self, path: str | os.PathLike, ask: bool = True) -> bool:
        """Open a project file; on failure show the engine's message and keep the current one
        (a FIFO or a device is refused by the engine: it never blocks the window)."""
        if ask and not self.maybe_save():
            return False
        try:
            project = load_project(path)
        except ProjectError as exc:
            self._warn("Cannot open project", str(exc))
            return False
        self._replace_project(project)
        self._add_recent(Path(path))
        self.clean_stale_temps_later([project.base_dir])
        return True

    def save(self) -> bool:
        if self.project.path is None:
            return self.save_as()
        return self._save_to(Path(self.project.path))

    def save_as(self) -> bool:
        path = self._ask_save_path()
        return self._save_to(Path(path)) if path else False

    def _disk_change(self) -> str | None:
        """How the open file changed on disk since it was loaded or saved, or None."""
        path = self.project.path
        if path is None or getattr(self.project, "disk_state", None) is None:
            return None
        return changed_on_disk(self.project)

    def _is_open_file(self, path: Path) -> bool:
        if self.project.path is None:
            return False
        return os.path.abspath(self.project.path) == os.path.abspath(path)

    def _save_to(self, path: Path) -> bool:
        if self._is_open_file(path) and os.path.isfile(path):
            changed = self._disk_change()
            if changed:  # another window or tool saved it: never overwrite silently
                answer = self._ask_changed_on_disk(changed)
                if answer == "reload":
                    self.reload_from_disk()
                    return False
                if answer == "save_as":
                    return self.save_as()
                if answer != "overwrite":
                    return False
        target = _weights_target(path)
        target_existed = target.exists()
        refused: WeightsRefused | None = None
        try:
            if copy_weights(self, self.project, path) is not None:
                self.training_dock.training_panel.refresh()  # the file's new name
        except WeightsRefused as exc:
            refused = exc  # nothing copied; the project itself still saves
        except OSError as exc:
            self._warn("Cannot save project", self._weights_failure(exc, target, target_existed))
            return False
        first_save = self.project.path is None
        try:
            save_project_as(self.project, path)  # names an Untitled project; moves its runs
        except OSError as exc:
            self._warn("Cannot save project", f"{path}: {exc.strerror or exc}")
            return False
        if first_save:  # its runs now live next to the file
            self.training_dock.set_project(self.project, self.undo_stack)
        self.undo_stack.set_clean()
        self._unsaved_restore = False
        self._update_title()
        self._add_recent(path)
        if self.autosaver is not None:
            self.autosaver.clear()
        self._watch_open_file()
        if refused is None:
            self.statusBar().showMessage(f"Saved {path}", 4000)
        else:
            self._weights_not_copied(path, refused)
        return True

    def _weights_not_copied(self, path: Path, refused: WeightsRefused) -> None:
        """Say (once per file and window; then in the status bar) that ``path`` was saved
        without the file its ``"weights"`` key names. The key stays as it was: it is the
        project's own data (a file Keras wrote, elsewhere, still works for training)."""
        seen = self.__dict__.setdefault("_refused_weights", set())
        if refused.filename in seen:
            self.statusBar().showMessage(
                f"Saved {path} (without copying {refused.filename}: not LayerLab's weights)",
                8000,
            )
            return
        seen.add(refused.filename)
        self.statusBar().showMessage(f"Saved {path} without its weights file", 8000)
        self._warn(
            "Saved without the weights file",
            f'{path} was saved, but the file its "weights" key names was not copied '
            f"beside it.\n\n{refused}.",
        )

    @staticmethod
    def _weights_failure(exc: OSError, target: Path, existed: bool) -> str:
        """A failed weights copy in words: the weights file (not the project) and why."""
        reason = exc.strerror or str(exc)
        if exc.filename and os.path.abspath(exc.filename) not in (
            str(target),
            os.path.realpath(target),
        ):
            return (
                f"{exc.filename}: the project's weights cannot be read ({reason}). "
                "Nothing was saved."
            )
        kept = f"; the existing {target.name} is unchanged" if existed else ""
        return (
            f"{target}: the project's weights could not be copied there ({reason}). "
            f"Nothing was saved{kept}."
        )

    def reload_from_disk(self, quiet: bool = False) -> bool:
        """Replace the open project by its file as it is on disk now (edits are discarded).
        A file that cannot be read is said in a message (``quiet``: not; False returned)."""
        path = self.project.path
        if path is None:
            return False
        try:
            project = load_project(path)
        except ProjectError as exc:
            if not quiet:
                self._warn("Cannot reload project", str(exc))
            return False
        self._replace_project(project)
        self.statusBar().showMessage(f"Reloaded {path} as it is on disk", 6000)
        return True

    def _watch_open_file(self) -> None:
        watch = getattr(self, "disk_watch", None)
        if watch is not None:
            watch.watch(self.project.path)
        bar = getattr(self, "changed_bar", None)
        if bar is not None:
            bar.hide()

    def _on_file_changed(self, path: str) -> None:
        """The watched file changed outside this window: reload it quietly when there is
        nothing unsaved, else offer to (the bar; Save asks again before overwriting)."""
        if not self._is_open_file(Path(path)):
            return
        changed = self._disk_change()
        if changed is None:
            self.changed_bar.hide()  # our own save, or the same bytes written again
            return
        exists = os.path.isfile(path)
        if exists and self.is_clean() and self.reload_from_disk(quiet=True):
            self.statusBar().showMessage(
                f"{Path(path).name} changed on disk and was reloaded (you had no unsaved edits)",
                8000,
            )
            return
        self.changed_bar.show_for(changed, can_reload=exists)

    def clean_stale_temps_later(self, folders: Iterable[Path | None]) -> threading.Thread:
        """Remove stale temporary files from ``folders`` on a background thread (a folder
        may be on a slow drive); files being written right now are left alone."""
        thread = threading.Thread(
            target=clean_folders, args=(list(folders),), name="layerlab-clean", daemon=True
        )
        thread.start()
        return thread

    def clean_stale_temps_at_start(self) -> threading.Thread:
        """Start-up: clean the recovery and imports folders and the open project's."""
        recovery = self.autosaver.folder if self.autosaver is not None else recovery_dir()
        return self.clean_stale_temps_later([recovery, imports_dir(), self.project.base_dir])

    def import_keras(self) -> None:
        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Import Keras model", "", "Keras models (*.keras *.h5 *.json);;All files (*)"
        )
        if path:
            self.import_path(path)

    def import_path(self, path: str | os.PathLike) -> ImportJob:
        """Open a Keras model as a new unsaved project; its weights are kept (see
        :mod:`engine.build.weights`) and the importer's notes are shown.

        The model is read and converted in a child process (TensorFlow never loads in
        the window) while a progress dialog (window-modal: no edits meanwhile, but the
        window stays responsive) says what it is doing and offers Cancel, which ends
        that process at once. Returns the running job (its ``finished(bool)`` signal
        says whether the project was replaced)."""
        weights = imports_dir() / f"{Path(path).stem}-{uuid.uuid4().hex[:8]}.weights.h5"
        job = ImportJob(path, weights, self)
        progress = QProgressDialog(f"Importing {Path(path).name}\u2026", "Cancel", 0, 0, self)
        progress.setWindowTitle("Import Keras model")
        progress.setMinimumWidth(420)  # room for a long file name
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(0)
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        progress.canceled.connect(job.cancel)
        label = progress.labelText()
        job.progress.connect(lambda text: progress.setLabelText(f"{label}\n{text}"))
        self.import_progress = progress
        self.import_job = job

        open_ = [True]

        def close_progress(*_: Any) -> None:  # before any message the result brings
            if open_.pop() if open_ else False:
                progress.canceled.disconnect(job.cancel)
                progress.hide()
                progress.deleteLater()

        def finished(ok: bool) -> None:
            close_progress()
            if job.cancelled:
                self.statusBar().showMessage(f"Import of {Path(path).name} cancelled", 5000)
            if self.import_job is job:
                self.import_job = self.import_progress = None
            if not job.cancelled:
                job.deleteLater()  # a cancelled job goes when its result arrives

        job.arrived.connect(close_progress)
        job.failed.connect(close_progress)
        job.arrived.connect(lambda result: self._import_arrived(job, *result))
        job.failed.connect(lambda exc: self._import_failed(job, exc))
        job.finished.connect(finished)
        progress.show()
        return job.start()

    def _import_failed(self, job: ImportJob, exc: BaseException) -> None:
        job.weights.unlink(missing_ok=True)
        path = job.path
        if isinstance(exc, (ModelImportError, UnreadableModelError, ValueError, OSError)):
            self._warn("Cannot import model", str(exc))  # the message names the file
            return
        if isinstance(exc, MemoryError):
            self._warn("Cannot import model", f"{path}: too large to import in memory")
            return
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        kind = getattr(exc, "type_name", type(exc).__name__)  # a JobError keeps the name
        self._warn("Cannot import model", f"{path}: cannot be imported ({kind}: {first})")

    def _import_arrived(
        self, job: ImportJob, project: Project, notes: list[str], grouped: list[str]
    ) -> None:
        path, weights = job.path, job.weights
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
                "are approximated:\n\n" + "\n".join(f"• {line}" for line in grouped),
            )

    def _ask_export_source(self, runs: list[Any]) -> str | None:
        """Which model File > Export exports: a run folder, :data:`UNTRAINED`, or None
        (cancelled). ``runs`` are the project's runs, newest first (tests replace this)."""
        dialog = ExportChoice(runs, self)
        if dialog.exec() != ExportChoice.DialogCode.Accepted:
            return None
        return dialog.choice()

    def export_model(self) -> ExportDialog | None:
        """File > Export: when the project has runs with a trained model, ask which to
        export (the latest finished one is selected) or the untrained project; then the
        export dialog. It works in the background, so editing goes on."""
        runs = list_runs(project_runs_root(self.project))  # numbered as in the Runs tab
        source: Any = UNTRAINED
        if any(run.has_model for run in runs):
            source = self._ask_export_source(runs)
            if source is None:
                return None
        if source == UNTRAINED:
            # a copy of the project as it is now (untrained, or from its imported weights)
            source = Project.from_dict(self.project.to_dict(), path=self.project.path)
        dialog = ExportDialog(source, self)
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
        question = restore_question(when, recovery.path, recovery.project.get("name"))
        if not self._ask_restore(question):
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
