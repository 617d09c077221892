"""Training health and the live decision boundary in a cluster run, on the chief only.

A single-process run attaches :func:`engine.train.fit.probe_callbacks` (health and
the decision boundary) to ``model.fit``; the cluster loop has no ``fit``, so
:class:`ChiefProbes` drives the same callbacks by hand at
epoch ends, and the boundary also within an epoch, as often as it would in a ``fit``
run (its own interval and time budget decide): the same probe batch (the first samples of the training split,
``Dataset.head``), the same cost budgets, the same ``health.jsonl`` and the same
``health`` / ``boundary`` events.

Why outside the strategy: a forward/backward pass on the strategy's model would be a
collective (every worker would have to take part, each epoch, in step). Instead the
chief keeps a plain replica of the model, built outside ``strategy.scope()``, copies
its own (already synchronised) weights into it after the epoch and probes that. No
collective is involved, so the other workers only wait for the chief at the next
collective for as long as the probe takes, which the budgets bound (4 % of the
training time for health, 5 % for the boundary). Workers other than the chief build
nothing.

TensorFlow and Keras are imported inside functions only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.data.dataset import Dataset
from engine.train.config import Emit, make_loss
from engine.train.fit import build_snapshot_model, probe_callbacks


class ChiefProbes:
    """The chief's health and boundary callbacks, on a replica of the model.

    Args:
        project: The project snapshot (the replica is built from its graph).
        section: The training section (``health``: false turns health off).
        base_dir: Folder relative paths are resolved against.
        ds: The run's data set.
        loss: The loss name.
        run_dir: The run directory (``health.jsonl`` goes there).
        emit: Receives the ``health`` and ``boundary`` events.
        done_before: Epochs trained before (a resumed run keeps their health rows).
    """

    def __init__(
        self,
        project: dict[str, Any],
        section: dict[str, Any],
        base_dir: Any,
        ds: Dataset,
        loss: str,
        run_dir: Path,
        emit: Emit,
        done_before: int,
    ) -> None:
        self.callbacks = probe_callbacks(
            section, ds, loss, make_loss(section, loss), run_dir, emit, done_before
        )
        self.emit = emit
        self.replica: Any = None
        self.synced = False
        if self.callbacks:  # outside strategy.scope(): plain variables on this machine
            try:
                self.replica = build_snapshot_model(project, base_dir)
            except Exception as exc:  # never end a run over a probe
                self._off(exc)
                return
            for callback in self.callbacks:
                callback.set_model(self.replica)
                callback.on_train_begin()

    def epoch_begin(self, epoch: int) -> None:
        """Before the epoch's first step (0-based ``epoch``)."""
        self.synced = False
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch)

    def step(self, step: int, model: Any) -> None:
        """After the epoch's ``step``-th step (1-based): a boundary field when one is
        due, from the chief's weights of this moment (read locally: no collective)."""
        due = [c for c in self.callbacks if getattr(c, "due", None) and c.due()]
        if not due:
            return
        self._sync(model, again=True)
        for callback in due:
            callback.on_train_batch_end(step - 1)
        self.synced = False  # the epoch's end copies the weights again

    def epoch_end(self, epoch: int, model: Any, logs: dict[str, Any]) -> None:
        """After the epoch (``model``: the strategy's model, whose weights are copied)."""
        if not self.callbacks:
            return
        self._sync(model)
        for callback in self.callbacks:  # none left when the copy failed
            callback.on_epoch_end(epoch, dict(logs))

    def train_end(self, model: Any) -> None:
        """After the last epoch: its probes are always taken (as ``fit`` does)."""
        if not self.callbacks:
            return
        self._sync(model)
        for callback in self.callbacks:
            callback.on_train_end()

    def _sync(self, model: Any, again: bool = False) -> None:
        if self.synced and not again:
            return
        try:
            self.replica.set_weights(model.get_weights())
            for layer in self.replica.layers:  # a Normalization follows its variables
                if type(layer).__name__ == "Normalization":
                    layer.finalize_state()
        except Exception as exc:  # never end a run over a probe
            self._off(exc)
            return
        self.synced = True

    def _off(self, exc: Exception) -> None:
        self.callbacks = []
        self.emit(
            {
                "event": "warning",
                "message": "training health and the decision boundary are not collected: "
                f"the chief's copy of the model failed ({type(exc).__name__}: {exc})",
            }
        )
