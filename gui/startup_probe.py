"""A probe for bench/startup.py: when the window was shown and when shapes were ready.

Shapes come from the engine service (a child process, :mod:`gui.engine_service`), so
the window's event loop only waits for its own work meanwhile."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer


class StartupProbe(QObject):
    """For bench/startup.py: when the window was shown, when shapes were ready, and the
    longest stall of the UI event loop from the first painted frame until shapes were
    shown (the engine service loads TensorFlow meanwhile, in its own process).

    Writes ``<shown time>`` then ``shapes <ready time> <longest stall s> <first paint s>``
    lines to the file named by ``$LAYERLAB_STARTUP_PROBE`` (or prints them when it is
    ``1``). With ``$LAYERLAB_STARTUP_PROBE_AFTER`` seconds, the stalls go on being
    measured that long after the shapes (the window's idle work: the data check, the
    warm worker's start), then ``after <longest stall s>``.
    """

    def __init__(self, target: str, window: Any) -> None:
        super().__init__(window)
        self.target = None if target in ("1", "-", "true") else Path(target)
        # "shown" is when the first frame has been painted: Qt's first pass (polishing,
        # PySide's enums created on first use, the paint; 0.2-0.8 s here) runs before
        # the window is on screen at all, so stalls count from the pass after it
        self._window = window
        self._created = time.perf_counter()
        self.first_paint = 0.0
        self.longest = 0.0
        self._tick = QTimer(self)
        self._tick.setInterval(10)
        self._tick.timeout.connect(self._on_tick)
        QTimer.singleShot(0, self._begin)

    def _begin(self) -> None:
        self._last = time.perf_counter()
        self.first_paint = self._last - self._created
        self._write(f"{time.time():.6f}", "LAYERLAB_WINDOW_SHOWN")
        self._tick.start()
        if self._window.validation.ready:
            self._on_ready()
        else:
            self._window.validation.tensorflow_ready.connect(self._on_ready)

    def _on_tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last)
        self._last = now

    def _on_ready(self) -> None:
        self._write(
            f"shapes {time.time():.6f} {self.longest:.4f} {self.first_paint:.4f}",
            "LAYERLAB_SHAPES_READY",
        )
        after = float(os.environ.get("LAYERLAB_STARTUP_PROBE_AFTER") or 0)
        if after <= 0:
            self._tick.stop()
            return
        self.longest = 0.0
        QTimer.singleShot(int(after * 1000), self._on_after)

    def _on_after(self) -> None:
        self._tick.stop()
        self._write(f"after {self.longest:.4f}", "LAYERLAB_AFTER_SHAPES")

    def _write(self, line: str, label: str) -> None:
        print(f"{label} {line}", flush=True)
        if self.target is not None:
            with self.target.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
