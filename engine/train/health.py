"""Training health per epoch: weight histograms, gradient norms, dead ReLU units and
plain-language warnings, collected in the training process at a bounded cost.

At the end of an epoch :class:`HealthProbe` takes one small fixed batch of the
training data (at most :data:`PROBE_SAMPLES` samples, chosen once per run), runs it
forward and backward once under a ``tf.GradientTape`` (a traced ``tf.function``), and
records for every layer with weights:

- ``weight_hist``: a histogram of all its weights in :data:`BINS` fixed bins
  (``counts``, ``lo``, ``hi``), ``weight_norm`` (L2 norm of its weights);
- ``gradient_norm``: the L2 norm of the loss gradient for its trainable weights on the
  probe batch (null for a frozen layer);
- ``dead_fraction`` for layers whose output is a ReLU: the fraction of units that are
  zero for every sample of the probe batch (null otherwise).

Each record is one line of ``health.jsonl`` in the run directory (rewritten whole
through :func:`engine.files.write_atomic`) and is sent as a ``health`` event without
the histograms. :func:`health_warnings` words what the numbers mean.

The cost is bounded: an epoch is probed only while the time spent probing (the
next probe's time estimated from the last one; :data:`FIRST_PROBE_GUESS` for the
first) stays within :data:`MAX_SHARE` (4 %) of the time spent training so far, so a
run with long epochs is probed every epoch and a run of many short ones every few
epochs. The run's first epoch is probed too when the probe fits in the budget of the
whole run (the first epoch's time times the epochs to train), so that the histograms
start where training starts; the last epoch is always probed (``on_train_end``): the norms ``layerlab
inspect`` reports are the last epoch's. The probe runs eagerly (tracing a
``tf.function`` took ~1 s, more than a run's whole budget on small models). ``training.health`` (default true)
turns it off. The environment variable ``LAYERLAB_HEALTH_SHARE`` sets another share (a
fraction; 1 or more probes every epoch, whatever it costs). TensorFlow loads inside :func:`health_callback` only.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.files import write_atomic
from engine.train.config import Emit

HEALTH_FILE = "health.jsonl"
BINS = 30
PROBE_SAMPLES = 64
MAX_SHARE = 0.04
"""Most of the training time health collection may take."""

VANISHING_RATIO = 1000.0
"""Gradients this many times smaller in the first layers than in the last: vanishing."""
FIRST_PROBE_GUESS = 0.5
"""Seconds the first probe is expected to take (building the probe model included)."""
SHARE_ENV = "LAYERLAB_HEALTH_SHARE"
"""Environment variable overriding :data:`MAX_SHARE` (1 or more: every epoch)."""
DEAD_WARN = 0.5
"""A ReLU layer with more than this fraction of units never firing: dying ReLU."""


def relu_output(layer: Any) -> bool:
    """The layer's output passes through a ReLU (its ``activation`` or a ReLU layer)."""
    name = type(layer).__name__
    if name == "ReLU":
        return True
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", None) == "relu"


