"""The learning rate a run's schedule gives over its optimizer steps, for a plot.

Keras is imported inside :func:`lr_curve` (the schedule is a Keras object).
:func:`default_lengths` says, without Keras, what the schedule's length parameters
are when left empty (the same rules as :func:`engine.train.config.make_schedule`), so
the settings show the numbers the plot uses; :func:`lr_axis_range` is the plot's y
range (from 0 for a learning rate, never a negative axis).

With fine-tuning in two phases (``fine_tune``), :func:`lr_curve` draws both phases
the way the run trains them (:func:`lr_phases`, from the same
:func:`engine.train.config.fine_tune_of` and :func:`engine.train.config.phase_two_section`
that :mod:`engine.train.fit` compiles with): phase 1's schedule over epochs
1..``after_epoch``, then a fresh schedule over the remaining epochs with every rate
x ``learning_rate_factor``, its steps counted from 0 again (a new optimizer).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.train.config import (
    SCHEDULES,
    find_key,
    fine_tune_of,
    make_schedule,
    phase_two_section,
    split_typed,
)

LR_POINTS = 150
"""How many steps of a run :func:`lr_curve` evaluates by default."""


def lr_phases(section: dict[str, Any], epochs: int) -> list[tuple[int, int, dict[str, Any]]]:
    """The run's learning-rate phases: ``(first epoch, epochs, section)`` each, the
    epochs 0-based (phase 1 starts at 0). One phase without ``fine_tune`` (or when
    ``after_epoch`` is not before the last epoch); with it, phase 1 over
    ``after_epoch`` epochs with the section as it is and phase 2 over the rest with
    :func:`~engine.train.config.phase_two_section` (what ``engine.train.fit`` compiles;
    early stopping in phase 1 can start phase 2 sooner in a real run)."""
    epochs = max(1, int(epochs))
    fine = fine_tune_of(section)
    if not fine or not 0 < fine["after_epoch"] < epochs:
        return [(0, epochs, section)]
    after = int(fine["after_epoch"])
    two = phase_two_section(section, fine["learning_rate_factor"])
    return [(0, after, section), (after, epochs - after, two)]


def phase_change_epoch(section: dict[str, Any], epochs: int) -> int | None:
    """Where phase 2 of fine-tuning starts on the plot's epoch axis (its
    ``after_epoch``), or None when the run has one phase. Needs no Keras."""
    phases = lr_phases(section, epochs)
    return phases[1][0] if len(phases) > 1 else None


def lr_curve(
    section: dict[str, Any], steps_per_epoch: int, epochs: int, points: int = LR_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """The learning rate over a run's optimizer steps, from ``make_schedule``.

    With ``fine_tune``, each phase of :func:`lr_phases` is evaluated on its own (its
    schedule built for its epochs, its steps from 0) and the curves are joined: the
    phase change appears twice on x (phase 1's last rate, then phase 2's first), so
    the drop is drawn as a vertical step.

    Returns:
        ``(epochs, learning rates)``: x in epochs (fractional), about ``points`` values.
    """
    phases = lr_phases(section, epochs)
    total = max(1, int(epochs))
    xs, ys = [], []
    for first, length, part in phases:
        share = max(2, round(points * length / total)) if len(phases) > 1 else points
        x, lr = _one_curve(part, steps_per_epoch, length, share)
        xs.append(x + first)
        ys.append(lr)
    return np.concatenate(xs), np.concatenate(ys)


def _one_curve(
    section: dict[str, Any], steps_per_epoch: int, epochs: int, points: int
) -> tuple[np.ndarray, np.ndarray]:
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


def default_lengths(section: dict[str, Any], epochs: int) -> dict[str, float]:
    """What the schedule's empty length fields mean, in epochs (as ``make_schedule`` reads them).

    Returns:
        ``{"decay_epochs": ..., "every_epochs": ...}`` for the keys the schedule has:
        exponential decays per 1 epoch; polynomial over the whole run; cosine over
        the run after its warm-up; step every third of the run. With fine-tuning the
        "run" is phase 1 (:func:`lr_phases`: phase 2 builds the schedule again over
        its own epochs), as ``engine.train.fit`` compiles it.
    """
    name, params, _ = split_typed(section.get("schedule") or "constant", "schedule")
    kind = find_key(name, SCHEDULES)
    epochs = lr_phases(section, epochs)[0][1]
    out: dict[str, float] = {}
    if kind == "exponential":
        out["decay_epochs"] = 1
    elif kind == "polynomial":
        out["decay_epochs"] = epochs
    elif kind == "cosine":
        warmup = params.get("warmup_epochs")
        warmup = float(warmup) if isinstance(warmup, (int, float)) else 0.0
        out["decay_epochs"] = max(epochs - warmup, 0) or epochs
    elif kind == "step":
        out["every_epochs"] = round(epochs / 3, 2)
    return out


def lr_axis_range(lr: np.ndarray) -> tuple[float, float]:
    """The y range for a learning-rate plot: from 0 (or below the lowest value when
    some are negative) to a little above the highest; a constant rate sits at 87%."""
    values = np.asarray(lr, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    bottom = 0.0 if low >= 0 else low * 1.1
    top = high * 1.15 if high > 0 else 0.0
    if top <= bottom:
        top = bottom + 1.0
    return bottom, top
