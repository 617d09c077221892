"""File > Import off the UI thread: reading and converting a Keras model in the background.

An import reads a user's file (a ``.keras`` zip that may inflate to gigabytes, a slow
network drive, a FIFO) and loads TensorFlow: on the UI thread it froze the window.
:class:`ImportJob` runs :func:`engine.io.importing.rebuild.import_model_with_notes` on
its own thread (one per import, so a slow import never holds up the data previews of
:class:`gui.training.background.BackgroundJob`, whose threads are shared) and reports
back on the UI thread. Cancel cannot stop the reading thread, so it discards the result
when it arrives, and with it the weights file the import wrote.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine.io.importing.rebuild import import_model_with_notes


class ImportJob(QObject):
    """One import of ``path`` (weights written to ``weights``) on a background thread.

    Signals:
        arrived(object): ``(project, notes)`` (UI thread), unless cancelled.
        failed(object): The exception the import raised (UI thread), unless cancelled.
        finished(bool): Always last: True when the import arrived and was not cancelled.
    """

    arrived = Signal(object)
    failed = Signal(object)
    finished = Signal(bool)
    _relay = Signal(bool, object)

    def __init__(
        self, path: str | os.PathLike, weights: Path, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.weights = weights
        self.cancelled = False
        self.done = False
        self._relay.connect(self._on_relay)
        self._thread = threading.Thread(
            target=self._run, name=f"layerlab-import-{self.path.name}", daemon=True
        )

    def start(self) -> ImportJob:
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Discard the result when it arrives (the reading itself cannot be interrupted)."""
        if self.done or self.cancelled:
            return
        self.cancelled = True
        self.done = True
        self.finished.emit(False)

    def _run(self) -> None:
        try:
            result: Any = import_model_with_notes(self.path, weights_out=self.weights)
            ok = True
        except Exception as exc:  # MemoryError included; worded by the window
            result, ok = exc, False
        if self.cancelled:  # nobody waits for it, maybe not even the window
            self.weights.unlink(missing_ok=True)
            return
        try:
            self._relay.emit(ok, result)
        except RuntimeError:  # the window is gone
            pass

    def _on_relay(self, ok: bool, result: Any) -> None:
        if self.cancelled:
            self.weights.unlink(missing_ok=True)  # nobody will use it
            self.deleteLater()
            return
        self.done = True
        if ok:
            self.arrived.emit(result)
        else:
            self.failed.emit(result)
        self.finished.emit(ok)
