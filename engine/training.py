"""The training section of a project -> compile + fit, reported as plain event dicts.

The ``training`` section of a project file (all keys optional)::

    {"optimizer": {"type": "Adam", "learning_rate": 0.001, "clipnorm": 1.0},
     "schedule": {"type": "cosine", "warmup_epochs": 1},
     "loss": "sparse_categorical_crossentropy",      # or {"type": ..., "label_smoothing": 0.1}
     "metrics": ["accuracy", {"type": "top_k", "k": 3}],
     "batch_size": 32, "epochs": 10, "seed": 0,
     "early_stopping": {"monitor": "val_loss", "patience": 5, "restore_best_weights": true},
     "class_weight": "balanced",                     # or {"0": 1.0, "1": 3.0}
     "precision": "float32",                         # "mixed_float16", "mixed_bfloat16"
     "jit_compile": "auto", "steps_per_execution": 1,
     "device": "auto",                               # "cpu", "gpu:0", "all"
     "tensorboard": true}

Learning-rate schedules (lengths in epochs, ``*_epochs``, or in optimizer steps,
``*_steps``; without one a schedule spans the whole run):

- ``step``: ``factor`` (0.1) every ``every_epochs``; or ``boundaries_epochs`` with
  ``values`` (one learning rate more than boundaries).
- ``exponential``: ``decay_rate`` (0.96) per ``decay_epochs`` (1), ``staircase``.
- ``polynomial``: down to ``end_learning_rate`` (1e-4) over ``decay_epochs``, ``power``.
- ``cosine``: optional linear warm-up from ``warmup_start`` (0) over ``warmup_epochs``,
  then cosine decay to ``alpha`` x the learning rate.
- ``reduce_on_plateau``: ``factor`` (0.1) after ``patience`` (5) epochs without
  improvement of ``monitor``; ``min_delta``, ``min_lr``, ``cooldown``.

:func:`training_problems` checks a section without TensorFlow;
:func:`run_training` runs one training in the calling process (the worker process
calls it) and reports through ``emit``. TensorFlow and Keras are imported inside
functions only.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

from engine import runs

Event = dict[str, Any]
Emit = Callable[[Event], None]

# ----------------------------------------------------------------------------- the tables

OPTIMIZER_COMMON = ("learning_rate", "weight_decay", "clipnorm", "clipvalue",
                    "global_clipnorm", "use_ema", "ema_momentum")
"""Keras arguments every optimizer takes."""
_OPTIMIZER_COMMON = OPTIMIZER_COMMON  # old name, still imported by gui/training/training_panel.py
OPTIMIZERS: dict[str, tuple[str, ...]] = {
    "SGD": ("momentum", "nesterov"),
    "Adam": ("beta_1", "beta_2", "epsilon", "amsgrad"),
    "AdamW": ("beta_1", "beta_2", "epsilon", "amsgrad"),
    "RMSprop": ("rho", "momentum", "epsilon", "centered"),
    "Adagrad": ("initial_accumulator_value", "epsilon"),
    "Adadelta": ("rho", "epsilon"),
    "Nadam": ("beta_1", "beta_2", "epsilon"),
    "Adamax": ("beta_1", "beta_2", "epsilon"),
    "Lion": ("beta_1", "beta_2"),
}
"""Optimizer type -> its own Keras constructor arguments (all also take the common ones)."""

SCHEDULES: dict[str, tuple[str, ...]] = {
    "constant": (),
    "step": ("factor", "every_epochs", "every_steps", "boundaries_epochs", "boundaries_steps",
             "values"),
    "exponential": ("decay_rate", "decay_epochs", "decay_steps", "staircase"),
    "polynomial": ("end_learning_rate", "power", "decay_epochs", "decay_steps", "cycle"),
    "cosine": ("alpha", "warmup_epochs", "warmup_steps", "warmup_start", "decay_epochs",
               "decay_steps"),
    "reduce_on_plateau": ("monitor", "factor", "patience", "min_delta", "min_lr", "cooldown"),
}
"""Learning-rate schedule type -> its keys."""

LOSSES: dict[str, tuple[str, ...]] = {
    "categorical_crossentropy": ("from_logits", "label_smoothing"),
    "sparse_categorical_crossentropy": ("from_logits",),
    "binary_crossentropy": ("from_logits", "label_smoothing"),
    "mse": (),
    "mae": (),
    "huber": ("delta",),
}
"""Loss name -> its keys (label smoothing only where Keras supports it)."""

LOSS_ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae",
                "huber_loss": "huber"}
"""Other names of the losses in :data:`LOSSES` (lower case)."""

METRICS: dict[str, tuple[str, ...]] = {
    "accuracy": (), "top_k": ("k",), "precision": (), "recall": (), "auc": (),
    "mae": (), "mse": (), "rmse": (),
}
"""Metric name -> its keys."""

_REGRESSION_METRICS = ("mae", "mse", "rmse")

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")

SECTION_KEYS = ("optimizer", "schedule", "loss", "metrics", "batch_size", "epochs", "seed",
                "early_stopping", "class_weight", "precision", "jit_compile",
                "steps_per_execution", "device", "tensorboard", "shuffle", "cluster")
"""Every key a training section may hold."""

_EARLY_STOPPING_KEYS = ("monitor", "patience", "min_delta", "restore_best_weights",
                        "start_from_epoch")

# Number rules: name -> (low, high, low_open, high_open, integer).
_RULES: dict[str, tuple[float | None, float | None, bool, bool, bool]] = {
    "learning_rate": (0, None, True, False, False),
    "weight_decay": (0, None, False, False, False),
    "clipnorm": (0, None, True, False, False),
    "clipvalue": (0, None, True, False, False),
    "global_clipnorm": (0, None, True, False, False),
    "ema_momentum": (0, 1, False, True, False),
    "momentum": (0, 1, False, True, False),
    "beta_1": (0, 1, False, True, False),
    "beta_2": (0, 1, False, True, False),
    "rho": (0, 1, False, True, False),
    "epsilon": (0, None, True, False, False),
    "initial_accumulator_value": (0, None, False, False, False),
    "factor": (0, 1, True, True, False),
    "every_epochs": (0, None, True, False, False),
    "every_steps": (1, None, False, False, True),
    "decay_rate": (0, None, True, False, False),
    "decay_epochs": (0, None, True, False, False),
    "decay_steps": (1, None, False, False, True),
    "end_learning_rate": (0, None, False, False, False),
    "power": (0, None, True, False, False),
    "alpha": (0, 1, False, False, False),
    "warmup_epochs": (0, None, False, False, False),
    "warmup_steps": (0, None, False, False, True),
    "warmup_start": (0, None, False, False, False),
    "patience": (0, None, False, False, True),
    "min_delta": (0, None, False, False, False),
    "min_lr": (0, None, False, False, False),
    "cooldown": (0, None, False, False, True),
    "start_from_epoch": (0, None, False, False, True),
    "label_smoothing": (0, 1, False, True, False),
    "delta": (0, None, True, False, False),
    "k": (1, None, False, False, True),
    "batch_size": (1, None, False, False, True),
    "epochs": (1, None, False, False, True),
    "steps_per_execution": (1, None, False, False, True),
}
_BOOLS = ("nesterov", "amsgrad", "centered", "use_ema", "staircase", "cycle", "from_logits",
          "restore_best_weights", "tensorboard", "shuffle")


class TrainingError(Exception):
    """A run that cannot go on; becomes an ``error`` event.

    Attributes:
        kind: ``nan``, ``oom``, ``data``, ``died``, ``config`` or ``internal``.
        message: What went wrong, in plain words.
        hint: What to try next.
    """

    def __init__(self, kind: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.kind, self.message, self.hint = kind, message, hint

    def event(self) -> Event:
        return {"event": "error", "kind": self.kind, "message": self.message, "hint": self.hint}


# ------------------------------------------------------------------------ checking sections

def _number_problem(where: str, value: Any, name: str) -> str | None:
    low, high, low_open, high_open, integer = _RULES[name]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return None
    kind = "a whole number" if integer else "a number"
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    return f"{where} must be {kind} {' and '.join(bounds)}; got {value!r}"


def _check_keys(where: str, params: dict[str, Any], allowed: tuple[str, ...]) -> list[str]:
    problems = []
    for key, value in params.items():
        if key == "type":
            continue
        if key not in allowed:
            known = ", ".join(allowed) or "no parameters"
            problems.append(f"{where} has no parameter '{key}'; it takes {known}")
        elif key in _RULES:
            p = _number_problem(f"{where} {key}", value, key)
            if p:
                problems.append(p)
        elif key in _BOOLS and not isinstance(value, bool):
            problems.append(f"{where} {key} must be true or false; got {value!r}")
    return problems


def find_key(name: Any, table: dict[str, Any], aliases: dict[str, str] | None = None) -> str | None:
    """The table key matching ``name`` case-insensitively, or None."""
    if not isinstance(name, str):
        return None
    lowered = {k.lower(): k for k in table}
    key = name.strip().lower()
    key = (aliases or {}).get(key, key)
    return lowered.get(key)


def split_typed(value: Any, what: str) -> tuple[Any, dict[str, Any], str | None]:
    """Split ``"Name"`` or ``{"type": "Name", ...}`` into (name, params, problem)."""
    if isinstance(value, str):
        return value, {}, None
    if isinstance(value, dict):
        return value.get("type"), value, None
    return None, {}, f"{what} must be a name or an object with a \"type\"; got {value!r}"


def training_problems(section: Any) -> list[str]:
    """Everything wrong with a training section, without TensorFlow.

    Args:
        section: The project's ``training`` dict.

    Returns:
        Plain messages naming the key and the bad value (empty when all is well).
    """
    if not isinstance(section, dict):
        return [f"the training section must be an object; got {section!r}"]
    problems = []
    for key in section:
        if key not in SECTION_KEYS:
            problems.append(f"unknown key '{key}'; known keys: {', '.join(SECTION_KEYS)}")

    name, params, p = split_typed(section.get("optimizer", "Adam"), "optimizer")
    opt = find_key(name, OPTIMIZERS)
    if p:
        problems.append(p)
    elif opt is None:
        problems.append(f"optimizer {name!r} is unknown; choose one of {', '.join(OPTIMIZERS)}")
    else:
        problems += _check_keys(f"optimizer {opt}", params,
                                OPTIMIZER_COMMON + OPTIMIZERS[opt])

    if section.get("schedule") is not None:
        problems += _schedule_problems(section["schedule"])

    if section.get("loss") is not None:
        name, params, p = split_typed(section["loss"], "loss")
        loss = find_key(name, LOSSES, LOSS_ALIASES)
        if p:
            problems.append(p)
        elif loss is None:
            problems.append(f"loss {name!r} is unknown; choose one of {', '.join(LOSSES)}")
        elif loss == "sparse_categorical_crossentropy" and "label_smoothing" in params:
            problems.append("loss sparse_categorical_crossentropy has no label_smoothing in "
                            "Keras; use categorical_crossentropy (one-hot labels) to smooth")
        else:
            problems += _check_keys(f"loss {loss}", params, LOSSES[loss])

    metrics = section.get("metrics", [])
    if not isinstance(metrics, list):
        problems.append(f"metrics must be a list; got {metrics!r}")
        metrics = []
    for m in metrics:
        name, params, p = split_typed(m, "each metric")
        metric = find_key(name, METRICS)
        if p:
            problems.append(p)
        elif metric is None:
            problems.append(f"metric {name!r} is unknown; choose from {', '.join(METRICS)}")
        else:
            problems += _check_keys(f"metric {metric}", params, METRICS[metric])

    for key in ("batch_size", "epochs", "steps_per_execution"):
        if key in section:
            p = _number_problem(key, section[key], key)
            if p:
                problems.append(p)
    seed = section.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        problems.append(f"seed must be a whole number >= 0 or null; got {seed!r}")
    for key in ("tensorboard", "shuffle"):
        if key in section and not isinstance(section[key], bool):
            problems.append(f"{key} must be true or false; got {section[key]!r}")
    if section.get("precision", "float32") not in PRECISIONS:
        problems.append(f"precision must be one of {', '.join(PRECISIONS)}; "
                        f"got {section['precision']!r}")
    if section.get("jit_compile", "auto") not in (True, False, "auto"):
        problems.append(f"jit_compile must be true, false or \"auto\"; "
                        f"got {section['jit_compile']!r}")
    p = device_problem(section.get("device"))
    if p:
        problems.append(p)

    es = section.get("early_stopping")
    if es is not None and not isinstance(es, bool):
        if not isinstance(es, dict):
            problems.append(f"early_stopping must be true, false or an object; got {es!r}")
        else:
            problems += _check_keys("early_stopping", es, _EARLY_STOPPING_KEYS)
            if "monitor" in es and not isinstance(es["monitor"], str):
                problems.append(f"early_stopping monitor must be a metric name such as "
                                f"'val_loss'; got {es['monitor']!r}")

    problems += _class_weight_problems(section.get("class_weight"))
    from engine.distributed import cluster_problems

    problems += cluster_problems(section.get("cluster"))
    return problems


def _schedule_problems(schedule: Any) -> list[str]:
    name, params, p = split_typed(schedule, "schedule")
    if p:
        return [p]
    kind = find_key(name, SCHEDULES)
    if kind is None:
        return [f"schedule {name!r} is unknown; choose one of {', '.join(SCHEDULES)}"]
    problems = _check_keys(f"schedule {kind}", params, SCHEDULES[kind])
    if kind == "step" and ("boundaries_epochs" in params or "boundaries_steps" in params):
        bounds = params.get("boundaries_epochs", params.get("boundaries_steps"))
        values = params.get("values")
        if not isinstance(bounds, list) or not all(
                isinstance(b, (int, float)) and not isinstance(b, bool) and b > 0
                for b in bounds) or sorted(bounds) != bounds:
            problems.append(f"schedule step boundaries must be an increasing list of numbers "
                            f"> 0; got {bounds!r}")
        elif not isinstance(values, list) or len(values) != len(bounds) + 1 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                for v in values):
            problems.append(f"schedule step values must be {len(bounds) + 1} learning rates "
                            f"> 0 (one more than the boundaries); got {values!r}")
    if kind == "reduce_on_plateau" and "monitor" in params \
            and not isinstance(params["monitor"], str):
        problems.append(f"schedule reduce_on_plateau monitor must be a metric name; "
                        f"got {params['monitor']!r}")
    return problems


def _class_weight_problems(cw: Any) -> list[str]:
    if cw is None or cw == "balanced":
        return []
    if not isinstance(cw, dict):
        return [f"class_weight must be \"balanced\" or an object of class -> weight; "
                f"got {cw!r}"]
    problems = []
    for k, v in cw.items():
        if not str(k).isdigit():
            problems.append(f"class_weight keys must be class numbers (0, 1, ...); got {k!r}")
        elif not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            problems.append(f"class_weight for class {k} must be a number >= 0; got {v!r}")
    return problems


def device_problem(device: Any) -> str | None:
    """Why ``device`` is not a device request, or None (``auto``, ``cpu``, ``gpu:N``, ``all``)."""
    if device is None:
        return None
    if isinstance(device, str):
        d = device.strip().lower()
        if d in ("auto", "cpu", "gpu", "all") or (d.startswith("gpu:") and d[4:].isdigit()):
            return None
    return f"device must be \"auto\", \"cpu\", \"gpu:N\" or \"all\"; got {device!r}"


# --------------------------------------------------------------- section -> Keras objects

def epochs_of(section: dict[str, Any]) -> int:
    return int(section.get("epochs", 10))


def batch_size_of(section: dict[str, Any]) -> int:
    return int(section.get("batch_size", 32))


def _steps(params: dict[str, Any], base: str, steps_per_epoch: int,
           default: int | None = None) -> int | None:
    """A length in optimizer steps from ``<base>_steps`` or ``<base>_epochs``."""
    if f"{base}_steps" in params:
        return max(1, int(params[f"{base}_steps"]))
    if f"{base}_epochs" in params:
        return max(1, round(float(params[f"{base}_epochs"]) * steps_per_epoch))
    return default


def make_schedule(section: dict[str, Any], steps_per_epoch: int, epochs: int) -> Any:
    """The learning rate the optimizer gets: a float or a Keras schedule.

    Args:
        section: The training section.
        steps_per_epoch: Optimizer steps in one epoch.
        epochs: Epochs the run lasts (schedules without a length span all of them).
    """
    import keras

    _, opt = split_typed(section.get("optimizer", "Adam"), "optimizer")[:2]
    lr = float(opt.get("learning_rate", 0.001))
    name, params, _ = split_typed(section.get("schedule") or "constant", "schedule")
    kind = find_key(name, SCHEDULES)
    schedules = keras.optimizers.schedules
    total = max(1, steps_per_epoch * epochs)
    if kind in (None, "constant", "reduce_on_plateau"):
        return lr
    if kind == "step":
        if "values" in params:
            bounds = params.get("boundaries_steps")
            if bounds is None:
                bounds = [round(b * steps_per_epoch) for b in params["boundaries_epochs"]]
            return schedules.PiecewiseConstantDecay([int(b) for b in bounds],
                                                    [float(v) for v in params["values"]])
        every = _steps(params, "every", steps_per_epoch, default=max(1, total // 3))
        return schedules.ExponentialDecay(lr, every, float(params.get("factor", 0.1)),
                                          staircase=True)
    if kind == "exponential":
        return schedules.ExponentialDecay(
            lr, _steps(params, "decay", steps_per_epoch, steps_per_epoch),
            float(params.get("decay_rate", 0.96)), staircase=bool(params.get("staircase")))
    if kind == "polynomial":
        return schedules.PolynomialDecay(
            lr, _steps(params, "decay", steps_per_epoch, total),
            float(params.get("end_learning_rate", 0.0001)), float(params.get("power", 1.0)),
            cycle=bool(params.get("cycle")))
    # cosine, with an optional linear warm-up from warmup_start to the learning rate
    warmup = _steps(params, "warmup", steps_per_epoch, 0) or 0
    decay = _steps(params, "decay", steps_per_epoch, max(1, total - warmup))
    alpha = float(params.get("alpha", 0.0))
    if warmup:
        return schedules.CosineDecay(float(params.get("warmup_start", 0.0)), decay, alpha,
                                     warmup_target=lr, warmup_steps=warmup)
    return schedules.CosineDecay(lr, decay, alpha)


def make_optimizer(section: dict[str, Any], steps_per_epoch: int, epochs: int) -> Any:
    """A Keras optimizer for the section, its learning rate scheduled."""
    import keras

    name, params, _ = split_typed(section.get("optimizer", "Adam"), "optimizer")
    opt = find_key(name, OPTIMIZERS) or "Adam"
    kwargs = {k: v for k, v in params.items() if k not in ("type", "learning_rate")}
    kwargs["learning_rate"] = make_schedule(section, steps_per_epoch, epochs)
    return getattr(keras.optimizers, opt)(**kwargs)


def loss_name(section: dict[str, Any], task: str | None = None,
              num_classes: int | None = None) -> str:
    """The loss's canonical name; without one in the section, what suits the task."""
    if section.get("loss") is not None:
        name = split_typed(section["loss"], "loss")[0]
        return find_key(name, LOSSES, LOSS_ALIASES) or str(name)
    if task == "regression":
        return "mse"
    return "sparse_categorical_crossentropy"


