"""The learning rate a run's schedule gives over its optimizer steps, for a plot.

Keras is imported inside :func:`lr_curve` (the schedule is a Keras object).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.train.config import make_schedule

LR_POINTS = 150
"""How many steps of a run :func:`lr_curve` evaluates by default."""


def lr_curve(
    section: dict[str, Any], steps_per_epoch: int, epochs: int, points: int = LR_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """The learning rate over a run's optimizer steps, from ``make_schedule``.

    Returns:
        ``(epochs, learning rates)``: x in epochs (fractional), ``points`` values.
    """
    import keras

    schedule = make_schedule(section, steps_per_epoch, epochs)
    total = max(1, steps_per_epoch * epochs)
    steps = np.unique(np.linspace(0, total, min(points, total + 1)).round().astype(int))
    if isinstance(schedule, (int, float)):
        lr = np.full(len(steps), float(schedule))
    else:
        try:
            lr = np.asarray(
                keras.ops.convert_to_numpy(schedule(steps.astype("float32"))), dtype=float
            ).reshape(-1)
            if lr.shape != steps.shape:
                raise ValueError("not element-wise")
        except Exception:
            lr = np.array([float(keras.ops.convert_to_numpy(schedule(int(s)))) for s in steps])
    return steps / max(1, steps_per_epoch), lr
