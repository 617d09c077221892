"""The decision boundary live during training (issue 19), like TensorFlow Playground.

For a model whose input is two features (the playground presets: ``builtin:moons``,
``circles``, ``spirals``, ``xor``, or any two-column table), :func:`boundary_callback`
predicts the model's class on a :data:`GRID` x :data:`GRID` field over the training
points' range (10 % margin, in the standardised plane the model sees) and sends it
as a small ``boundary`` event:

``{"event": "boundary", "epoch": n (1-based), "step": batches into it or None at
its end, "grid": GRID, "x": [lo, hi], "y": [lo, hi], "classes": base64 of GRID*GRID
uint8 class indices (row = second feature, ascending), "confidence": base64 of
GRID*GRID uint8 (255 * the top probability), "points": [[x, y], ...] and "labels":
[...]`` (at most :data:`MAX_POINTS` training points; in the first event only)}``.

One field is one forward pass over 2,304 points (~2-4 ms for the playground
models here). It is sent at every epoch's end and, for runs of few long epochs,
every :data:`MIN_INTERVAL` seconds within one, while the time spent stays within
:data:`MAX_SHARE` of the training time (the last epoch is always sent). The events
are not written to ``events.jsonl`` (like ``batch`` ones). TensorFlow loads inside
:func:`boundary_callback` only.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import numpy as np

from engine.train.config import Emit

GRID = 48
MAX_POINTS = 400
MAX_SHARE = 0.05
"""Most of the training time the boundary may take."""
MIN_INTERVAL = 0.25
"""Seconds between two fields sent within one epoch."""


def plane(x: np.ndarray, grid: int = GRID) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xs, ys, points)``: the field's axes over ``x``'s range with a 10 % margin and
    its ``grid * grid`` points (row-major, row = second feature ascending)."""
    x = np.asarray(x, dtype=np.float32)
    lo, hi = x.min(0), x.max(0)
    pad = np.maximum((hi - lo) * 0.1, 1e-3)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid, dtype=np.float32)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, np.stack([gx.ravel(), gy.ravel()], 1)


def classes_of(pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predictions ``(n, k)`` -> (class indices, top probability); one unit is a
    sigmoid (logits squashed first)."""
    pred = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    if pred.shape[1] == 1:
        p = pred[:, 0]
        if p.min() < 0 or p.max() > 1:
            p = 1 / (1 + np.exp(-p))
        return (p > 0.5).astype(int), np.maximum(p, 1 - p)
    return pred.argmax(1), pred.max(1)


def encode(a: np.ndarray) -> str:
    """A uint8 array as base64 text (what a ``boundary`` event carries)."""
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode("ascii")


def decode(text: str, grid: int) -> np.ndarray:
    """:func:`encode`'s text -> a (grid, grid) uint8 array."""
    return np.frombuffer(base64.b64decode(text), np.uint8).reshape(grid, grid)


def boundary_callback(
    emit: Emit, x: np.ndarray, y: np.ndarray, done_before: int = 0, grid: int = GRID
) -> Any | None:
    """The Keras callback that sends ``boundary`` events, or None when ``x`` (training
    inputs, standardised) is not two features or the task is not classification
    (``y``: class indices or one-hot)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != 2 or not len(x):
        return None
    y = np.asarray(y)
    labels = y.argmax(-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y))
    if not np.issubdtype(labels.dtype, np.integer):
        return None
    import keras

    xs, ys, points = plane(x, grid)
    shown = np.linspace(0, len(x) - 1, min(len(x), MAX_POINTS)).astype(int)
    head = {
        "points": x[shown].round(4).tolist(),
        "labels": labels[shown].astype(int).tolist(),
    }

    class BoundaryProbe(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.spent = 0.0
            self.started = time.monotonic()
            self.last = 0.0
            self.epoch = done_before
            self.sent_last = -1
            self.first = True
            self.sends = 0
            self.off = False

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch = epoch

        def due(self) -> bool:
            """Whether the next batch end would send a field (a cluster chief copies
            the weights into its replica only then)."""
            now = time.monotonic()
            return now - self.last >= MIN_INTERVAL and self._affordable(now)

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if self.due():
                self._send(batch + 1)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self._affordable(time.monotonic()):
                self._send(None)

        def on_train_end(self, logs: dict | None = None) -> None:
            if not self.off and self.sent_last != self.epoch:
                self._send(None)

        def _affordable(self, now: float) -> bool:
            if self.off:
                return False
            cost = self.spent / self.sends if self.sends else 0.0
            return self.first or self.spent + cost <= MAX_SHARE * (now - self.started)

        def _send(self, step: int | None) -> None:
            start = time.monotonic()
            try:
                classes, confidence = classes_of(np.asarray(self.model(points, training=False)))
            except Exception:  # never end a run over a picture: stop drawing it
                self.off = True
                return
            event: dict[str, Any] = {
                "event": "boundary",
                "epoch": self.epoch + 1,
                "step": step,
                "grid": grid,
                "x": [float(xs[0]), float(xs[-1])],
                "y": [float(ys[0]), float(ys[-1])],
                "classes": encode(np.minimum(classes, 255)),
                "confidence": encode(np.round(confidence * 255)),
            }
            if self.first:
                event.update(head)
                self.first = False
            emit(event)
            self.last = time.monotonic()
            self.spent += self.last - start
            self.sends += 1
            if step is None:
                self.sent_last = self.epoch

    return BoundaryProbe()
