"""The samples behind a finished run's evaluation: the evaluated split loaded again
and, when ``model.keras`` is there, the model's predictions on it.

The evaluation view runs :func:`load_samples` in a background thread to show the
misclassified samples (classification) or a predicted-vs-true scatter (regression);
``evaluation.json`` itself is written by :func:`engine.train.runs.evaluate`. Keras is
imported inside :func:`predict` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.data.dataset import load_data
from engine.train.history import base_dir_of
from engine.train.runs import MAX_EVAL_SAMPLES

GALLERY_LIMIT = 48
"""Most misclassified samples the gallery shows."""
SCATTER_LIMIT = 5000


def input_shape(snapshot: dict[str, Any]) -> tuple | None:
    for node in (snapshot.get("graph") or {}).get("nodes", []):
        if node.get("type") == "Input" and node.get("params", {}).get("shape") is not None:
            return tuple(node["params"]["shape"])
    return None


def is_image_shape(shape: Any) -> bool:
    """One sample of this shape is an image: (height, width, 1|3|4)."""
    return (
        shape is not None
        and len(shape) == 3
        and shape[-1] in (1, 3, 4)
        and shape[0] > 1
        and shape[1] > 1
    )


def load_samples(
    run_dir: Path, snapshot: dict[str, Any], details: dict[str, Any], task: str
) -> dict[str, Any]:
    """The evaluated split's samples, and the model's predictions when it can be loaded.

    Returns:
        For classification ``{"misclassified": [(index, image|None, true, pred, conf)],
        "total": n, "wrong": k, "images": bool}``; for regression
        ``{"true": array, "predicted": array}``.
    """
    ds = load_data(snapshot.get("data") or {}, base_dir_of(run_dir), input_shape(snapshot))
    split = details.get("split", "validation")
    if split not in ("validation", "test") or not ds.count(split):
        split = "train"
    x, y = ds.head(split, MAX_EVAL_SAMPLES)  # reads (decodes) only these
    y = np.asarray(y)
    pred = predict(run_dir, x)
    if task == "regression":
        if pred is None:
            return {}
        truth = y.reshape(len(y), -1)[:, 0].astype(float)
        return {
            "true": truth[:SCATTER_LIMIT],
            "predicted": pred.reshape(len(pred), -1)[: len(truth), 0][:SCATTER_LIMIT].astype(float),
        }
    names = list(details.get("class_names") or ds.class_names)
    images = is_image_shape(x.shape[1:])
    true = y.argmax(-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y))
    true = true.astype(int)
    if pred is not None:
        predicted, confidence = classes(pred, snapshot)
        wrong = np.flatnonzero(predicted != true)
        picks = [(int(i), names_of(names, predicted[i]), float(confidence[i])) for i in wrong]
        total, n_wrong = len(true), len(wrong)
    else:  # only evaluation.json's few sample predictions
        rows = [p for p in details.get("predictions", []) if p.get("true") != p.get("predicted")]
        picks = [
            (int(p["index"]), str(p["predicted"]), float(p.get("confidence", 0.0)))
            for p in rows
            if 0 <= int(p["index"]) < len(true)
        ]
        total, n_wrong = len(details.get("predictions", [])), len(picks)
    out = []
    for i, predicted_name, conf in picks[:GALLERY_LIMIT]:
        out.append(
            (i, np.array(x[i]) if images else None, names_of(names, true[i]), predicted_name, conf)
        )
    return {
        "misclassified": out,
        "total": total,
        "wrong": n_wrong,
        "images": images,
        "from_model": pred is not None,
    }


def names_of(names: list[str], index: Any) -> str:
    i = int(index)
    return names[i] if 0 <= i < len(names) else str(i)


def predict(run_dir: Path, x: np.ndarray) -> np.ndarray | None:
    path = run_dir / "model.keras"
    if not path.is_file():
        return None
    import keras

    model = keras.models.load_model(path, compile=False)
    pred = model.predict(x, batch_size=256, verbose=0)
    if isinstance(pred, (list, tuple, dict)):
        return None
    return np.asarray(pred, dtype=np.float64)


def classes(pred: np.ndarray, snapshot: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    loss = (snapshot.get("training") or {}).get("loss")
    logits = isinstance(loss, dict) and bool(loss.get("from_logits"))
    if pred.ndim == 1 or pred.shape[-1] == 1:
        p = pred.reshape(len(pred))
        if logits:
            p = 1 / (1 + np.exp(-p))
        predicted = (p > 0.5).astype(int)
        return predicted, np.where(predicted == 1, p, 1 - p)
    p = pred.reshape(len(pred), -1)
    if logits:
        p = np.exp(p - p.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
    return p.argmax(-1), p.max(-1)
