"""What a cluster run keeps of its weights: checkpoints, early stopping, the digest.

:class:`Checkpoints` writes ``last.keras`` and ``best.keras`` as a local run does;
:class:`EarlyStop` takes Keras ``EarlyStopping``'s decisions on the global logs;
:func:`load_checkpoint` copies a resumed run's weights and optimizer state in;
:func:`weights_digest` lets every worker show the weights it ended with.

Keras is imported inside functions only.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.train import runs
from engine.train.config import Emit, Event, monitor_mode
from engine.train.fit import TrainingError


class Checkpoints:
    """``last.keras`` and ``best.keras`` (by the monitored metric), as in a local run:
    written at most every ``interval_s`` (a better epoch in between is held in
    memory) and always at the end; ``state.json`` tells a resume where to start.

    Args:
        folder: The ``checkpoints`` folder.
        monitor: The metric that decides "best".
        emit: Receives ``checkpoint`` events (the chief's), or None.
        best: The best value so far (a resumed run's).
        interval_s: Seconds between writes (0: every epoch).
        before_save: Called before ``state.json`` is written (the chief waits there
            for its history files, so ``state.json`` never names an epoch they lack).
    """

    def __init__(
        self,
        folder: Path,
        monitor: str,
        emit: Emit | None,
        best: float | None = None,
        interval_s: float = 30.0,
        before_save: Callable[[], None] | None = None,
    ) -> None:
        self.folder, self.monitor, self.emit = folder, monitor, emit
        self.before_save = before_save
        self.mode = monitor_mode(monitor)
        self.best, self.interval_s = best, interval_s
        self.saved_at = time.monotonic()
        self.unsaved_epoch = 0
        self.best_unsaved = False
        self.best_weights: list[Any] | None = None

    def epoch_end(self, model: Any, epoch: int, value: float | None) -> None:
        """After ``epoch`` (1-based) with the monitored ``value``."""
        improved = (
            value is not None
            and math.isfinite(value)
            and (
                self.best is None
                or (value > self.best if self.mode == "max" else value < self.best)
            )
        )
        if improved:
            self.best, self.best_unsaved, self.best_weights = float(value), True, None
        self.unsaved_epoch = epoch
        if time.monotonic() - self.saved_at >= self.interval_s:
            self.flush(model)
        elif improved:
            self.best_weights = model.get_weights()

    def flush(self, model: Any) -> None:
        """Write what is not written yet."""
        if not self.unsaved_epoch:
            return
        runs.save_model_atomic(model, self.folder / "last.keras")
        if self.before_save is not None:
            self.before_save()
        # state.json names the epoch last.keras holds: written right after it
        runs.write_json(
            self.folder / "state.json",
            {
                "epoch": self.unsaved_epoch,
                "monitor": self.monitor,
                "mode": self.mode,
                "best": self.best,
            },
        )
        self._tell({"event": "checkpoint", "path": str(self.folder / "last.keras")})
        if self.best_unsaved:
            current = None
            if self.best_weights is not None:
                current = model.get_weights()
                model.set_weights(self.best_weights)
            runs.save_model_atomic(model, self.folder / "best.keras")
            if current is not None:
                model.set_weights(current)
            self._tell(
                {
                    "event": "checkpoint",
                    "path": str(self.folder / "best.keras"),
                    "monitor": self.monitor,
                    "value": self.best,
                }
            )
        self.unsaved_epoch, self.best_unsaved, self.best_weights = 0, False, None
        self.saved_at = time.monotonic()

    def _tell(self, event: Event) -> None:
        if self.emit is not None:
            self.emit(event)


class EarlyStop:
    """Keras ``EarlyStopping`` semantics on the global logs (``patience``,
    ``min_delta``, ``start_from_epoch``, ``restore_best_weights``)."""

    def __init__(self, settings: dict[str, Any], monitor: str) -> None:
        self.mode = monitor_mode(monitor)
        self.patience = int(settings.get("patience", 5))
        self.min_delta = abs(float(settings.get("min_delta", 0.0)))
        self.start_from = int(settings.get("start_from_epoch", 0))
        self.restore = bool(settings.get("restore_best_weights", True))
        self.best: float | None = None
        self.wait = 0
        self.best_weights: list[Any] | None = None

    def should_stop(self, model: Any, epoch: int, value: float | None) -> bool:
        """After ``epoch`` (0-based): whether to stop (best weights restored if asked)."""
        if value is None or epoch < self.start_from:
            return False
        self.wait += 1
        if self.best is None or (
            value - self.min_delta > self.best
            if self.mode == "max"
            else value + self.min_delta < self.best
        ):
            self.best, self.wait = float(value), 0
            if self.restore:
                self.best_weights = model.get_weights()
            return False
        if self.wait >= self.patience and epoch > 0:
            if self.restore and self.best_weights is not None:
                model.set_weights(self.best_weights)
            return True
        return False


def weights_digest(model: Any) -> str:
    """SHA-256 of the model's weights: equal on every worker of a healthy run."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(w.tobytes())
    return h.hexdigest()


def load_checkpoint(path: Path, variables: list[Any]) -> None:
    """Copy a saved model's weights and optimizer state into ``variables`` (loaded
    outside the strategy, so no collective runs on the chief alone)."""
    import keras

    saved = keras.models.load_model(path)
    values = list(saved.variables) + list(getattr(saved.optimizer, "variables", []) or [])
    if len(values) != len(variables):
        raise TrainingError(
            "config",
            f"{path} holds {len(values)} weights and optimizer "
            f"values; the project's model needs {len(variables)}",
            "Resume with the project the run was started from.",
        )
    for var, value in zip(variables, values):
        var.assign(keras.ops.convert_to_numpy(value))
