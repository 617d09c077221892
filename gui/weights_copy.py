"""Save As of an imported project: its weights file copied off the UI thread.

:func:`engine.build.weights.carry_weights` copies an imported model's weights beside
the project being saved (hundreds of MB for a large network). On the UI thread that
froze the window for the whole copy; here it runs on a plain thread (file I/O and
h5py's check release the interpreter lock; no TensorFlow) while the window goes on
painting, its timers and training curves running; the user's input is held back until
the copy ends (no edit, second save or close can come between), and a progress dialog
says so once the copy takes longer than :data:`DIALOG_AFTER_MS`. The caller still gets the result (or the exception) back in order, so a
save goes on, or fails with one message, exactly as before::

    target = copy_weights(window, project, path)   # raises WeightsRefused / OSError
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QProgressDialog, QWidget

from engine.build.weights import carry_weights

DIALOG_AFTER_MS = 400
"""A copy that takes longer than this shows a progress dialog."""

POLL_MS = 20
"""How often the UI thread looks whether the copy has ended."""

_HELD = {
    QEvent.Type.MouseButtonPress,
    QEvent.Type.MouseButtonRelease,
    QEvent.Type.MouseButtonDblClick,
    QEvent.Type.Wheel,
    QEvent.Type.KeyPress,
    QEvent.Type.KeyRelease,
    QEvent.Type.ShortcutOverride,
    QEvent.Type.Shortcut,
    QEvent.Type.Close,
    QEvent.Type.Drop,
}


class _HoldInput(QObject):
    """Swallows the user's input (and window closes) while the copy runs."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        return event.type() in _HELD


def copy_weights(parent: QWidget, project: Any, path: str | Path) -> Path | None:
    """:func:`carry_weights` for ``project`` saved as ``path``, run on a thread while
    the UI thread goes on; returns (or raises) what it returns (raises). The project's
    ``"weights"`` key changes only here, on the UI thread, once the copy is complete."""
    # the thread works on a copy of what carry_weights reads and writes
    stand_in = SimpleNamespace(extra=dict(project.extra), base_dir=project.base_dir)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["target"] = carry_weights(stand_in, path)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    # not a daemon: quitting waits for the copy (an atomic write: never half a file)
    thread = threading.Thread(target=work, name="layerlab-copy-weights")
    thread.start()
    thread.join(POLL_MS / 1000)  # a small file: done before anything is shown
    if thread.is_alive():
        _wait(parent, thread, Path(path))
    if "error" in outcome:
        raise outcome["error"]
    target = outcome["target"]
    if target is not None:
        project.extra["weights"] = stand_in.extra["weights"]
    return target


def _wait(parent: QWidget, thread: threading.Thread, path: Path) -> None:
    """Run the event loop until ``thread`` ends; a dialog says so after a moment."""
    progress = QProgressDialog(f"Copying the weights beside {path.name}\u2026", "", 0, 0, parent)
    progress.setWindowTitle("Saving")
    progress.setCancelButton(None)  # half a copy is no use; it ends by itself
    progress.setWindowModality(Qt.WindowModality.WindowModal)
    progress.setMinimumDuration(DIALOG_AFTER_MS)
    progress.setAutoClose(False)
    progress.setAutoReset(False)
    hold = _HoldInput()
    app = QApplication.instance()
    app.installEventFilter(hold)
    loop = QEventLoop()
    check = QTimer()
    check.setInterval(POLL_MS)
    check.timeout.connect(lambda: thread.is_alive() or loop.quit())
    check.start()
    shown = QTimer()
    shown.setSingleShot(True)
    shown.timeout.connect(progress.show)
    shown.start(DIALOG_AFTER_MS)
    try:
        loop.exec()
    finally:
        app.removeEventFilter(hold)
    check.stop()
    shown.stop()
    progress.hide()
    progress.deleteLater()
    thread.join()
