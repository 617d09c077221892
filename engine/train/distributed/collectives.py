"""The strategy of a cluster run and what the workers tell each other through it.

:func:`make_strategy` makes the ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``
(set before TensorFlow starts); :func:`from_chief`, :func:`total` and
:func:`sync_from_chief` are the collectives the loop uses outside the training
steps; :func:`unresponsive_peers` names the workers that stopped answering.

TensorFlow is imported inside functions only.
"""

from __future__ import annotations

import json
import os
from typing import Any

from engine.train.fit import TrainingError


def make_strategy(timeout_s: float) -> Any:
    """A MultiWorkerMirroredStrategy from ``TF_CONFIG``, every collective bounded by
    ``timeout_s`` (a peer that stops answering raises instead of hanging)."""
    import tensorflow as tf

    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_s)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def configure_devices(device: str | None) -> None:
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


def task_index() -> int:
    """This process's index in the cluster (chief first), from TF_CONFIG."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task") or {}
    chiefs = len((config.get("cluster") or {}).get("chief") or [])
    return int(task.get("index", 0)) + (chiefs if task.get("type") == "worker" else 0)


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


def unresponsive_peers(timeout_s: float = 2.0) -> list[int]:
    """Indices (chief first) of the other workers that fail TensorFlow's own health
    check within ``timeout_s`` each: after a collective timed out, the hung ones."""
    from tensorflow.python.eager import context

    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster = config.get("cluster") or {}
    tasks = [("chief", i) for i in range(len(cluster.get("chief") or []))]
    tasks += [("worker", i) for i in range(len(cluster.get("worker") or []))]
    me = task_index()
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
