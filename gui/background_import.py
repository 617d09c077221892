"""File > Import off the window's process: reading and converting a Keras model in a
child process.

An import reads a user's file (a ``.keras`` zip that may inflate to gigabytes, a slow
network drive, a FIFO) and loads TensorFlow: on the UI thread it froze the window, and
on a thread of the window it held the interpreter lock and left TensorFlow loaded
there. :class:`ImportJob` runs
:func:`engine.io.importing.rebuild.import_model_with_notes` in a process of its own
(:class:`gui.engine_service.EngineJob`, ``kind="import"``) and reports back on the UI
thread. Cancel kills that process at once and removes the weights file it was writing.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from gui.engine_service import EngineJob


class ImportJob(QObject):
    """One import of ``path`` (weights written to ``weights``) in a child process.

    Signals:
        arrived(object): ``(project, notes, grouped_notes)`` (UI thread), unless cancelled.
        failed(object): The exception the import raised (UI thread), unless cancelled.
        progress(str): What the import is doing ("Loading TensorFlow and converting…").
        finished(bool): Always last: True when the import arrived and was not cancelled.
    """

    arrived = Signal(object)
    failed = Signal(object)
    progress = Signal(str)
    finished = Signal(bool)

    local: bool | None = None
    """Run in this process (see :class:`engine.service.jobs.Job`); None: only when Keras
    is loaded here already."""

    def __init__(
        self, path: str | os.PathLike, weights: Path, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.weights = weights
        self.cancelled = False
        self.done = False
        self._job = EngineJob(
            "import", {"path": str(self.path), "weights": str(weights)}, local=self.local
        )
        self._job.progress.connect(self.progress)
        self._job.done.connect(self._on_done)
        self._job.failed.connect(self._on_failed)

    @property
    def pid(self) -> int | None:
        """The import's process id (None when it runs in this process)."""
        return self._job.job.pid

    def start(self) -> ImportJob:
        self._job.start()
        return self

    def cancel(self) -> None:
        """Stop the import now (its process is killed) and drop what it wrote."""
        if self.done or self.cancelled:
            return
        self.cancelled = True
        self.done = True
        job, weights = self._job, self.weights
        job.cancel()

        def clean() -> None:  # once the process (or a local thread) has let go of it
            job.wait(60)
            weights.unlink(missing_ok=True)

        threading.Thread(target=clean, name="layerlab-import-cancel", daemon=True).start()
        self.finished.emit(False)

    def _on_done(self, result: Any) -> None:
        self.done = True
        self.arrived.emit(result)
        self.finished.emit(True)

    def _on_failed(self, exc: Any) -> None:
        self.done = True
        self.failed.emit(exc)
        self.finished.emit(False)
