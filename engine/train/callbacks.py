"""The Keras callbacks of one run: events, stop and pause, NaN, checkpoints.

:class:`Controls` carries the stop and pause requests of whoever watches a run;
:class:`RunState` is what the callbacks of one run share; :func:`callback_types`
defines the callback classes (Keras loads only when training).
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.files import LatestWrites
from engine.train import runs
from engine.train.config import Emit


@dataclass
class Controls:
    """Requests from whoever watches the run (threading or multiprocessing Events).

    Attributes:
        stop: Set to stop at the next batch (everything trained so far is kept).
        pause: Set to hold the run at the next batch; clear to go on.
        stop_seen: Set by the run once it has noticed ``stop``, or once training is
            over (saving and evaluating then finish on their own).
        caller_alive: Returns False when the caller has gone; the run then stops.
        fitting: Set by the run when ``model.fit`` starts (a stop before that has
            nothing to save).
        reason: Why ``stop`` was set when not by the caller (``SIGTERM``): the run
            then keeps its end short (checkpoint and model, no evaluation).
    """

    stop: Any = field(default_factory=threading.Event)
    pause: Any = field(default_factory=threading.Event)
    stop_seen: Any = field(default_factory=threading.Event)
    caller_alive: Callable[[], bool] = lambda: True
    fitting: bool = False
    reason: str = ""


BATCH_EVENT_INTERVAL_S = 0.05
"""At most one batch event per this many seconds (20 a second)."""

CHECKPOINT_INTERVAL_ENV = "LAYERLAB_CHECKPOINT_INTERVAL_S"
"""Environment variable that changes :data:`CHECKPOINT_INTERVAL_S` (0: every epoch)."""


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get(CHECKPOINT_INTERVAL_ENV, "30")))
    except ValueError:
        return 30.0


CHECKPOINT_INTERVAL_S = _interval()
"""Checkpoints are written at most this often (and always when training ends); 30 s
unless ``LAYERLAB_CHECKPOINT_INTERVAL_S`` says otherwise."""


@functools.cache
def callback_types() -> tuple[type, type]:
    """The Keras callback classes (defined here so Keras loads only when training)."""
    import keras

    class EventReporter(keras.callbacks.Callback):
        """Turns Keras logs into plain events; honours stop and pause; catches NaN."""

        def __init__(self, run: RunState) -> None:
            super().__init__()
            self.run = run

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.run.epoch = epoch
            self.run.epoch_start = self.run.mark = time.monotonic()
            self.run.mark_step = self.run.step = 0

        # Keras runs batch-end hooks of an async-safe callback on a helper thread, so
        # the training loop never waits for the logs to become Python numbers. Stop and
        # pause act in the batch-begin hook, which runs on the training loop itself.
        async_safe = True

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            run, ctl = self.run, self.run.controls
            if ctl.stop.is_set():
                ctl.stop_seen.set()
                run.stopped = True
                self.model.stop_training = True
                return
            if ctl.pause.is_set():
                self._hold(batch)
                if run.stopped:
                    self.model.stop_training = True

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            run = self.run
            run.step = step = batch + 1
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(loss):
                run.nan_at = (run.epoch + 1, step, float(loss))
                self.model.stop_training = True
                return
            now = time.monotonic()
            if now - run.last_batch_event >= BATCH_EVENT_INTERVAL_S:
                run.last_batch_event = now
                self._report(step, logs or {}, now)

        def _report(self, step: int, logs: dict, now: float) -> None:
            run = self.run
            steps_done = step - run.mark_step
            elapsed = now - run.mark
            rate = steps_done / elapsed if elapsed > 0 and steps_done > 0 else 0.0
            if rate:
                run.step_rate = rate if not run.step_rate else 0.7 * run.step_rate + 0.3 * rate
            run.mark, run.mark_step = now, step
            left = (run.steps - step) + (run.epochs - run.epoch - 1) * run.steps
            sps = run.step_rate * run.batch_size
            run.emit(
                {
                    "event": "batch",
                    "epoch": run.epoch + 1,
                    "step": step,
                    "steps": run.steps,
                    "logs": _plain(logs),
                    "samples_per_s": round(sps, 1),
                    "eta_s": round(left / run.step_rate, 1) if run.step_rate else None,
                    **run.phase_keys(),
                }
            )

        def _hold(self, step: int) -> None:
            run, ctl = self.run, self.run.controls
            run.emit({"event": "paused", "epoch": run.epoch + 1, "step": step})
            while ctl.pause.is_set() and not ctl.stop.is_set():
                if not ctl.caller_alive():
                    ctl.stop.set()
                    break
                ctl.stop.wait(0.1)
            if ctl.stop.is_set():
                ctl.stop_seen.set()
                run.stopped = True
                return
            run.mark, run.mark_step = time.monotonic(), step
            run.emit({"event": "resumed", "epoch": run.epoch + 1, "step": step})

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            run = self.run
            if run.nan_at:
                return
            entry = _plain(logs or {})
            lr = _current_lr(self.model)
            if lr is not None:
                entry["learning_rate"] = lr
            for key, value in entry.items():
                run.history.setdefault(key, []).append(value)
            run.epochs_done = epoch + 1
            bad = [
                k
                for k, v in entry.items()
                if k.startswith("val_") and isinstance(v, float) and not math.isfinite(v)
            ]
            if bad:
                run.emit(
                    {
                        "event": "warning",
                        "message": f"{', '.join(bad)} became "
                        f"{entry[bad[0]]} in epoch {epoch + 1}: the model gives non-finite "
                        "outputs on the validation data; lower the learning rate",
                    }
                )
            # the history files are synced to disk: written off the training thread
            history = {k: list(v) for k, v in run.history.items()}
            run.writes.submit(
                "history", functools.partial(runs.write_history, run.run_dir, history)
            )
            run.tensorboard(epoch + 1, entry)
            event = {
                "event": "epoch",
                "epoch": epoch + 1,
                "logs": entry,
                "time_s": round(time.monotonic() - run.epoch_start, 3),
                **run.phase_keys(),
            }
            if run.stopped and run.step < run.steps:
                event["partial"] = True  # stopped before the epoch's last batch
            run.emit(event)
            if run.controls.stop.is_set():  # asked during validation: end with this epoch
                run.controls.stop_seen.set()
                run.stopped = True
                self.model.stop_training = True

    class CheckpointWriter(keras.callbacks.Callback):
        """Writes checkpoints/last.keras and best.keras (by the monitored metric).

        Saving a model costs tens of milliseconds or more, so checkpoints are written
        at most every :data:`CHECKPOINT_INTERVAL_S` seconds (the weights of a better
        epoch in between are held in memory) and always when training ends.
        """

        def __init__(self, run: RunState) -> None:
            super().__init__()
            self.run = run
            self.saved_at = time.monotonic()
            self.unsaved_epoch = 0  # the epoch reached but not yet in last.keras
            self.best_unsaved = False
            self.best_weights: list[Any] | None = None

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            run = self.run
            if run.nan_at:
                return
            value = (logs or {}).get(run.monitor)
            improved = (
                value is not None
                and math.isfinite(value)
                and (
                    run.best is None
                    or (value > run.best if run.mode == "max" else value < run.best)
                )
            )
            if improved:
                run.best, self.best_unsaved, self.best_weights = float(value), True, None
            self.unsaved_epoch = epoch + 1
            if time.monotonic() - self.saved_at >= CHECKPOINT_INTERVAL_S:
                self._write()
            elif improved:
                self.best_weights = self.model.get_weights()

        def on_train_end(self, logs: dict | None = None) -> None:
            if self.unsaved_epoch and not self.run.nan_at:
                self._write()

        def _write(self) -> None:
            run, model = self.run, self.model
            run.writes.drain()  # history.json holds every epoch state.json will name
            folder = run.run_dir / "checkpoints"
            runs.save_model_atomic(model, folder / "last.keras")
            # state.json names the epoch last.keras holds: written right after it
            runs.write_json(
                folder / "state.json",
                {
                    "epoch": self.unsaved_epoch,
                    "monitor": run.monitor,
                    "mode": run.mode,
                    "best": run.best,
                    "planned_epochs": run.planned_epochs,
                    **run.phase_keys(),
                },
            )
            run.emit({"event": "checkpoint", "path": str(folder / "last.keras")})
            if self.best_unsaved:
                current = None
                if self.best_weights is not None:
                    current = model.get_weights()
                    model.set_weights(self.best_weights)
                runs.save_model_atomic(model, folder / "best.keras")
                if current is not None:
                    model.set_weights(current)
                run.emit(
                    {
                        "event": "checkpoint",
                        "path": str(folder / "best.keras"),
                        "monitor": run.monitor,
                        "value": run.best,
                    }
                )
                self.best_unsaved, self.best_weights = False, None
            self.unsaved_epoch = 0
            self.saved_at = time.monotonic()

    return EventReporter, CheckpointWriter


def _plain(logs: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in logs.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def _current_lr(model: Any) -> float | None:
    try:
        return float(model.optimizer.learning_rate)
    except Exception:
        return None


@dataclass
class RunState:
    """What the callbacks of one run share."""

    run_dir: Path
    emit: Emit
    controls: Controls
    steps: int
    epochs: int
    batch_size: int
    monitor: str
    mode: str
    best: float | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: int = 0
    step: int = 0
    epochs_done: int = 0
    planned_epochs: int = 0  # what the learning-rate schedule was built for
    epoch_start: float = 0.0
    mark: float = 0.0
    mark_step: int = 0
    step_rate: float = 0.0
    last_batch_event: float = 0.0
    stopped: bool = False
    nan_at: tuple[int, int, float] | None = None
    tensorboard: Callable[[int, dict[str, float]], None] = lambda epoch, logs: None
    writes: LatestWrites = field(default_factory=LatestWrites)  # history, per epoch
    phase: int = 0  # fine-tuning (training section "fine_tune"): 1 or 2; 0 without it
    fine_tune_from: int = 0  # the first epoch of phase 2 (1-based), 0 before it

    def phase_keys(self) -> dict[str, int]:
        """``phase`` and ``fine_tune_from`` for events and ``state.json`` (none
        without fine-tuning)."""
        if not self.phase:
            return {}
        keys = {"phase": self.phase}
        if self.fine_tune_from:
            keys["fine_tune_from"] = self.fine_tune_from
        return keys