def make_loss(section: dict[str, Any], name: str) -> Any:
    """A Keras loss object for ``name`` with the section's loss parameters."""
    import keras

    params = section.get("loss") if isinstance(section.get("loss"), dict) else {}
    kwargs = {k: v for k, v in params.items() if k != "type"}
    classes = {
        "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
        "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
        "binary_crossentropy": keras.losses.BinaryCrossentropy,
        "mse": keras.losses.MeanSquaredError,
        "mae": keras.losses.MeanAbsoluteError,
        "huber": keras.losses.Huber,
    }
    return classes[name](**kwargs)


def make_metrics(section: dict[str, Any], loss: str, num_classes: int | None,
                 warn: Emit | None = None, task: str | None = None) -> list[Any]:
    """Keras metric objects for the section, matched to the task and the label form.

    Metrics that mean nothing for the task (accuracy of a regression, mae of class
    indices) are left out with a warning. Precision, recall and AUC need labels of
    the prediction's shape; with sparse multi-class labels they are left out too —
    ``evaluation.json`` holds per-class precision and recall instead.
    """
    import keras

    sparse = loss == "sparse_categorical_crossentropy"
    out: list[Any] = []
    for m in section.get("metrics", []):
        name, params, _ = split_typed(m, "metric")
        metric = find_key(name, METRICS)
        unfit = (task == "regression" and metric not in _REGRESSION_METRICS) or (
            task == "classification" and sparse and metric in _REGRESSION_METRICS)
        if unfit:
            if warn:
                warn({"event": "warning", "message": f"metric {metric} does not apply to "
                      f"{task} with {loss} and was left out"})
            continue
        if metric == "accuracy":
            out.append("accuracy")
        elif metric == "top_k":
            k = int(params.get("k", 5))
            cls = (keras.metrics.SparseTopKCategoricalAccuracy if sparse
                   else keras.metrics.TopKCategoricalAccuracy)
            out.append(cls(k=k, name=f"top_{k}_accuracy"))
        elif metric in ("precision", "recall", "auc"):
            if sparse and (num_classes or 0) > 2:
                if warn:
                    warn({"event": "warning", "message": (
                        f"metric {metric} needs one-hot labels and was left out with "
                        "sparse_categorical_crossentropy; evaluation.json has per-class "
                        "precision and recall")})
                continue
            cls = {"precision": keras.metrics.Precision, "recall": keras.metrics.Recall,
                   "auc": keras.metrics.AUC}[metric]
            out.append(cls(name=metric))
        elif metric == "mae":
            out.append(keras.metrics.MeanAbsoluteError(name="mae"))
        elif metric == "mse":
            out.append(keras.metrics.MeanSquaredError(name="mse"))
        elif metric == "rmse":
            out.append(keras.metrics.RootMeanSquaredError(name="rmse"))
    return out


def class_weights(section: dict[str, Any], y: Any) -> dict[int, float] | None:
    """Keras ``class_weight``: ``balanced`` (n / (k * count)) or the section's dict."""
    import numpy as np

    cw = section.get("class_weight")
    if cw is None:
        return None
    if isinstance(cw, dict):
        return {int(k): float(v) for k, v in cw.items()}
    labels = np.asarray(y)
    labels = labels.argmax(-1) if labels.ndim > 1 and labels.shape[-1] > 1 else labels.ravel()
    labels = labels.astype(int)
    counts = np.bincount(labels)
    n, k = len(labels), int((counts > 0).sum())
    return {int(c): float(n / (k * counts[c])) for c in range(len(counts)) if counts[c]}


# ----------------------------------------------------------------------------- devices

@dataclass
class Placement:
    """Where a run computes.

    Attributes:
        devices: Device names shown to the user (``CPU:0``, ``GPU:0``, ...).
        strategy: A ``tf.distribute`` strategy when the run is mirrored, else None.
        device: The ``tf.device`` name for a single-device run.
    """

    devices: list[str]
    strategy: Any = None
    device: str | None = None

    def scope(self) -> contextlib.AbstractContextManager:
        import tensorflow as tf

        if self.strategy is not None:
            return self.strategy.scope()
        return tf.device(self.device) if self.device else contextlib.nullcontext()