def histogram(values: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """``values`` in ``bins`` equal bins between their minimum and maximum."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"counts": [0] * bins, "lo": 0.0, "hi": 0.0}
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        hi = lo + 1e-12
    counts, _ = np.histogram(v, bins=bins, range=(lo, hi))
    return {"counts": [int(c) for c in counts], "lo": lo, "hi": hi}


def probe_share() -> float:
    """The share of the training time health may take: :data:`SHARE_ENV` when it is a
    positive number, else :data:`MAX_SHARE`."""
    try:
        share = float(os.environ.get(SHARE_ENV, MAX_SHARE))
    except ValueError:
        return MAX_SHARE
    return share if math.isfinite(share) and share > 0 else MAX_SHARE


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def health_warnings(layers: list[dict[str, Any]]) -> list[str]:
    """Plain-language warnings for one epoch's layer records."""
    out = []
    grads = [
        (row["name"], row["gradient_norm"])
        for row in layers
        if row.get("gradient_norm") is not None
    ]
    if len(grads) >= 3:
        head = max(g for _, g in grads[:2])
        tail = max(g for _, g in grads[-2:])
        first, last = grads[0][0], grads[-1][0]
        if tail > 0 and head < tail / VANISHING_RATIO:
            size = (
                "vanish before they reach the first layers"
                if head < tail * 1e-12
                else f"in the first layers are {_times(tail / head)} smaller than in the last"
            )
            out.append(
                f"gradients {size} ({first}: {head:.2g}, {last}: {tail:.2g}): vanishing "
                "gradients; try residual connections or batch normalisation (or ReLU "
                "instead of sigmoid/tanh)"
            )
        elif head > 0 and tail < head / VANISHING_RATIO:
            out.append(
                f"gradients in the first layers are {_times(head / max(tail, 1e-30))} larger "
                f"than in the last ({first}: {head:.2g}, {last}: {tail:.2g}): exploding "
                "gradients; lower the learning rate, add gradient clipping (clipnorm) or "
                "batch normalisation"
            )
    for row in layers:
        dead = row.get("dead_fraction")
        if dead is not None and dead > DEAD_WARN:
            out.append(
                f"{dead:.0%} of the units of {row['name']} never fire on the probe batch: "
                "dying ReLU; try a lower learning rate, LeakyReLU or He initialisation"
            )
    still = [r["name"] for r in layers if r.get("gradient_norm") == 0.0 and r.get("trainable")]
    if still:
        names = ", ".join(still[:4]) + (f" and {len(still) - 4} more" if len(still) > 4 else "")
        out.append(
            f"{names} {'gets' if len(still) == 1 else 'get'} no gradient at all: "
            f"{'it does' if len(still) == 1 else 'they do'} not learn"
        )
    return out


def _times(ratio: float) -> str:
    exponent = int(math.floor(math.log10(max(ratio, 1.0))))
    return f"{10**exponent:,}x"


def read_health(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``health.jsonl`` (empty when absent; bad lines skipped)."""
    path = Path(run_dir) / HEALTH_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    out = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("layers"), list):
            out.append(row)
    return out


def health_callback(
    run_dir: Path,
    emit: Emit,
    x: np.ndarray,
    y: np.ndarray,
    loss: Any,
    done_before: int = 0,
) -> Any:
    """The Keras callback that probes health (see the module docstring).

    Args:
        run_dir: Where ``health.jsonl`` goes (records past ``done_before`` dropped).
        emit: Receives one ``health`` event per probed epoch.
        x, y: Training inputs and labels as the loss takes them; the probe batch is
            their first :data:`PROBE_SAMPLES` rows.
        loss: The compiled loss (a Keras loss object or function).
    """
    import keras
    import tensorflow as tf

    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    xb = np.asarray(x[:PROBE_SAMPLES])
    yb = np.asarray(y[:PROBE_SAMPLES])
    kept = [r for r in read_health(run_dir) if int(r.get("epoch", 0)) <= done_before]
    share = probe_share()

    class HealthProbe(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.records = kept
            self.step: Any = None
            self.probe_time = FIRST_PROBE_GUESS  # the next probe's expected time
            self.spent = 0.0  # time spent probing so far
            self.trained = 0.0  # time spent training so far
            self.epoch_start = 0.0
            self.last_epoch = -1
            self.probed = -1
            self.off = False
            self.variables: list[Any] = []

        def _build(self) -> None:
            model = self.model
            self.weighted = [layer for layer in model.layers if layer.weights]
            self.relu_layers = [layer for layer in model.layers if relu_output(layer)]
            probe = keras.Model(
                _inputs(model), [model.outputs[0]] + [layer.output for layer in self.relu_layers]
            )
            self.trainables = [list(layer.trainable_weights) for layer in self.weighted]
            flat = [v for vs in self.trainables for v in vs]

            # eager: tracing a tf.function costs ~1 s, more than many eager probes
            def step(xs: Any, ys: Any) -> Any:
                with tf.GradientTape() as tape:
                    outs = probe(xs, training=False)
                    outs = outs if isinstance(outs, (list, tuple)) else [outs]
                    value = loss(ys, outs[0])
                grads = tape.gradient(value, flat) if flat else []
                dead = [
                    tf.reduce_mean(
                        tf.cast(
                            tf.reduce_all(tf.equal(tf.reshape(o, [tf.shape(o)[0], -1]), 0), 0),
                            tf.float32,
                        )
                    )
                    for o in outs[1:]
                ]
                return grads, dead

            self.step = step
            self.flat = flat

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.step = None  # fine-tuning recompiles: trainable weights may differ

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch_start = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self.off:
                return
            self.last_epoch = epoch
            self.trained += time.monotonic() - self.epoch_start
            if share < 1 and self.spent + self.probe_time > share * self.trained:
                if not self._first_affordable(epoch):
                    return  # bounded cost: wait until training has run long enough
            self._probe(epoch)

        def _first_affordable(self, epoch: int) -> bool:
            """Whether to probe the run's first epoch ahead of the budget (so the
            histograms start where training starts): when the probe fits in the
            share of the whole run's expected time (this epoch's time times the
            epochs left), so the run's total stays within budget."""
            if self.probed >= 0:
                return False
            left = int((self.params or {}).get("epochs", 0)) - epoch
            return self.probe_time <= share * self.trained * max(left, 1)

        def on_train_end(self, logs: dict | None = None) -> None:
            if not self.off and self.last_epoch >= 0 and self.probed != self.last_epoch:
                self._probe(self.last_epoch)

        def _probe(self, epoch: int) -> None:
            strategy = (
                getattr(self.model, "distribute_strategy", None) or tf.distribute.get_strategy()
            )
            replicas = getattr(strategy, "num_replicas_in_sync", 1)
            reason = "not yet for runs on several devices" if replicas > 1 else ""
            if not reason:
                try:
                    self._measure(epoch)
                    return
                except Exception as exc:  # never end a run over a health probe
                    reason = f"the probe failed ({type(exc).__name__}: {exc})"
            self.off = True
            emit({"event": "warning", "message": f"training health is not collected: {reason}"})

        def _measure(self, epoch: int) -> None:
            start = time.monotonic()
            if self.step is None:
                self._build()
            grads, dead = self.step(tf.constant(xb), tf.constant(yb))
            grads = [None if g is None else float(tf.norm(g).numpy()) for g in grads]
            dead = [float(d.numpy()) for d in dead]
            by_var = dict(zip([id(v) for v in self.flat], grads, strict=True))
            dead_of = {id(layer): d for layer, d in zip(self.relu_layers, dead, strict=True)}
            rows = []
            for layer, trainable in zip(self.weighted, self.trainables, strict=True):
                values = [np.asarray(w.numpy()).ravel() for w in layer.weights]
                flat = np.concatenate(values) if values else np.zeros(0)
                norms = [by_var.get(id(v)) for v in trainable]
                norms = [n for n in norms if n is not None]
                rows.append(
                    {
                        "name": layer.name,
                        "weight_hist": histogram(flat),
                        "weight_norm": _number(float(np.linalg.norm(flat))),
                        "gradient_norm": _number(math.sqrt(sum(n * n for n in norms)))
                        if norms
                        else None,
                        "dead_fraction": dead_of.get(id(layer)),
                        "trainable": bool(trainable),
                    }
                )
            for layer in self.relu_layers:  # ReLU layers without weights
                if not layer.weights:
                    rows.append(
                        {
                            "name": layer.name,
                            "weight_hist": None,
                            "weight_norm": None,
                            "gradient_norm": None,
                            "dead_fraction": dead_of[id(layer)],
                            "trainable": False,
                        }
                    )
            order = {layer.name: i for i, layer in enumerate(self.model.layers)}
            rows.sort(key=lambda r: order.get(r["name"], 0))
            record = {"epoch": epoch + 1, "layers": rows, "warnings": health_warnings(rows)}
            self.records = [r for r in self.records if r.get("epoch") != epoch + 1] + [record]
            text = "".join(json.dumps(r) + "\n" for r in self.records)
            write_atomic(Path(run_dir) / HEALTH_FILE, text.encode("utf-8"))
            emit(
                {
                    "event": "health",
                    "epoch": epoch + 1,
                    "layers": [
                        {k: r[k] for k in ("name", "weight_norm", "gradient_norm", "dead_fraction")}
                        for r in rows
                    ],
                    "warnings": record["warnings"],
                }
            )
            self.probed = epoch
            self.probe_time = time.monotonic() - start
            self.spent += self.probe_time

    return HealthProbe()


def _inputs(model: Any) -> Any:
    """The model's inputs as a sub-model takes them (one tensor, or the list)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs
