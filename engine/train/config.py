"""The training section of a project: its tables, its checks, its Keras objects.

The ``training`` section of a project file (all keys optional)::

    {"optimizer": {"type": "Adam", "learning_rate": 0.001, "clipnorm": 1.0},
     "schedule": {"type": "cosine", "warmup_epochs": 1},
     "loss": "sparse_categorical_crossentropy",      # or {"type": ..., "label_smoothing": 0.1}
     "metrics": ["accuracy", {"type": "top_k", "k": 3}],
     "batch_size": 32, "epochs": 10, "seed": 0,
     "early_stopping": {"monitor": "val_loss", "patience": 5, "restore_best_weights": true},
     "class_weight": "balanced",                     # or {"0": 1.0, "1": 3.0}
     "precision": "float32",                         # "mixed_float16", "mixed_bfloat16"
     "jit_compile": "auto", "steps_per_execution": "auto",   # or N steps per call
     "device": "auto",                               # "cpu", "gpu:0", "all"
     "tensorboard": true,
     "imported_weights": true,                       # start from the project's "weights"
     "fine_tune": {"after_epoch": 5, "unfreeze": "all", "learning_rate_factor": 0.1}}

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

Fine-tuning in two phases (``fine_tune``, see :func:`fine_tune_of`): phase 1 trains
epochs 1..``after_epoch`` (default: half the epochs) with the frozen layers frozen;
phase 2 unfreezes ``unfreeze`` frozen layers (``"all"``, the default, or the N nearest
the output) and trains the remaining epochs at the optimizer's ``learning_rate`` x
``learning_rate_factor`` (0.1). A schedule spans phase 1, then starts again over
phase 2 with every rate in it x the factor (:func:`phase_two_section`). ``epochs``
stays the whole run's length.

:func:`training_problems` checks a section without TensorFlow; the ``make_*``
functions turn a checked section into Keras objects (Keras is imported inside them).
:mod:`engine.train.fit` runs the training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.train.cluster import cluster_problems

Event = dict[str, Any]
Emit = Callable[[Event], None]

# ----------------------------------------------------------------------------- the tables

OPTIMIZER_COMMON = (
    "learning_rate",
    "weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "ema_momentum",
)
"""Keras arguments every optimizer takes."""
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
    "step": (
        "factor",
        "every_epochs",
        "every_steps",
        "boundaries_epochs",
        "boundaries_steps",
        "values",
    ),
    "exponential": ("decay_rate", "decay_epochs", "decay_steps", "staircase"),
    "polynomial": ("end_learning_rate", "power", "decay_epochs", "decay_steps", "cycle"),
    "cosine": (
        "alpha",
        "warmup_epochs",
        "warmup_steps",
        "warmup_start",
        "decay_epochs",
        "decay_steps",
    ),
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

LOSS_ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae", "huber_loss": "huber"}
"""Other names of the losses in :data:`LOSSES` (lower case)."""

METRICS: dict[str, tuple[str, ...]] = {
    "accuracy": (),
    "top_k": ("k",),
    "precision": (),
    "recall": (),
    "auc": (),
    "mae": (),
    "mse": (),
    "rmse": (),
}
"""Metric name -> its keys."""

_REGRESSION_METRICS = ("mae", "mse", "rmse")

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")

SECTION_KEYS = (
    "optimizer",
    "schedule",
    "loss",
    "metrics",
    "batch_size",
    "epochs",
    "seed",
    "early_stopping",
    "class_weight",
    "precision",
    "jit_compile",
    "steps_per_execution",
    "device",
    "tensorboard",
    "shuffle",
    "cluster",
    "imported_weights",
    "fine_tune",
    "health",
)
"""Every key a training section may hold."""

FINE_TUNE_KEYS = ("after_epoch", "unfreeze", "learning_rate_factor")
"""Keys of the ``fine_tune`` object (see :func:`fine_tune_of`)."""

_EARLY_STOPPING_KEYS = (
    "monitor",
    "patience",
    "min_delta",
    "restore_best_weights",
    "start_from_epoch",
)

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
    "k": (1, 2**31 - 1, False, False, True),
    "batch_size": (1, 2**31 - 1, False, False, True),
    "epochs": (1, 2**31 - 1, False, False, True),
    "steps_per_execution": (1, 2**31 - 1, False, False, True),
}
_BOOLS = (
    "nesterov",
    "amsgrad",
    "centered",
    "use_ema",
    "staircase",
    "cycle",
    "from_logits",
    "restore_best_weights",
    "tensorboard",
    "shuffle",
    "imported_weights",
    "health",
)

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
    if high is not None and (
        high < 2**31 - 1
        or isinstance(value, (int, float))
        and not isinstance(value, bool)
        and value > high
    ):
        bounds.append(
            f"{'<' if high_open else '<='} {high:g}" if high < 2**31 - 1 else f"<= {high:,}"
        )  # the 32-bit limit only when it is the problem
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
    return None, {}, f'{what} must be a name or an object with a "type"; got {value!r}'


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
        problems += _check_keys(f"optimizer {opt}", params, OPTIMIZER_COMMON + OPTIMIZERS[opt])
        clipping = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if k in params]
        if len(clipping) > 1:
            problems.append(
                f"optimizer {opt}: give only one of {', '.join(clipping)} (Keras clips one way)"
            )
        if opt == "Lion" and params.get("beta_1") == 0:
            problems.append("optimizer Lion: beta_1 must be above 0; got 0")

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
            problems.append(
                "loss sparse_categorical_crossentropy has no label_smoothing in "
                "Keras; use categorical_crossentropy (one-hot labels) to smooth"
            )
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

    for key in ("batch_size", "epochs"):
        if key in section:
            p = _number_problem(key, section[key], key)
            if p:
                problems.append(p)
    spe = section.get("steps_per_execution", "auto")
    if spe != "auto" and _number_problem("", spe, "steps_per_execution"):
        problems.append(
            f'steps_per_execution must be "auto" or a whole number from 1 to {2**31 - 1:,}; '
            f"got {spe!r}"
        )
    seed = section.get("seed")
    if seed is not None and (
        not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32
    ):
        problems.append(f"seed must be a whole number from 0 to {2**32 - 1} or null; got {seed!r}")
    for key in ("tensorboard", "shuffle", "imported_weights", "health"):
        if key in section and not isinstance(section[key], bool):
            problems.append(f"{key} must be true or false; got {section[key]!r}")
    if section.get("precision", "float32") not in PRECISIONS:
        problems.append(
            f"precision must be one of {', '.join(PRECISIONS)}; got {section['precision']!r}"
        )
    if section.get("jit_compile", "auto") not in (True, False, "auto"):
        problems.append(
            f'jit_compile must be true, false or "auto"; got {section["jit_compile"]!r}'
        )
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
                problems.append(
                    f"early_stopping monitor must be a metric name such as "
                    f"'val_loss'; got {es['monitor']!r}"
                )

    problems += _class_weight_problems(section.get("class_weight"))
    problems += fine_tune_problems(section.get("fine_tune"), section.get("epochs", 10))
    if isinstance(section.get("fine_tune"), dict) and isinstance(section.get("cluster"), dict):
        problems.append(
            "fine_tune works in runs on this machine only, not on a cluster yet; "
            "remove one of fine_tune and cluster"
        )
    problems += cluster_problems(section.get("cluster"))
    return problems


def fine_tune_problems(fine_tune: Any, epochs: Any = 10) -> list[str]:
    """Everything wrong with a ``fine_tune`` object (None or false: no fine-tuning)."""
    if fine_tune is None or fine_tune is False:
        return []
    if not isinstance(fine_tune, dict):
        return [
            'fine_tune must be an object such as {"after_epoch": 5, "unfreeze": "all", '
            f'"learning_rate_factor": 0.1}}, or null; got {fine_tune!r}'
        ]
    problems = [
        f"fine_tune has no key '{k}'; it takes {', '.join(FINE_TUNE_KEYS)}"
        for k in fine_tune
        if k not in FINE_TUNE_KEYS
    ]
    total = epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None
    after = fine_tune.get("after_epoch")
    if after is not None:
        whole = isinstance(after, int) and not isinstance(after, bool)
        if not whole or after < 1 or (total is not None and after >= total):
            below = f" and below epochs ({total})" if total is not None else ""
            problems.append(
                f"fine_tune after_epoch must be a whole number >= 1{below}: phase 2 "
                f"needs at least one epoch; got {after!r}"
            )
    elif total is not None and total < 2:
        problems.append(f"fine_tune needs at least 2 epochs (one per phase); epochs is {total}")
    unfreeze = fine_tune.get("unfreeze", "all")
    if not (
        unfreeze == "all"
        or isinstance(unfreeze, int)
        and not isinstance(unfreeze, bool)
        and unfreeze >= 1
    ):
        problems.append(
            'fine_tune unfreeze must be "all" or a whole number >= 1 (the frozen layers '
            f"nearest the output); got {unfreeze!r}"
        )
    factor = fine_tune.get("learning_rate_factor", 0.1)
    if not (
        isinstance(factor, (int, float))
        and not isinstance(factor, bool)
        and math.isfinite(factor)
        and 0 < factor <= 1
    ):
        problems.append(
            f"fine_tune learning_rate_factor must be a number > 0 and <= 1; got {factor!r}"
        )
    return problems


def phase_two_section(section: dict[str, Any], factor: float) -> dict[str, Any]:
    """The training section phase 2 of fine-tuning trains with: the optimizer's
    ``learning_rate`` x ``factor``, and the schedule (built again over phase 2's epochs)
    with every absolute rate in it x ``factor`` too (step ``values``, polynomial
    ``end_learning_rate``, cosine ``warmup_start``; ``alpha`` is already relative).
    A decay then runs from the lower rate down the same way; a warm-up warms up again."""
    name, params, _ = split_typed(section.get("optimizer", "Adam"), "optimizer")
    lr = float(params.get("learning_rate", 0.001)) * factor
    optimizer = {**params, "type": find_key(name, OPTIMIZERS) or "Adam", "learning_rate": lr}
    schedule = section.get("schedule")
    if isinstance(schedule, dict):
        schedule = dict(schedule)
        for key in ("warmup_start", "end_learning_rate"):
            value = schedule.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                schedule[key] = float(value) * factor
        if isinstance(schedule.get("values"), list):
            schedule["values"] = [float(v) * factor for v in schedule["values"]]
    return {**section, "optimizer": optimizer, "schedule": schedule}


def fine_tune_of(section: dict[str, Any]) -> dict[str, Any] | None:
    """The checked ``fine_tune`` settings with defaults filled in, or None when off:
    ``after_epoch`` (last epoch of phase 1; default half the epochs), ``unfreeze``
    (``"all"`` or N) and ``learning_rate_factor`` (0.1)."""
    fine_tune = section.get("fine_tune")
    if not isinstance(fine_tune, dict):
        return None
    after = fine_tune.get("after_epoch")
    return {
        "after_epoch": int(after) if after is not None else max(1, epochs_of(section) // 2),
        "unfreeze": fine_tune.get("unfreeze", "all"),
        "learning_rate_factor": float(fine_tune.get("learning_rate_factor", 0.1)),
    }


def base_learning_rate(section: dict[str, Any]) -> float:
    """The optimizer's ``learning_rate`` in the section (0.001 when not given)."""
    _, params, _ = split_typed(section.get("optimizer", "Adam"), "optimizer")
    return float(params.get("learning_rate", 0.001))


def _schedule_problems(schedule: Any) -> list[str]:
    name, params, p = split_typed(schedule, "schedule")
    if p:
        return [p]
    kind = find_key(name, SCHEDULES)
    if kind is None:
        return [f"schedule {name!r} is unknown; choose one of {', '.join(SCHEDULES)}"]
    problems = _check_keys(f"schedule {kind}", params, SCHEDULES[kind])
    if (
        kind == "step"
        and "values" in params
        and not ("boundaries_epochs" in params or "boundaries_steps" in params)
    ):
        problems.append(
            "schedule step: values need boundaries_epochs (or boundaries_steps), "
            "the epochs where each value starts"
        )
    if kind == "step" and ("boundaries_epochs" in params or "boundaries_steps" in params):
        bounds = params.get("boundaries_epochs", params.get("boundaries_steps"))
        values = params.get("values")
        if (
            not isinstance(bounds, list)
            or not bounds
            or not all(
                isinstance(b, (int, float)) and not isinstance(b, bool) and b > 0 for b in bounds
            )
            or sorted(bounds) != bounds
        ):
            problems.append(
                f"schedule step boundaries must be an increasing list of numbers "
                f"> 0; got {bounds!r}"
            )
        elif (
            not isinstance(values, list)
            or len(values) != len(bounds) + 1
            or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values
            )
        ):
            problems.append(
                f"schedule step values must be {len(bounds) + 1} learning rates "
                f"> 0 (one more than the boundaries); got {values!r}"
            )
    if (
        kind == "reduce_on_plateau"
        and "monitor" in params
        and not isinstance(params["monitor"], str)
    ):
        problems.append(
            f"schedule reduce_on_plateau monitor must be a metric name; got {params['monitor']!r}"
        )
    return problems


def _class_weight_problems(cw: Any) -> list[str]:
    if cw is None or cw == "balanced":
        return []
    if not isinstance(cw, dict):
        return [f'class_weight must be "balanced" or an object of class -> weight; got {cw!r}']
    problems = []
    for k, v in cw.items():
        if not (
            isinstance(k, str)
            and k.isascii()
            and k.isdecimal()
            or isinstance(k, int)
            and not isinstance(k, bool)
            and k >= 0
        ):
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
    return f'device must be "auto", "cpu", "gpu:N" or "all"; got {device!r}'


# --------------------------------------------------------------- section -> Keras objects


def epochs_of(section: dict[str, Any]) -> int:
    return int(section.get("epochs", 10))


def batch_size_of(section: dict[str, Any]) -> int:
    return int(section.get("batch_size", 32))


def _steps(
    params: dict[str, Any], base: str, steps_per_epoch: int, default: int | None = None
) -> int | None:
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
            return schedules.PiecewiseConstantDecay(
                [int(b) for b in bounds], [float(v) for v in params["values"]]
            )
        every = _steps(params, "every", steps_per_epoch, default=max(1, total // 3))
        return schedules.ExponentialDecay(
            lr, every, float(params.get("factor", 0.1)), staircase=True
        )
    if kind == "exponential":
        return schedules.ExponentialDecay(
            lr,
            _steps(params, "decay", steps_per_epoch, steps_per_epoch),
            float(params.get("decay_rate", 0.96)),
            staircase=bool(params.get("staircase")),
        )
    if kind == "polynomial":
        return schedules.PolynomialDecay(
            lr,
            _steps(params, "decay", steps_per_epoch, total),
            float(params.get("end_learning_rate", 0.0001)),
            float(params.get("power", 1.0)),
            cycle=bool(params.get("cycle")),
        )
    # cosine, with an optional linear warm-up from warmup_start to the learning rate
    warmup = _steps(params, "warmup", steps_per_epoch, 0) or 0
    decay = _steps(params, "decay", steps_per_epoch, max(1, total - warmup))
    alpha = float(params.get("alpha", 0.0))
    if warmup:
        return schedules.CosineDecay(
            float(params.get("warmup_start", 0.0)),
            decay,
            alpha,
            warmup_target=lr,
            warmup_steps=warmup,
        )
    return schedules.CosineDecay(lr, decay, alpha)


def make_optimizer(section: dict[str, Any], steps_per_epoch: int, epochs: int) -> Any:
    """A Keras optimizer for the section, its learning rate scheduled."""
    import keras

    name, params, _ = split_typed(section.get("optimizer", "Adam"), "optimizer")
    opt = find_key(name, OPTIMIZERS) or "Adam"
    kwargs = {
        k: float(v) if k in _RULES and not _RULES[k][4] else v  # JSON's 0 is 0.0
        for k, v in params.items()
        if k not in ("type", "learning_rate")
    }
    kwargs["learning_rate"] = make_schedule(section, steps_per_epoch, epochs)
    return getattr(keras.optimizers, opt)(**kwargs)


def loss_name(
    section: dict[str, Any], task: str | None = None, num_classes: int | None = None
) -> str:
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


def chosen_metrics(
    section: dict[str, Any], loss: str, num_classes: int | None, task: str | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """The section's metrics that mean something for this run, as ``(metric, params)``,
    and one warning for each one left out (the engine and the generated script both
    follow this). Accuracy of a regression or mae of class indices mean nothing; top-k
    needs k below the number of classes; precision, recall and AUC need labels of the
    prediction's shape, so with sparse labels they are left out (``evaluation.json``
    holds per-class precision and recall instead)."""
    sparse = loss == "sparse_categorical_crossentropy"
    kept: list[tuple[str, dict[str, Any]]] = []
    notes: list[str] = []
    for m in section.get("metrics", []):
        name, params, _ = split_typed(m, "metric")
        metric = find_key(name, METRICS)
        if metric is None:
            continue
        why = None
        if (task == "regression" and metric not in _REGRESSION_METRICS) or (
            task == "classification" and sparse and metric in _REGRESSION_METRICS
        ):
            why = f"metric {metric} does not apply to {task} with {loss} and was left out"
        elif metric == "top_k":
            problem = _top_k_problem(section, loss, int(params.get("k", 5)), num_classes)
            why = problem and f"metric top_k was left out: {problem}"
        elif (
            metric in ("precision", "recall", "auc")
            and sparse
            and (num_classes is None or num_classes >= 2)
        ):
            why = (
                f"metric {metric} needs one-hot labels and was left out with "
                "sparse_categorical_crossentropy; evaluation.json has per-class "
                "precision and recall"
            )
        if why:
            notes.append(why)
        else:
            kept.append((metric, params))
    return kept, notes


def make_metrics(
    section: dict[str, Any],
    loss: str,
    num_classes: int | None,
    warn: Emit | None = None,
    task: str | None = None,
) -> list[Any]:
    """Keras metric objects for :func:`chosen_metrics`; each one left out is a warning."""
    import keras

    kept, notes = chosen_metrics(section, loss, num_classes, task)
    for note in notes if warn else []:
        warn({"event": "warning", "message": note})
    sparse = loss == "sparse_categorical_crossentropy"
    logits = loss_from_logits(section)
    out: list[Any] = []
    for metric, params in kept:
        if metric == "accuracy":
            out.append("accuracy")
        elif metric == "top_k":
            k = int(params.get("k", 5))
            cls = (
                keras.metrics.SparseTopKCategoricalAccuracy
                if sparse
                else keras.metrics.TopKCategoricalAccuracy
            )
            out.append(cls(k=k, name=f"top_{k}_accuracy"))
        elif metric in ("precision", "recall"):  # logits: 0 is probability 0.5
            cls = keras.metrics.Precision if metric == "precision" else keras.metrics.Recall
            out.append(cls(name=metric, thresholds=0.0 if logits else None))
        elif metric == "auc":
            out.append(keras.metrics.AUC(name="auc", from_logits=logits))
        elif metric == "mae":
            out.append(keras.metrics.MeanAbsoluteError(name="mae"))
        elif metric == "mse":
            out.append(keras.metrics.MeanSquaredError(name="mse"))
        elif metric == "rmse":
            out.append(keras.metrics.RootMeanSquaredError(name="rmse"))
    return out


def loss_from_logits(section: dict[str, Any]) -> bool:
    """Whether the loss takes logits (the model's output has no sigmoid/softmax)."""
    loss = section.get("loss")
    return isinstance(loss, dict) and bool(loss.get("from_logits"))


def _top_k_problem(
    section: dict[str, Any], loss: str, k: int, num_classes: int | None
) -> str | None:
    """Why a top-k accuracy cannot be computed or means nothing here, or None."""
    if loss == "binary_crossentropy" or (num_classes is not None and num_classes <= 2):
        return "it needs more than two classes"
    if num_classes is not None and k >= num_classes:
        return f"with k={k} and {num_classes} classes it is always 1; choose k < {num_classes}"
    if section.get("precision", "float32") != "float32":
        return "Keras computes it in float32 only, and this run uses mixed precision"
    return None


def class_weights(section: dict[str, Any], y: Any) -> dict[int, float] | None:
    """Keras ``class_weight``: ``balanced`` (n / (k * count)) or the section's dict."""
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


def monitor_mode(monitor: str) -> str:
    """``max`` for metrics that grow when better (accuracy, auc, ...), else ``min``."""
    name = monitor.lower()
    return "max" if any(w in name for w in ("acc", "auc", "precision", "recall")) else "min"
