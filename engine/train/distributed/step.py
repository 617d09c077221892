"""One worker's share of a multi-machine run: a custom training loop under
``tf.distribute.MultiWorkerMirroredStrategy``.

Runs inside the process :mod:`engine.train.distributed.run` starts for each worker, after
``TF_CONFIG`` is set. Every worker runs the same loop in lockstep; the chief
(worker 0) writes the run directory, the others write theirs to a temporary folder.

Why not ``model.fit``: Keras 3.15 ``fit`` under this strategy fails on every worker
with ``ValueError: Attempt to convert a value (PerReplica...) to a Tensor``
(keras-team/keras#20585). :func:`train_epoch` is the one place to change once a
Keras release fixes that: it would hand each epoch to ``model.fit`` instead.

What every step does: ``strategy.run`` of a ``GradientTape`` step per replica,
the loss scaled with ``tf.nn.compute_average_loss(global_batch_size=...)``, the
gradients summed across all workers by the optimizer; loss and metric *sums* and
the sample count are reduced with SUM, so every worker sees the same global
averages and makes the same early-stopping and stop decisions.

TensorFlow and Keras are imported inside functions only.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.train import runs
from engine.train.fit import (
    BATCH_EVENT_INTERVAL_S,
    CHECKPOINT_INTERVAL_S,
    TrainingError,
    batch_size_of,
    epochs_of,
    loss_name,
    make_loss,
    make_optimizer,
    monitor_mode,
)

Event = dict[str, Any]
Emit = Callable[[Event], None]

_IGNORED = {
    "class_weight": (None, "class_weight is not applied in a cluster run"),
    "steps_per_execution": (
        1,
        "steps_per_execution is ignored in a cluster run (one step at a time)",
    ),
    "precision": ("float32", "a cluster run trains in float32; precision is ignored"),
    "jit_compile": ("auto", "jit_compile is ignored in a cluster run"),
}
"""Section keys the cluster loop does not use: (value that needs no warning, warning)."""


def ignored_settings(section: dict[str, Any]) -> list[str]:
    """Warnings for the section's settings a cluster run leaves out."""
    notes = [
        note
        for key, (fine, note) in _IGNORED.items()
        if section.get(key) is not None and section.get(key) != fine
    ]
    schedule = section.get("schedule")
    if isinstance(schedule, dict) and str(schedule.get("type", "")).lower() == "reduce_on_plateau":
        notes.append(
            "the reduce_on_plateau schedule is not applied in a cluster run (the "
            "learning rate stays constant)"
        )
    return notes


# ------------------------------------------------------------------------ agreement


def fingerprint(project: dict[str, Any]) -> int:
    """A 48-bit hash of what every worker must agree on: graph, data and training
    (without epochs, device and the cluster's addresses, which may differ)."""
    training = {
        k: v
        for k, v in (project.get("training") or {}).items()
        if k not in ("epochs", "device", "cluster")
    }
    cluster = (project.get("training") or {}).get("cluster") or {}
    training["global_batch_size"] = (
        cluster.get("global_batch_size") if isinstance(cluster, dict) else None
    )
    text = json.dumps(
        {"graph": project.get("graph"), "data": project.get("data"), "training": training},
        sort_keys=True,
        default=str,
    )
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def global_batch_of(section: dict[str, Any]) -> int:
    """The cluster's ``global_batch_size``, else the section's ``batch_size``."""
    cluster = section.get("cluster") or {}
    value = cluster.get("global_batch_size") if isinstance(cluster, dict) else None
    return int(value) if value else batch_size_of(section)


def make_strategy(timeout_s: float) -> Any:
    """A MultiWorkerMirroredStrategy from ``TF_CONFIG``, every collective bounded by
    ``timeout_s`` (a peer that stops answering raises instead of hanging)."""
    import tensorflow as tf

    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_s)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def _chief_weight(dtype: Any) -> Any:
    """1 on the first replica of the chief, 0 everywhere else (in replica context)."""
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    return tf.cast(tf.equal(ctx.replica_id_in_sync_group, 0), dtype)


def from_chief(strategy: Any, values: list[Any]) -> list[Any]:
    """The chief's ``values`` (tensors or variables), on every worker (a SUM in which
    only the chief's first replica contributes)."""
    import tensorflow as tf

    if not values:
        return []

    def part() -> list[Any]:
        out = []
        for v in values:
            t = (
                tf.constant(v, tf.float64)
                if isinstance(v, (int, float))
                else tf.convert_to_tensor(v)
            )
            t = tf.cast(t, tf.float64) if not t.dtype.is_floating else t
            out.append(t * _chief_weight(t.dtype))
        return out

    @tf.function
    def run() -> list[Any]:
        per_replica = strategy.run(part)
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, p, axis=None) for p in per_replica]

    return list(run())


_TOTALS: dict[int, Any] = {}


def total(strategy: Any, values: list[float]) -> list[float]:
    """``values`` summed over the workers (each worker's first replica contributes)."""
    import tensorflow as tf

    run = _TOTALS.get(id(strategy))
    if run is None:
        n_workers = int(getattr(strategy.extended, "_num_workers", 1) or 1)
        per_worker = max(1, strategy.num_replicas_in_sync // n_workers)

        def part(local: Any) -> Any:
            ctx = tf.distribute.get_replica_context()
            first = tf.equal(ctx.replica_id_in_sync_group % per_worker, 0)
            return local * tf.cast(first, tf.float64)

        @tf.function(reduce_retracing=True)
        def run(local: Any) -> Any:
            per_replica = strategy.run(part, args=(local,))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        _TOTALS[id(strategy)] = run
    return [float(v) for v in run(tf.constant(values, tf.float64)).numpy()]


def sync_from_chief(strategy: Any, variables: list[Any]) -> None:
    """Give every worker the chief's values of ``variables`` (weights, optimizer state)."""
    values = from_chief(strategy, [v.value for v in variables])
    for var, value in zip(variables, values):
        var.assign(value if value.dtype == var.dtype else _cast(value, var.dtype))


def _cast(value: Any, dtype: Any) -> Any:
    import tensorflow as tf

    return tf.cast(tf.round(value) if not tf.as_dtype(dtype).is_floating else value, dtype)


# --------------------------------------------------------------------------- the steps


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


# ------------------------------------------------------------------------------ the run


def train_worker(
    project: dict[str, Any],
    run_dir: Path,
    *,
    is_chief: bool,
    addresses: list[str],
    epochs: int | None,
    resume: bool,
    base_dir: Any,
    device: str | None,
    emit: Emit,
    stop_requested: Callable[[], bool],
) -> Event:
    """This worker's part of a cluster run; TF_CONFIG is already set.

    Args:
        project: The project snapshot (``Project.to_dict()``).
        run_dir: The run directory (the chief's) or a temporary folder (the others).
        is_chief: This is worker 0, which writes the run directory.
        addresses: Every worker's ``host:port``, in index order (for messages).
        epochs: Epochs to train (with ``resume``: how many more); the chief's wins.
        resume: Continue the chief's ``run_dir`` from ``checkpoints/last.keras``.
        base_dir: Folder relative data paths are resolved against.
        device: ``cpu`` hides this machine's GPUs; otherwise all of them are used.
        emit: Receives the events (the chief's are the run's events).
        stop_requested: True once the user asked this worker to stop; every worker
            then stops after the current epoch.

    Returns:
        The ``done`` event (``error`` events are raised as :class:`TrainingError`).
    """
    section = dict(project.get("training") or {})
    timeout_s = float((section.get("cluster") or {}).get("timeout_s", 60))
    _configure_devices(device or section.get("device"))
    strategy = make_strategy(timeout_s)
    n_workers = int(getattr(strategy.extended, "_num_workers", 1) or 1)

    state = {}
    done_before = 0
    if is_chief:
        state = runs.prepare_run_dir(run_dir, project, resume)
        done_before = int(state.get("epoch", 0)) if resume else 0
    wanted = _total_epochs(section, epochs, resume, done_before, run_dir) if is_chief else 0
    # The chief decides epochs and start; every worker checks its project is the chief's.
    own = float(fingerprint(project))
    agreed = [float(v) for v in from_chief(strategy, [float(wanted), float(done_before), own])]
    total_epochs, done_before = int(agreed[0]), int(agreed[1])
    flags = [0.0] * n_workers
    index = _task_index()
    flags[index] = 1.0 if agreed[2] != own else 0.0
    flags = total(strategy, flags)
    odd = [
        addresses[i] if i < len(addresses) else f"worker {i}" for i, f in enumerate(flags) if f > 0
    ]
    if odd:
        raise TrainingError(
            "config",
            f"the project on {', '.join(odd)} differs from the chief's (graph, "
            "data or training settings)",
            "Copy the chief's project file to every machine.",
        )
    if total_epochs < 1:
        raise TrainingError(
            "config",
            f"the run in {run_dir} has nothing left to train",
            "Ask for more epochs (--epochs N trains N more).",
        )
    emit({"event": "_joined", "workers": n_workers})
    return _loop(
        project,
        section,
        run_dir,
        strategy,
        is_chief,
        total_epochs,
        done_before,
        resume,
        state,
        base_dir,
        emit,
        stop_requested,
        n_workers,
    )


def unresponsive_peers(timeout_s: float = 2.0) -> list[int]:
    """Indices (chief first) of the other workers that fail TensorFlow's own health
    check within ``timeout_s`` each: after a collective timed out, the hung ones."""
    import os

    from tensorflow.python.eager import context

    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster = config.get("cluster") or {}
    tasks = [("chief", i) for i in range(len(cluster.get("chief") or []))]
    tasks += [("worker", i) for i in range(len(cluster.get("worker") or []))]
    me = _task_index()
    down = []
    for index, (job, task) in enumerate(tasks):
        if index == me:
            continue
        try:
            context.context().check_collective_ops_peer_health(
                f"/job:{job}/replica:0/task:{task}", timeout_in_ms=int(timeout_s * 1000)
            )
        except Exception:
            down.append(index)
    return down


def _task_index() -> int:
    """This process's index in the cluster (chief first), from TF_CONFIG."""
    import os

    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task") or {}
    chiefs = len((config.get("cluster") or {}).get("chief") or [])
    return int(task.get("index", 0)) + (chiefs if task.get("type") == "worker" else 0)


def _total_epochs(
    section: dict[str, Any], epochs: int | None, resume: bool, done_before: int, run_dir: Path
) -> int:
    if not resume:
        return epochs if epochs is not None else epochs_of(section)
    extra = epochs if epochs is not None else epochs_of(section) - done_before
    if extra < 1:
        raise TrainingError(
            "config",
            f"the run in {run_dir} has already trained {done_before} of "
            f"{epochs_of(section)} epochs",
            "Ask for more epochs (--epochs N trains N more).",
        )
    return done_before + extra


def _configure_devices(device: str | None) -> None:
    """This worker's devices (a fresh process): ``cpu`` hides the GPUs, ``gpu:N`` keeps
    one, else all; GPU memory grows as needed (several workers may share a GPU)."""
    import tensorflow as tf

    spec = (device or "auto").strip().lower()
    gpus = tf.config.list_physical_devices("GPU")
    try:
        visible = (
            []
            if spec == "cpu"
            else [gpus[int(spec[4:])]]
            if spec.startswith("gpu:") and gpus
            else gpus
        )
        if gpus:
            tf.config.set_visible_devices(visible, "GPU")
        for gpu in visible:
            tf.config.experimental.set_memory_growth(gpu, True)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise TrainingError(
            "config",
            f"device '{device}' cannot be used here: {exc}",
            'Use device "cpu" or "auto" for a cluster run.',
        ) from exc


def _loop(
    project: dict[str, Any],
    section: dict[str, Any],
    run_dir: Path,
    strategy: Any,
    is_chief: bool,
    total_epochs: int,
    done_before: int,
    resume: bool,
    state: dict[str, Any],
    base_dir: Any,
    emit: Emit,
    stop_requested: Callable[[], bool],
    n_workers: int,
) -> Event:
    import keras
    import numpy as np

    from engine.data.dataset import check_fit, labels_for_loss
    from engine.train.fit import build_snapshot_model, load_dataset, prepare_start

    for note in ignored_settings(section) if is_chief else []:
        emit({"event": "warning", "message": note})
    seed = int(section.get("seed") or 0)
    keras.utils.set_random_seed(seed)
    ds = load_dataset(project, base_dir)
    loss = loss_name(section, ds.task, ds.num_classes)
    global_batch = global_batch_of(section)
    n_train = len(ds.x_train)
    steps = max(1, math.ceil(n_train / global_batch))
    loss_params = section.get("loss") if isinstance(section.get("loss"), dict) else {}
    from_logits = bool(loss_params.get("from_logits"))
    kind = metric_kind(loss, ds.task)
    metrics = _metric_names(section, kind, emit if is_chief else None)

    # Every worker creates the same variables in the same order (variable creation
    # is itself a collective); a resumed chief then copies its checkpoint in.
    with strategy.scope():
        model = build_snapshot_model(project)
        problems = check_fit(ds, model, loss)
        if problems:
            raise TrainingError(
                "data",
                "; ".join(problems),
                "Match the model's input and output layers to the data.",
            )
        model.compile(
            optimizer=make_optimizer(section, steps, total_epochs), loss=make_loss(section, loss)
        )
        model.optimizer.build(model.trainable_variables)
        loss_obj = make_loss(section, loss)
        loss_obj.reduction = None  # per-sample values; the step scales them
    variables = list(model.variables) + list(model.optimizer.variables)
    notes = []
    if resume and is_chief:
        _load_checkpoint(run_dir / "checkpoints" / "last.keras", variables)
    elif not resume:  # the chief's imported weights reach every worker through the sync
        notes = prepare_start(model, project, base_dir, ds.x_train, emit, weights=is_chief)
    sync_from_chief(strategy, variables)
    for layer in model.layers:  # a Normalization's mean and variance follow its variables
        if type(layer).__name__ == "Normalization":
            layer.finalize_state()

    y_train = labels_for_loss(ds.y_train, loss, ds.num_classes)
    has_val = ds.x_val is not None and len(ds.x_val) > 0
    y_val = labels_for_loss(ds.y_val, loss, ds.num_classes) if has_val else None
    es = section.get("early_stopping")
    es = {} if es is True else es if isinstance(es, dict) else None
    monitor = (es or {}).get("monitor") or ("val_loss" if has_val else "loss")
    if not has_val and monitor.startswith("val_"):
        if is_chief:
            emit(
                {
                    "event": "warning",
                    "message": f"there is no validation split, so "
                    f"{monitor} cannot be watched; watching {monitor[4:]} instead",
                }
            )
        monitor = monitor[4:]
    cluster = section.get("cluster") or {}
    checkpoints = Checkpoints(
        run_dir / "checkpoints",
        monitor,
        emit if is_chief else None,
        best=state.get("best") if state.get("monitor") == monitor else None,
        interval_s=float(cluster.get("checkpoint_interval_s", CHECKPOINT_INTERVAL_S)),
    )
    early = EarlyStop(es, monitor) if es is not None else None
    history = (
        {k: v[:done_before] for k, v in runs.read_history(run_dir).items()}
        if resume and is_chief
        else {}
    )
    tensorboard = (
        runs.TensorBoardWriter(run_dir / "logs")
        if is_chief and section.get("tensorboard", True)
        else None
    )
    shuffle = bool(section.get("shuffle", True))
    steps_obj = Steps(strategy, model, loss_obj, kind, global_batch, from_logits)
    val_data = steps_obj.dataset(ds.x_val, y_val, global_batch) if has_val else None

    emit(
        {
            "event": "started",
            "devices": _device_names(strategy, n_workers),
            "total_params": int(model.count_params()),
            "steps_per_epoch": steps,
            "epochs": total_epochs,
            "initial_epoch": done_before,
            "samples": n_train,
            "batch_size": global_batch,
            "workers": n_workers,
            "notes": notes,
        }
    )
    stopped, epochs_done = False, done_before
    progress = Progress(emit, is_chief, steps, total_epochs, global_batch, kind, metrics)
    for epoch in range(done_before, total_epochs):
        start = time.monotonic()
        progress.begin(epoch)
        order = np.random.default_rng(seed + epoch).permutation(n_train) if shuffle else None
        train_sums = train_epoch(steps_obj, ds.x_train, y_train, global_batch, order, progress.step)
        if not math.isfinite(train_sums[0]):
            raise TrainingError(
                "nan",
                f"the loss became {train_sums[0] / max(train_sums[1], 1)} at epoch "
                f"{epoch + 1}; training stopped",
                "Lower the learning rate, add gradient clipping (clipnorm), or check the "
                "data for extreme values.",
            )
        logs = logs_from(kind, train_sums, metrics)
        if val_data is not None:
            val_sums = [0.0] * len(train_sums)
            for batch in val_data:
                val_sums = [
                    a + float(b) for a, b in zip(val_sums, steps_obj.eval_step(batch).numpy())
                ]
                progress.beat()
            logs.update(logs_from(kind, val_sums, metrics, "val_"))
        lr = _current_lr(model)
        if lr is not None:
            logs["learning_rate"] = lr
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        epochs_done = epoch + 1
        if not is_chief:
            emit({"event": "_epoch", "epoch": epochs_done})
        if is_chief:
            runs.write_history(run_dir, history)
            if tensorboard is not None:
                tensorboard(epoch + 1, logs)
            emit(
                {
                    "event": "epoch",
                    "epoch": epoch + 1,
                    "logs": logs,
                    "time_s": round(time.monotonic() - start, 3),
                }
            )
        # Every worker saves (TF's advice); only the chief's files are the run's.
        checkpoints.epoch_end(model, epochs_done, logs.get(monitor))
        # The logs are global, so every worker takes the same early-stopping decision.
        if early is not None and early.should_stop(model, epoch, logs.get(monitor)):
            break
        # a stop asked for on any worker ends the run on all, after this epoch
        if total(strategy, [1.0 if stop_requested() else 0.0])[0] > 0:
            stopped = True
            break
    emit({"event": "_finished"})  # no collective after this: peers may leave
    checkpoints.flush(model)
    if tensorboard is not None:
        tensorboard.close()
    model_path = run_dir / "model.keras"
    runs.save_model_atomic(model, model_path)
    digest = weights_digest(model)
    if not is_chief:
        return {
            "event": "done",
            "run_dir": str(run_dir),
            "model": str(model_path),
            "history": history,
            "stopped": stopped,
            "epochs_done": epochs_done,
            "weights_sha256": digest,
        }
    runs.write_history(run_dir, history)
    evaluation = _evaluate(model_path, ds, loss, global_batch, run_dir, from_logits)
    runs.write_status(run_dir, "stopped" if stopped else "done", epochs_done=epochs_done)
    return {
        "event": "done",
        "run_dir": str(run_dir),
        "model": str(model_path),
        "history": history,
        "evaluation": evaluation,
        "stopped": stopped,
        "epochs_done": epochs_done,
        "workers": n_workers,
        "weights_sha256": digest,
    }


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
    """

    def __init__(
        self,
        folder: Path,
        monitor: str,
        emit: Emit | None,
        best: float | None = None,
        interval_s: float = 30.0,
    ) -> None:
        self.folder, self.monitor, self.emit = folder, monitor, emit
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
        runs.write_json_atomic(
            self.folder / "state.json",
            {
                "epoch": self.unsaved_epoch,
                "monitor": self.monitor,
                "mode": self.mode,
                "best": self.best,
            },
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


def _load_checkpoint(path: Path, variables: list[Any]) -> None:
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
    sums: list[float] | None = None
    for step, batch in enumerate(steps_obj.dataset(x, y, global_batch, order), 1):
        out = [float(v) for v in steps_obj.train_step(batch).numpy()]
        sums = out if sums is None else [a + b for a, b in zip(sums, out)]
        on_step(step, sums)
    return sums or [0.0, 0.0, 0.0, 0.0]


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


def _metric_names(section: dict[str, Any], kind: str, warn: Emit | None) -> tuple[str, ...]:
    """The metrics a cluster run reports: accuracy for classification, mae/mse/rmse
    for regression when asked; others are left out with a warning."""
    from engine.train.fit import METRICS, find_key, split_typed

    wanted = []
    for m in section.get("metrics", []):
        name = find_key(split_typed(m, "metric")[0], METRICS)
        if name:
            wanted.append(name)
    if kind != "regression":
        out = ("accuracy",)
    else:
        out = tuple(n for n in wanted if n in ("mae", "mse", "rmse"))
    left = [n for n in wanted if n not in out]
    if left and warn is not None:
        warn(
            {
                "event": "warning",
                "message": f"metric(s) {', '.join(left)} are not computed "
                "in a cluster run; loss and " + (", ".join(out) or "nothing else") + " are",
            }
        )
    return out


def _current_lr(model: Any) -> float | None:
    import keras

    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:
        return None


def _device_names(strategy: Any, n_workers: int) -> list[str]:
    local = [d.split("device:")[-1] for d in strategy.extended.worker_devices]
    return [f"{n_workers} workers x {', '.join(local)}"]


def _evaluate(
    model_path: Path, ds: Any, loss: str, batch: int, run_dir: Path, from_logits: bool
) -> dict[str, Any]:
    """evaluation.json from the saved model, outside the strategy (the chief alone)."""
    import keras

    from engine.data.dataset import labels_for_loss

    model = keras.models.load_model(model_path)
    return runs.evaluate(
        model,
        ds,
        loss,
        batch,
        labels_for_loss=labels_for_loss,
        run_dir=run_dir,
        from_logits=from_logits,
    )
