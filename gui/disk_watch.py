"""Watching the open project's file for changes made outside this window.

:class:`DiskWatch` wraps a :class:`QFileSystemWatcher` on one file. Saves replace a
file by renaming a new one over it (:mod:`engine.files`), which ends the watch of the
old inode, so the path is watched again after every change. Bursts of changes are
reported once, shortly after the last one. Whether the content really changed is
the window's question (:func:`engine.files.changed_on_disk` compares it with what was
last loaded or saved, so the window's own saves are not reported as outside changes).

:class:`ChangedBar` is the non-modal bar the window shows when the file changed while
it has unsaved edits: Reload (discarding them) or Keep mine.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

SETTLE_MS = 300  # a save is a burst of events (temp file, rename): report once


class DiskWatch(QObject):
    """Watches one file; ``changed`` fires (once per burst) when it changes on disk.

    Signals:
        changed(str): The watched path, after it changed, was replaced or deleted.
    """

    changed = Signal(str)

    def __init__(self, parent: QObject | None = None, settle_ms: int = SETTLE_MS) -> None:
        super().__init__(parent)
        self._watcher = QFileSystemWatcher(self)
        self._watcher.fileChanged.connect(self._on_event)
        self._path: str | None = None
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(settle_ms)
        self._settle.timeout.connect(self._report)

    @property
    def path(self) -> str | None:
        """The file being watched (None: nothing)."""
        return self._path

    def watch(self, path: str | os.PathLike | None) -> None:
        """Watch ``path`` instead of the file watched so far (None: stop watching)."""
        files = self._watcher.files()
        if files:
            self._watcher.removePaths(files)
        self._settle.stop()
        self._path = str(Path(path).absolute()) if path else None
        self._rewatch()

    def _rewatch(self) -> None:
        if self._path and self._path not in self._watcher.files() and os.path.exists(self._path):
            self._watcher.addPath(self._path)

    def _on_event(self, path: str) -> None:
        if path != self._path:
            return
        self._rewatch()  # an atomic rename replaced the inode the watch was on
        self._settle.start()

    def _report(self) -> None:
        self._rewatch()  # the new file may have appeared only after the event
        if self._path:
            self.changed.emit(self._path)


class ChangedBar(QWidget):
    """ "<file> changed on disk" with Reload and Keep mine; hidden until :meth:`show_for`.

    Signals:
        reload_requested(): Reload was pressed.
    """

    reload_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("changedOnDiskBar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(
            "#changedOnDiskBar { background: #fef3c7; border-bottom: 1px solid #f59e0b; }"
            "#changedOnDiskBar QLabel { color: #78350f; }"
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 10, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.reload_button = QPushButton("Reload (discard my edits)")
        self.keep_button = QPushButton("Keep mine")
        self.reload_button.clicked.connect(self._reload)
        self.keep_button.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.reload_button)
        layout.addWidget(self.keep_button)
        self.hide()

    def show_for(self, message: str, can_reload: bool = True) -> None:
        """Show ``message`` (what changed) and what Save will do about it."""
        advice = (
            "Reload to see it, or keep your edits (saving will ask before overwriting)."
            if can_reload
            else "Saving writes your version again."
        )
        self.label.setText(f"{message}. {advice}")
        self.reload_button.setVisible(can_reload)
        self.show()

    def _reload(self) -> None:
        self.hide()
        self.reload_requested.emit()
