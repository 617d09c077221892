"""The training and validation steps of a cluster run, one epoch of them, and the
progress events they give.

What every step does: ``strategy.run`` of a ``GradientTape`` step per replica,
the loss scaled with ``tf.nn.compute_average_loss(global_batch_size=...)``, the
gradients summed across all workers by the optimizer; loss and metric *sums* and
the sample count are reduced with SUM, so every worker sees the same global
averages and makes the same early-stopping and stop decisions. The data is sharded
by DATA across the workers (:meth:`Steps.dataset`) when it is in memory; streamed
data (image files, memory maps) is read by each worker from its own shard
(:func:`local_shard`, planned by :func:`engine.train.cluster.shard_plan`).

TensorFlow is imported inside functions only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from engine.train.callbacks import BATCH_EVENT_INTERVAL_S
from engine.train.config import Emit


def _sums(kind: str, y: Any, pred: Any, per_example: Any, from_logits: bool) -> Any:
    """Per-replica sums in one vector (one collective reduces them all): loss,
    samples, and the metric numerators for ``kind``."""
    import tensorflow as tf

    n = tf.cast(tf.shape(per_example)[0], tf.float32)
    loss_sum = tf.reduce_sum(tf.cast(per_example, tf.float32))
    pred = tf.cast(pred, tf.float32)
    if kind == "sparse":
        label = tf.cast(tf.reshape(y, [-1]), tf.int64)
        hit = tf.equal(tf.argmax(pred, axis=-1), label)
    elif kind == "categorical":
        hit = tf.equal(tf.argmax(pred, axis=-1), tf.argmax(y, axis=-1))
    elif kind == "binary":
        threshold = 0.0 if from_logits else 0.5
        hit = tf.equal(
            tf.cast(tf.reshape(pred, [-1]) > threshold, tf.int64),
            tf.cast(tf.reshape(y, [-1]), tf.int64),
        )
    else:  # regression: absolute and squared error per sample
        err = tf.reshape(pred, [tf.shape(pred)[0], -1]) - tf.reshape(
            tf.cast(y, tf.float32), [tf.shape(pred)[0], -1]
        )
        return tf.stack(
            [
                loss_sum,
                n,
                tf.reduce_sum(tf.reduce_mean(tf.abs(err), -1)),
                tf.reduce_sum(tf.reduce_mean(tf.square(err), -1)),
            ]
        )
    return tf.stack([loss_sum, n, tf.reduce_sum(tf.cast(hit, tf.float32))])


def metric_kind(loss: str, task: str) -> str:
    """How accuracy is read off predictions for ``loss``: sparse, categorical, binary
    or regression."""
    if task == "regression":
        return "regression"
    return {
        "sparse_categorical_crossentropy": "sparse",
        "categorical_crossentropy": "categorical",
        "binary_crossentropy": "binary",
    }.get(loss, "regression")


def logs_from(
    kind: str, sums: list[float], metrics: tuple[str, ...], prefix: str = ""
) -> dict[str, float]:
    """Global averages from reduced sums: ``loss`` plus the requested metrics."""
    n = max(sums[1], 1.0)
    logs = {f"{prefix}loss": sums[0] / n}
    if kind == "regression":
        values = {"mae": sums[2] / n, "mse": sums[3] / n, "rmse": math.sqrt(sums[3] / n)}
    else:
        values = {"accuracy": sums[2] / n}
    for name in metrics:
        if name in values:
            logs[f"{prefix}{name}"] = values[name]
    return logs


class Steps:
    """The compiled train and validation steps of one run."""

    def __init__(
        self,
        strategy: Any,
        model: Any,
        loss_obj: Any,
        kind: str,
        global_batch: int,
        from_logits: bool,
    ) -> None:
        import tensorflow as tf

        self.strategy = strategy
        reduce_sum = tf.distribute.ReduceOp.SUM

        def train_replica(x: Any, y: Any) -> Any:
            with tf.GradientTape() as tape:
                pred = model(x, training=True)
                per_example = loss_obj(y, pred)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            grads = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return _sums(kind, y, pred, per_example, from_logits)

        def eval_replica(x: Any, y: Any) -> Any:
            pred = model(x, training=False)
            return _sums(kind, y, pred, loss_obj(y, pred), from_logits)

        @tf.function(reduce_retracing=True)
        def train_step(batch: Any) -> Any:
            return strategy.reduce(reduce_sum, strategy.run(train_replica, args=batch), axis=None)

        @tf.function(reduce_retracing=True)
        def eval_step(batch: Any) -> Any:
            return strategy.reduce(reduce_sum, strategy.run(eval_replica, args=batch), axis=None)

        self.train_step, self.eval_step = train_step, eval_step

    def dataset(self, x: Any, y: Any, batch: int, order: Any = None) -> Any:
        """A distributed dataset of global batches, sharded by DATA across workers."""
        import tensorflow as tf

        if order is not None:
            x, y = x[order], y[order]
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return self.strategy.experimental_distribute_dataset(ds.with_options(options))


def local_shard(
    strategy: Any, make_batches: Callable[[int], Any], worker_batch: int, steps: int
) -> Any:
    """A distributed dataset of exactly ``steps`` steps from this worker's own batches.

    ``make_batches(per_replica_batch)`` gives the ``tf.data`` batches of this worker's
    shard (streamed: read as training goes); they are served to this worker's replicas
    as they are (no auto-sharding: the shard is already this worker's). When the shard
    runs out early (a shorter last slice, a file skipped as undecodable), empty batches
    fill the remaining steps, so every worker joins every step's collective.
    """
    import tensorflow as tf

    replicas = max(1, int(strategy.num_replicas_in_sync) // _workers(strategy))
    per_replica = max(1, -(-worker_batch // replicas))

    def make(_context: Any) -> Any:
        local = make_batches(per_replica)
        empty = tf.nest.map_structure(
            lambda spec: tf.zeros([d or 0 for d in spec.shape.as_list()], spec.dtype),
            local.element_spec,
        )
        local = local.concatenate(tf.data.Dataset.from_tensors(empty).repeat())
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return local.take(steps * replicas).with_options(options)

    return strategy.distribute_datasets_from_function(make)


def _workers(strategy: Any) -> int:
    return int(getattr(strategy.extended, "_num_workers", 1) or 1)


def train_batches(
    steps_obj: Steps, batches: Any, on_step: Callable[[int, list[float]], None]
) -> list[float]:
    """One epoch of training steps over a distributed dataset; the reduced sums."""
    sums: list[float] | None = None
    for step, batch in enumerate(batches, 1):
        out = [float(v) for v in steps_obj.train_step(batch).numpy()]
        sums = out if sums is None else [a + b for a, b in zip(sums, out)]
        on_step(step, sums)
    return sums or [0.0, 0.0, 0.0, 0.0]


def train_epoch(
    steps_obj: Steps,
    x: Any,
    y: Any,
    global_batch: int,
    order: Any,
    on_step: Callable[[int, list[float]], None],
) -> list[float]:
    """One epoch of training on every worker; the reduced sums (loss, samples, ...).

    ``on_step(step, sums so far)`` is called after every step (1-based). This is the
    one place to go back to ``model.fit`` once Keras fits under
    MultiWorkerMirroredStrategy (keras-team/keras#20585).
    """
    return train_batches(steps_obj, steps_obj.dataset(x, y, global_batch, order), on_step)


class Progress:
    """``batch`` events from the chief (at most 20 a second, global averages, ETA) and
    a ``_beat`` from every worker at most each second, which tells the watchdog in the
    parent process that the cluster is moving."""

    BEAT_S = 1.0

    def __init__(
        self,
        emit: Emit,
        is_chief: bool,
        steps: int,
        epochs: int,
        global_batch: int,
        kind: str,
        metrics: tuple[str, ...],
    ) -> None:
        self.emit, self.is_chief = emit, is_chief
        self.steps, self.epochs, self.global_batch = steps, epochs, global_batch
        self.kind, self.metrics = kind, metrics
        self.epoch = 0
        self.mark = self.last_event = self.last_beat = time.monotonic()

    def begin(self, epoch: int) -> None:
        """At the start of ``epoch`` (0-based)."""
        self.epoch = epoch
        self.mark = time.monotonic()

    def beat(self) -> None:
        now = time.monotonic()
        if now - self.last_beat >= self.BEAT_S:
            self.last_beat = now
            self.emit({"event": "_beat"})

    def step(self, step: int, sums: list[float]) -> None:
        self.beat()
        now = time.monotonic()
        if not self.is_chief or (now - self.last_event < BATCH_EVENT_INTERVAL_S and step != 1):
            return
        self.last_event = now
        rate = step / (now - self.mark) if now > self.mark else 0.0
        left = (self.steps - step) + (self.epochs - self.epoch - 1) * self.steps
        self.emit(
            {
                "event": "batch",
                "epoch": self.epoch + 1,
                "step": step,
                "steps": self.steps,
                "logs": logs_from(self.kind, sums, self.metrics),
                "samples_per_s": round(rate * self.global_batch, 1),
                "eta_s": round(left / rate, 1) if rate else None,
            }
        )
