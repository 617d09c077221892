"""The learning-rate range test (Smith 2015, as fastai's ``lr_find`` does it).

A short run on the project's data and model with the learning rate growing
exponentially, from :data:`START_LR` to :data:`END_LR` over :data:`STEPS` batches,
one optimizer step per batch; the loss is smoothed (an exponential moving average with
bias correction, beta 0.98) and the test stops early once the smoothed loss exceeds
:data:`DIVERGE` times its minimum (it has exploded) or is not finite.

The suggestion is the **steepest descent** point of the smoothed loss against
log10(learning rate), looked for between the 10th point and the minimum of the loss
(where the loss falls fastest). When that cannot be found (too few points, a loss that
never fell) it is the learning rate of the minimum loss divided by 10. ``method`` in
the result says which.

Keras (and TensorFlow) are imported inside :func:`find_lr`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.data.dataset import labels_for_loss
from engine.train.config import loss_name, make_loss, make_optimizer
from engine.train.fit import build_snapshot_model, load_dataset

START_LR = 1e-7
END_LR = 10.0
STEPS = 100
DIVERGE = 4.0
BETA = 0.98
SKIP_START = 10


def find_lr(
    project: dict[str, Any],
    base_dir: Any = None,
    *,
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    steps: int = STEPS,
) -> dict[str, Any]:
    """Run the range test on a project given as a dict.

    Returns:
        ``{"suggested_lr", "method": "steepest"|"min_loss/10", "min_loss_lr", "lrs",
        "losses"}``: ``losses`` are the smoothed losses, one per learning rate tried.

    Raises:
        engine.train.fit.TrainingError: The data or the model cannot be made.
    """
    import keras

    section = {k: v for k, v in (project.get("training") or {}).items() if k != "schedule"}
    opt = section.get("optimizer", "Adam")
    opt = dict(opt) if isinstance(opt, dict) else {"type": opt}
    opt["learning_rate"] = start_lr
    section["optimizer"] = opt
    if section.get("seed") is not None:
        keras.utils.set_random_seed(int(section["seed"]))
    ds = load_dataset(project, base_dir)
    loss = loss_name(section, ds.task, ds.num_classes)
    model = build_snapshot_model(project)
    model.compile(optimizer=make_optimizer(section, steps, 1), loss=make_loss(section, loss))
    x, y = ds.x_train, labels_for_loss(ds.y_train, loss, ds.num_classes)
    batch = int(section.get("batch_size", 32))
    rng = np.random.default_rng(int(section.get("seed") or 0))
    order = np.concatenate([rng.permutation(len(x)) for _ in range(steps * batch // len(x) + 1)])
    factor = (end_lr / start_lr) ** (1 / max(1, steps - 1))
    lrs, losses, avg, best = [], [], 0.0, math.inf
    for i in range(steps):
        lr = start_lr * factor**i
        model.optimizer.learning_rate.assign(lr)
        idx = order[i * batch : (i + 1) * batch]
        raw = model.train_on_batch(x[idx], y[idx])
        raw = float(raw[0] if isinstance(raw, (list, tuple)) else raw)
        if not math.isfinite(raw):
            break
        avg = BETA * avg + (1 - BETA) * raw
        smooth = avg / (1 - BETA ** (i + 1))
        lrs.append(lr)
        losses.append(smooth)
        best = min(best, smooth)
        if i > SKIP_START and smooth > DIVERGE * best:
            break
    return {**suggest(lrs, losses), "lrs": lrs, "losses": losses}


def suggest(lrs: list[float], losses: list[float]) -> dict[str, Any]:
    """The suggested learning rate of a range test (see the module's docstring)."""
    if not lrs:
        return {"suggested_lr": None, "method": None, "min_loss_lr": None}
    low = int(np.argmin(losses))
    min_loss_lr = lrs[low]
    if low - SKIP_START >= 3:
        slopes = np.gradient(np.asarray(losses), np.log10(np.asarray(lrs)))
        steep = SKIP_START + int(np.argmin(slopes[SKIP_START:low]))
        if slopes[steep] < 0:
            return {"suggested_lr": lrs[steep], "method": "steepest", "min_loss_lr": min_loss_lr}
    return {"suggested_lr": min_loss_lr / 10, "method": "min_loss/10", "min_loss_lr": min_loss_lr}
