"""Small jobs off the UI thread (loading a data preview, computing a schedule plot).

A :class:`BackgroundJob` runs a function on a shared worker thread and reports
the result back on the UI thread. Only the latest submission counts: results of
earlier ones that finish later are dropped, so fast edits never show stale data.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal

_EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="layerlab-background")


class BackgroundJob(QObject):
    """Runs one function at a time in the background; the newest result wins.

    Signals:
        done(object): the function's return value (UI thread).
        failed(object): the exception it raised (UI thread).
    """

    done = Signal(object)
    failed = Signal(object)
    _arrived = Signal(int, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._generation = 0
        self._pending = 0
        self._arrived.connect(self._on_arrived)

    @property
    def busy(self) -> bool:
        """True while the newest submission has not reported yet."""
        return self._pending > 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on a worker thread; earlier submissions stop counting."""
        self._generation += 1
        self._pending = 1
        generation = self._generation
        future = _EXECUTOR.submit(fn, *args)
        future.add_done_callback(lambda f: self._relay(generation, f))

    def _relay(self, generation: int, future: Future) -> None:
        try:
            self._arrived.emit(generation, future)
        except RuntimeError:  # the receiving widget is gone
            pass

    def _on_arrived(self, generation: int, future: Future) -> None:
        if generation != self._generation:
            return
        self._pending = 0
        exc = future.exception()
        if exc is not None:
            self.failed.emit(exc)
        else:
            self.done.emit(future.result())