def place(device: str | None, fresh_process: bool = False) -> Placement:
    """Turn a device request into a :class:`Placement`, looking at this machine's devices.

    Args:
        device: ``auto`` (a GPU if there is one), ``cpu``, ``gpu``/``gpu:N``, ``all``.
        fresh_process: TensorFlow has not touched a device yet, so other GPUs can be
            hidden and GPU memory set to grow (the worker process).

    Raises:
        TrainingError: ``config`` when the device does not exist here.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    spec = (device or "auto").strip().lower()
    if spec == "auto":
        spec = "gpu:0" if gpus else "cpu"
    if spec == "gpu":
        spec = "gpu:0"

    def configure(visible: list[Any]) -> None:
        if not fresh_process:
            return
        with contextlib.suppress(RuntimeError, ValueError):
            tf.config.set_visible_devices(visible, "GPU")
            for g in visible:
                tf.config.experimental.set_memory_growth(g, True)

    if spec == "cpu":
        configure([])
        return Placement(["CPU:0"], device="/CPU:0")
    if spec.startswith("gpu:"):
        index = int(spec[4:])
        if not gpus:
            raise TrainingError(
                "config", f"device '{device}' was asked for, but TensorFlow finds no GPU on "
                "this machine (only the CPU)",
                "Train on the CPU (device \"cpu\"), or install TensorFlow with GPU support: "
                "pip install 'layerlab[gpu]'.")
        if index >= len(gpus):
            raise TrainingError(
                "config", f"device '{device}' does not exist; this machine has {len(gpus)} "
                f"GPU(s): " + ", ".join(f"gpu:{i}" for i in range(len(gpus))),
                "Pick one of the GPUs listed, or \"all\".")
        configure([gpus[index]])
        name = "/GPU:0" if fresh_process else f"/GPU:{index}"
        return Placement([f"GPU:{index}"], device=name)
    # "all": every GPU, else every (logical) CPU device when there are several
    if gpus:
        configure(gpus)
        if len(gpus) == 1:
            return Placement(["GPU:0"], device="/GPU:0")
        strategy = tf.distribute.MirroredStrategy()
        return Placement([f"GPU:{i}" for i in range(len(gpus))], strategy=strategy)
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) > 1:
        strategy = tf.distribute.MirroredStrategy([c.name for c in cpus])
        return Placement([c.name.split("device:")[-1] for c in cpus], strategy=strategy)
    return Placement(["CPU:0"], device="/CPU:0")


# ---------------------------------------------------------------------------- controls

@dataclass
class Controls:
    """Requests from whoever watches the run (threading or multiprocessing Events).

    Attributes:
        stop: Set to stop at the next batch (everything trained so far is kept).
        pause: Set to hold the run at the next batch; clear to go on.
        stop_seen: Set by the run once it has noticed ``stop``, or once training is
            over (saving and evaluating then finish on their own).
        caller_alive: Returns False when the caller has gone; the run then stops.
    """

    stop: Any = field(default_factory=threading.Event)
    pause: Any = field(default_factory=threading.Event)
    stop_seen: Any = field(default_factory=threading.Event)
    caller_alive: Callable[[], bool] = lambda: True


BATCH_EVENT_INTERVAL_S = 0.05
"""At most one batch event per this many seconds (20 a second)."""

CHECKPOINT_INTERVAL_S = 30.0
"""Checkpoints are written at most this often (and always when training ends)."""


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

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            run = self.run
            run.step = step = batch + 1
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(loss):
                run.nan_at = (run.epoch + 1, step, float(loss))
                self.model.stop_training = True
                return
            ctl = run.controls
            if ctl.stop.is_set():
                ctl.stop_seen.set()
                run.stopped = True
                self.model.stop_training = True
                return
            if ctl.pause.is_set():
                self._hold(step)
                if run.stopped:
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
            run.emit({"event": "batch", "epoch": run.epoch + 1, "step": step,
                      "steps": run.steps, "logs": _plain(logs),
                      "samples_per_s": round(sps, 1),
                      "eta_s": round(left / run.step_rate, 1) if run.step_rate else None})

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
            runs.write_history(run.run_dir, run.history)
            run.tensorboard(epoch + 1, entry)
            event = {"event": "epoch", "epoch": epoch + 1, "logs": entry,
                     "time_s": round(time.monotonic() - run.epoch_start, 3)}
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
            improved = value is not None and math.isfinite(value) and (
                run.best is None or (value > run.best if run.mode == "max"
                                     else value < run.best))
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
            folder = run.run_dir / "checkpoints"
            runs.save_model_atomic(model, folder / "last.keras")
            run.emit({"event": "checkpoint", "path": str(folder / "last.keras")})
            if self.best_unsaved:
                current = None
                if self.best_weights is not None:
                    current = model.get_weights()
                    model.set_weights(self.best_weights)
                runs.save_model_atomic(model, folder / "best.keras")
                if current is not None:
                    model.set_weights(current)
                run.emit({"event": "checkpoint", "path": str(folder / "best.keras"),
                          "monitor": run.monitor, "value": run.best})
                self.best_unsaved, self.best_weights = False, None
            runs.write_json_atomic(folder / "state.json",
                                   {"epoch": self.unsaved_epoch, "monitor": run.monitor,
                                    "mode": run.mode, "best": run.best})
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
    except Exception:  # noqa: BLE001 - a learning rate we cannot read is just not shown
        return None


def monitor_mode(monitor: str) -> str:
    """``max`` for metrics that grow when better (accuracy, auc, ...), else ``min``."""
    name = monitor.lower()
    return "max" if any(w in name for w in ("acc", "auc", "precision", "recall")) else "min"


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
    epoch_start: float = 0.0
    mark: float = 0.0
    mark_step: int = 0
    step_rate: float = 0.0
    last_batch_event: float = 0.0
    stopped: bool = False
    nan_at: tuple[int, int, float] | None = None
    tensorboard: Callable[[int, dict[str, float]], None] = lambda epoch, logs: None


# ------------------------------------------------------------------------ one whole run

def run_training(project: dict[str, Any], run_dir: str | Path, *,
                 base_dir: str | Path | None = None, epochs: int | None = None,
                 device: str | None = None, resume: bool = False,
                 emit: Emit | None = None, controls: Controls | None = None,
                 fresh_process: bool = False) -> Event:
    """Train a project's model in this process and write its run directory.

    Args:
        project: The project as a plain dict (``Project.to_dict()``).
        run_dir: The run directory (created; with ``resume`` an existing run).
        base_dir: Folder relative data paths are resolved against.
        epochs: Epochs to train (the section's ``epochs`` if None). With ``resume``:
            how many more; None trains on up to the section's total.
        device: Overrides the section's ``device``.
        resume: Continue ``run_dir`` from ``checkpoints/last.keras``.
        emit: Receives every event (``started``, ``batch``, ``epoch``, ...).
        controls: Stop and pause requests.
        fresh_process: Nothing else in this process used TensorFlow (see :func:`place`).

    Returns:
        The final event: ``done`` or ``error``. Never raises for a failed run.
    """
    run_dir = Path(run_dir)
    problem = runs.run_dir_problem(run_dir, resume)
    if problem:  # leave someone else's run directory untouched
        final = TrainingError("config", problem, "Pick a new run directory.").event()
        if emit is not None:
            emit(final)
        return final
    log = runs.EventLog(run_dir)

    def send(event: Event) -> None:
        log.write(event)
        if emit is not None:
            emit(event)

    try:
        final = _train(project, run_dir, base_dir, epochs, device, resume, send,
                       controls or Controls(), fresh_process)
    except TrainingError as exc:
        final = exc.event()
    except Exception as exc:  # noqa: BLE001 - every failure becomes an error event
        final = classify_exception(exc)
        with contextlib.suppress(OSError):
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
    if final["event"] == "error":
        runs.write_status(run_dir, "failed", message=final["message"], kind=final["kind"])
    send(final)
    log.close()
    return final


def classify_exception(exc: BaseException) -> Event:
    """An ``error`` event for an exception raised while training."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    if isinstance(exc, MemoryError) or name == "ResourceExhaustedError" or "OOM" in str(exc):
        return TrainingError(
            "oom", f"out of memory: {text}",
            "Use a smaller batch_size, a smaller model, or precision \"mixed_float16\"."
        ).event()
    if "label value" in str(exc) or "labels" in text.lower() and "range" in text.lower():
        return TrainingError("data", f"the labels do not fit the model: {text}",
                             "Check the number of units of the output layer against the "
                             "number of classes.").event()
    return TrainingError("internal", f"training failed: {name}: {text}",
                         "See error.log in the run directory for the details.").event()


def _input_shape(project: dict[str, Any]) -> tuple | None:
    for node in (project.get("graph") or {}).get("nodes", []):
        if node.get("type") == "Input" and node.get("params", {}).get("shape") is not None:
            return tuple(node["params"]["shape"])
    return None


def load_dataset(project: dict[str, Any], base_dir: Any) -> Any:
    """The project's data (:func:`engine.data.load_data`), resized to its first Input.

    Raises:
        TrainingError: ``data`` when the data section or the data file is wrong.
    """
    from engine.data import DataError, load_data

    try:
        return load_data(project.get("data") or {}, base_dir, _input_shape(project))
    except DataError as exc:
        raise TrainingError("data", str(exc), "Fix the data section or the data file.") \
            from exc


def build_snapshot_model(project: dict[str, Any]) -> Any:
    """The Keras model of a project given as a plain dict (a run's snapshot).

    Raises:
        TrainingError: ``config`` when the graph cannot be built.
    """
    from engine.builder import build_model
    from engine.project import Project, ProjectError

    try:
        return build_model(Project.from_dict(project, source="project snapshot"))
    except (ProjectError, ValueError, TypeError) as exc:
        raise TrainingError("config", f"the model cannot be built: {exc}",
                            "Run `layerlab validate` on the project to see each "
                            "problem.") from exc


def _train(project: dict[str, Any], run_dir: Path, base_dir: Any, epochs: int | None,
           device: str | None, resume: bool, emit: Emit, controls: Controls,
           fresh_process: bool) -> Event:
    section = dict(project.get("training") or {})
    problems = training_problems(section)
    if problems:
        raise TrainingError("config", "; ".join(problems),
                            "Fix the training settings (`layerlab validate` lists them).")
    state = runs.prepare_run_dir(run_dir, project, resume)
    done_before = int(state.get("epoch", 0)) if resume else 0
    if resume:
        extra = epochs if epochs is not None else epochs_of(section) - done_before
        if extra < 1:
            raise TrainingError(
                "config", f"the run in {run_dir} has already trained {done_before} of "
                f"{epochs_of(section)} epochs", "Ask for more epochs (--epochs N trains N more).")
        total = done_before + extra
    else:
        total = epochs if epochs is not None else epochs_of(section)
    runs.write_status(run_dir, "running", epochs_done=done_before)

    import keras

    placement = place(device or section.get("device"), fresh_process)
    if section.get("seed") is not None:
        keras.utils.set_random_seed(int(section["seed"]))
    previous_policy = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(section.get("precision", "float32"))
    try:
        with _warnings_as_events(emit):
            return _fit(project, section, run_dir, base_dir, total, done_before, resume,
                        state, placement, emit, controls)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


@contextlib.contextmanager
def _warnings_as_events(emit: Emit) -> Iterator[None]:
    """Python warnings raised while training become ``warning`` events (each one once)."""
    seen: set[str] = set()

    def show(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
        text = str(message).strip()
        if text and text not in seen and not issubclass(category, DeprecationWarning):
            seen.add(text)
            emit({"event": "warning", "message": text})

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def _fit(project: dict[str, Any], section: dict[str, Any], run_dir: Path, base_dir: Any,
         total: int, done_before: int, resume: bool, state: dict[str, Any],
         placement: Placement, emit: Emit, controls: Controls) -> Event:
    import keras
    import numpy as np

    from engine.data import check_fit, labels_for_loss

    ds = load_dataset(project, base_dir)
    loss = loss_name(section, ds.task, ds.num_classes)
    batch_size = batch_size_of(section)
    n_train = len(ds.x_train)
    steps = max(1, math.ceil(n_train / batch_size))
    with placement.scope():
        if resume:
            model = keras.models.load_model(run_dir / "checkpoints" / "last.keras")
        else:
            model = build_snapshot_model(project)
        fit_problems = check_fit(ds, model, loss)
        if fit_problems:
            raise TrainingError("data", "; ".join(fit_problems),
                                "Match the model's input and output layers to the data.")
        if not resume:
            model.compile(
                optimizer=make_optimizer(section, steps, total),
                loss=make_loss(section, loss),
                metrics=make_metrics(section, loss, ds.num_classes, emit, ds.task),
                jit_compile=section.get("jit_compile", "auto"),
                steps_per_execution=int(section.get("steps_per_execution", 1)))
    y_train = labels_for_loss(ds.y_train, loss, ds.num_classes)
    weights = class_weights(section, ds.y_train) if ds.task == "classification" else None
    if section.get("class_weight") is not None and weights is None:
        emit({"event": "warning", "message": "class_weight applies to classification only "
              "and was ignored"})
    has_val = ds.x_val is not None and len(ds.x_val) > 0
    validation = (ds.x_val, labels_for_loss(ds.y_val, loss, ds.num_classes)) if has_val \
        else None

    es = section.get("early_stopping")
    es = {} if es is True else es if isinstance(es, dict) else None
    monitor = (es or {}).get("monitor") or ("val_loss" if has_val else "loss")
    if not has_val and monitor.startswith("val_"):
        emit({"event": "warning", "message": f"there is no validation split, so "
              f"{monitor} cannot be watched; watching {monitor[4:]} instead"})
        monitor = monitor[4:]
    run = RunState(run_dir=run_dir, emit=emit, controls=controls, steps=steps, epochs=total,
                   batch_size=batch_size, monitor=monitor, mode=monitor_mode(monitor),
                   best=state.get("best") if state.get("monitor") == monitor else None,
                   history=runs.read_history(run_dir) if resume else {},
                   epochs_done=done_before)
    if section.get("tensorboard", True):
        run.tensorboard = runs.TensorBoardWriter(run_dir / "logs")
    reporter, checkpointer = callback_types()
    callbacks = [reporter(run), checkpointer(run)]
    if es is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, patience=int(es.get("patience", 5)),
            min_delta=float(es.get("min_delta", 0.0)), mode=run.mode,
            restore_best_weights=bool(es.get("restore_best_weights", True)),
            start_from_epoch=int(es.get("start_from_epoch", 0))))
    schedule = section.get("schedule")
    if isinstance(schedule, dict) and find_key(schedule.get("type"), SCHEDULES) == \
            "reduce_on_plateau":
        watch = schedule.get("monitor", monitor)
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=watch, factor=float(schedule.get("factor", 0.1)),
            patience=int(schedule.get("patience", 5)), mode=monitor_mode(watch),
            min_delta=float(schedule.get("min_delta", 1e-4)),
            cooldown=int(schedule.get("cooldown", 0)),
            min_lr=float(schedule.get("min_lr", 0.0))))

    emit({"event": "started", "devices": placement.devices,
          "total_params": int(model.count_params()), "steps_per_epoch": steps,
          "epochs": total, "initial_epoch": done_before, "samples": n_train,
          "batch_size": batch_size})
    with placement.scope():
        model.fit(ds.x_train, y_train, batch_size=batch_size, epochs=total,
                  initial_epoch=done_before, validation_data=validation,
                  class_weight=weights,
                  shuffle=bool(section.get("shuffle", True)), callbacks=callbacks, verbose=0)
    controls.stop_seen.set()  # training is over: a stop from now on has nothing to end
    if hasattr(run.tensorboard, "close"):
        run.tensorboard.close()

    if run.nan_at:
        epoch, step, value = run.nan_at
        bad = int(np.isnan(ds.x_train).sum() + np.isinf(ds.x_train).sum()) \
            if np.issubdtype(np.asarray(ds.x_train).dtype, np.floating) else 0
        lr = _opt_lr(section)
        hint = (f"The training data holds {bad} NaN or infinite values; clean them first."
                if bad else
                f"Lower the learning rate (now {lr:g}), add gradient clipping (clipnorm), "
                "or check the data for extreme values.")
        runs.write_status(run_dir, "failed", epochs_done=run.epochs_done, kind="nan")
        raise TrainingError("nan", f"the loss became {value} at epoch {epoch}, step {step}; "
                            "training stopped", hint)

    model_path = run_dir / "model.keras"
    runs.save_model_atomic(model, model_path)
    runs.write_history(run_dir, run.history)
    loss_params = section.get("loss") if isinstance(section.get("loss"), dict) else {}
    evaluation = runs.evaluate(model, ds, loss, batch_size, labels_for_loss=labels_for_loss,
                               run_dir=run_dir, from_logits=bool(loss_params.get("from_logits")))
    stopped = run.stopped
    runs.write_status(run_dir, "stopped" if stopped else "done", epochs_done=run.epochs_done)
    return {"event": "done", "run_dir": str(run_dir), "model": str(model_path),
            "history": run.history, "evaluation": evaluation, "stopped": stopped,
            "epochs_done": run.epochs_done}


def _opt_lr(section: dict[str, Any]) -> float:
    _, params, _ = split_typed(section.get("optimizer", "Adam"), "optimizer")
    return float(params.get("learning_rate", 0.001))


def cli_train(args: Any) -> int:
    """``layerlab train``: see :mod:`engine.train_cli`."""
    from engine.train_cli import cli_train as run

    return run(args)
