"""Crash recovery: the open project is written to a recovery file while it has
unsaved changes, every 60 s and shortly after each edit; a clean exit deletes
it, and the next start offers to restore what a crash left behind.

Recovery files live in ``<AppDataLocation>/recovery/`` (or ``$LAYERLAB_RECOVERY_DIR``),
one per running app (``recovery-<pid>.json``), holding
``{"saved_at", "pid", "path", "project"}`` where ``project`` is the project dict
and ``path`` the file it came from (or null). They are written through
:func:`engine.files.atomic_path` (mode 0600): a failed write (a full disk) leaves the previous
recovery file and no temporary file; temporary files of killed writers are removed at
start-up (:func:`gui.file_actions.clean_folders`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer

from engine.files import atomic_path
from engine.model.project import Project
from gui.paths import app_data_dir

PERIOD_MS = 60_000
AFTER_EDIT_MS = 2_000


def recovery_dir() -> Path:
    """Where recovery files go (``$LAYERLAB_RECOVERY_DIR`` overrides, for tests)."""
    override = os.environ.get("LAYERLAB_RECOVERY_DIR")
    if override:
        return Path(override)
    return app_data_dir() / "recovery"


def imports_dir() -> Path:
    """Where File > Import keeps a model's weights until the project is saved."""
    return recovery_dir().parent / "imports"


@dataclass
class Recovery:
    """A recovery file left by a session that did not exit cleanly."""

    file: Path
    saved_at: float
    path: str | None
    project: dict[str, Any]

    def discard(self) -> None:
        self.file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def find_recovery(folder: Path | None = None) -> Recovery | None:
    """The newest recovery file whose app is no longer running, or None.

    Unreadable recovery files are removed (they cannot be restored anyway).
    """
    folder = folder or recovery_dir()
    best: Recovery | None = None
    for file in sorted(folder.glob("recovery-*.json")):
        try:
            d = json.loads(file.read_text(encoding="utf-8"))
            pid, saved_at = int(d.get("pid", 0)), float(d["saved_at"])
            project = d["project"]
            if not isinstance(project, dict):
                raise ValueError("no project")
        except (OSError, ValueError, KeyError, TypeError):
            file.unlink(missing_ok=True)
            continue
        if pid and _alive(pid):
            continue  # another LayerLab window is still working on it
        if best is None or saved_at > best.saved_at:
            best = Recovery(file, saved_at, d.get("path"), project)
    return best


class Autosaver(QObject):
    """Writes the recovery file for one window.

    Args:
        current: Returns ``(project, is_clean)`` for the window's open project.
        folder: Recovery folder (default :func:`recovery_dir`).
    """

    def __init__(
        self,
        current: Callable[[], tuple[Project | None, bool]],
        parent: QObject | None = None,
        folder: Path | None = None,
        period_ms: int = PERIOD_MS,
        after_edit_ms: int = AFTER_EDIT_MS,
    ) -> None:
        super().__init__(parent)
        self._current = current
        self.folder = folder or recovery_dir()
        self.file = self.folder / f"recovery-{os.getpid()}.json"
        self._periodic = QTimer(self)
        self._periodic.setInterval(period_ms)
        self._periodic.timeout.connect(self.save_now)
        self._periodic.start()
        self._soon = QTimer(self)
        self._soon.setSingleShot(True)
        self._soon.setInterval(after_edit_ms)
        self._soon.timeout.connect(self.save_now)

    def schedule(self) -> None:
        """Save shortly (after an edit); restarts the short timer."""
        self._soon.start()

    def save_now(self) -> bool:
        """Write (or, with nothing unsaved, delete) the recovery file. True if written."""
        self._soon.stop()
        project, clean = self._current()
        if project is None or clean:
            self.clear()
            return False
        payload = {
            "saved_at": time.time(),
            "pid": os.getpid(),
            "path": str(project.path) if project.path else None,
            "project": project.to_dict(),
        }
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            data = json.dumps(payload).encode("utf-8")
            with atomic_path(self.file, mode=0o600) as tmp:  # private, as the work is
                tmp.write_bytes(data)
        except OSError:
            return False  # recovery is best effort; never bother the user mid-edit
        return True

    def clear(self) -> None:
        """Delete this window's recovery file (clean exit, save, or nothing unsaved)."""
        self._soon.stop()
        self.file.unlink(missing_ok=True)

    def stop(self) -> None:
        self._periodic.stop()
        self._soon.stop()
