"""See inside a trained model (issue 19): each layer's activations for one sample, the
first convolution's filters, Grad-CAM heat maps and two-feature decision boundaries.

Everything works on the Keras model of a run directory (:func:`open_run` loads
``model.keras``, the project snapshot and the data the run trained on, standardised
as it was) and returns numpy arrays small enough to cross a process boundary:
feature maps are cut to :data:`MAX_MAPS` maps of at most :data:`MAX_SIDE` x
:data:`MAX_SIDE`, vectors to :data:`MAX_VALUES` values (block means). The statistics
(mean, std, zero fraction) are of the full output. ``layerlab inspect``
(:mod:`engine.cli.inspect`) writes them as PNG files and JSON; the window's Inside
tab runs that command in a child process. Keras and TensorFlow load inside functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.dataset import Dataset, load_data
from engine.data.images import _to_model, decode_image, load_pixels
from engine.data.sources import DataError
from engine.train.health import read_health
from engine.train.history import base_dir_of
from engine.train.runs import read_json

MAX_MAPS = 16
MAX_SIDE = 64
MAX_VALUES = 512
MAX_FILTERS = 64


class InsideError(Exception):
    """A run directory that cannot be looked inside (said in plain words)."""


@dataclass
class OpenRun:
    """A run's model, snapshot and data (standardised as the run trained on them)."""

    run_dir: Path
    model: Any
    snapshot: dict[str, Any]
    data: Dataset

    @cached_property
    def ink(self) -> str:
        """:func:`ink_of` this run, read once (Try it asks at every stroke)."""
        return ink_of(self)

    def split(self) -> str:
        """The split samples are picked from: validation, else test, else training."""
        for name in ("validation", "test", "train"):
            if self.data.count(name):
                return name
        raise InsideError(f"{self.run_dir}: the run's data has no samples")

    def sample(self, index: int) -> np.ndarray:
        """Sample ``index`` of :meth:`split` with a batch axis of 1 (only that sample is
        read from streamed data)."""
        split = self.split()
        n = self.data.count(split)
        name = "training" if split == "train" else split
        if not 0 <= index < n:
            raise InsideError(
                f"--sample {index} is out of range: the {name} split has {n} samples (0-{n - 1})"
            )
        part = self.data.parts[split]
        one = replace(self.data, parts={split: part[index : index + 1]}, _made={})
        return np.asarray(one.take(split, 1), dtype=np.float32)

    def plane(self, limit: int = 2000) -> tuple[np.ndarray, np.ndarray] | None:
        """Up to ``limit`` training samples ``(x, class)`` when the input is two
        features (for the decision boundary), else None."""
        if tuple(self.data.input_shape) != (2,):
            return None
        x, y = self.data.head("train", limit)
        y = np.asarray(y)
        y = y.argmax(-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y))
        return np.asarray(x, dtype=np.float32), y.astype(int)


def open_run(run_dir: str | Path) -> OpenRun:
    """Load a run directory's model, snapshot and data.

    Raises:
        InsideError: No run there, no ``model.keras`` (the run has not finished), or
            data or model that cannot be read; the message names the file.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InsideError(f"{run_dir}: no such run directory")
    path = run_dir / "model.keras"
    if not path.is_file():
        raise InsideError(
            f"{path}: not found; the run has not finished (inspect a run that wrote its model)"
        )
    snapshot = read_json(run_dir / "project.json")
    if not isinstance(snapshot, dict) or not isinstance(snapshot.get("graph"), dict):
        raise InsideError(f"{run_dir / 'project.json'}: missing or not a project snapshot")
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # a damaged or foreign file: say which
        raise InsideError(f"{path}: cannot be loaded: {exc}") from exc
    try:
        data = load_data(snapshot.get("data") or {}, base_dir_of(run_dir), _input_shape(model))
    except (DataError, OSError, ValueError) as exc:
        raise InsideError(f"{run_dir}: the run's data cannot be loaded: {exc}") from exc
    return OpenRun(run_dir, model, snapshot, data)


def _input_shape(model: Any) -> tuple | None:
    shape = model.inputs[0].shape if getattr(model, "inputs", None) else None
    return tuple(shape[1:]) if shape is not None else None


# ------------------------------------------------------------------------------ activations


def downsample(out: np.ndarray) -> np.ndarray:
    """One sample's layer output (no batch axis) made small for transport and drawing.

    Rank 3 (height, width, channels): the first :data:`MAX_MAPS` maps as
    (maps, h, w), each side cut to :data:`MAX_SIDE` by block means. Rank 2 (steps,
    features): a (steps, features) strip, each side at most :data:`MAX_SIDE`. Anything
    else: a flat vector of at most :data:`MAX_VALUES` values (block means).
    """
    a = np.asarray(out, dtype=np.float32)
    if a.ndim == 3:
        maps = np.moveaxis(a[:, :, :MAX_MAPS], -1, 0)
        return np.stack([_shrink(m, MAX_SIDE) for m in maps])
    if a.ndim == 2:
        return _shrink(a, MAX_SIDE)
    v = a.ravel()
    if v.size > MAX_VALUES:
        v = _block_means(v, MAX_VALUES)
    return v


def _block_means(v: np.ndarray, n: int) -> np.ndarray:
    edges = np.linspace(0, v.size, n + 1).astype(int)
    return np.add.reduceat(v, edges[:-1]) / np.diff(edges)


def _shrink(m: np.ndarray, side: int) -> np.ndarray:
    rows = _block_means_axis(m, min(side, m.shape[0]), 0)
    return _block_means_axis(rows, min(side, m.shape[1]), 1)


def _block_means_axis(m: np.ndarray, n: int, axis: int) -> np.ndarray:
    size = m.shape[axis]
    if size <= n:
        return m
    edges = np.linspace(0, size, n + 1).astype(int)
    sums = np.add.reduceat(m, edges[:-1], axis=axis)
    counts = np.diff(edges).reshape([-1 if i == axis else 1 for i in range(m.ndim)])
    return sums / counts


def layer_outputs(model: Any, sample: np.ndarray) -> list[tuple[Any, np.ndarray]]:
    """Each layer of ``model`` (graph order) and its full output for ``sample``
    (batch axis dropped; a layer with several outputs: its first)."""
    import keras

    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    tensors = []
    for layer in layers:
        out = layer.output
        tensors.append(out[0] if isinstance(out, (list, tuple)) else out)
    values = keras.Model(_inputs(model), tensors)(sample, training=False) if tensors else []
    values = values if isinstance(values, (list, tuple)) else [values]
    pairs = [(layer, np.asarray(v)[0]) for layer, v in zip(layers, values, strict=True)]
    inputs = [layer for layer in model.layers if type(layer).__name__ == "InputLayer"]
    return [(layer, np.asarray(sample)[0]) for layer in inputs] + pairs


def activations(model: Any, sample: np.ndarray) -> list[dict[str, Any]]:
    """Per layer in graph order: ``name``, ``type``, ``output_shape`` (without the batch
    axis), ``values`` (:func:`downsample`), ``kind`` (``maps``, ``strip`` or
    ``vector``) and the full output's ``mean``, ``std`` and ``zero_fraction``."""
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    out = []
    for layer, value in sorted(layer_outputs(model, sample), key=lambda p: order[p[0].name]):
        v = np.asarray(value, dtype=np.float64)
        small = downsample(value)
        out.append(
            {
                "name": layer.name,
                "type": type(layer).__name__,
                "output_shape": [int(s) for s in np.shape(value)],
                "values": small,
                "kind": {3: "maps", 2: "strip"}.get(np.ndim(value), "vector"),
                "mean": float(v.mean()) if v.size else 0.0,
                "std": float(v.std()) if v.size else 0.0,
                "zero_fraction": float((v == 0).mean()) if v.size else 0.0,
            }
        )
    return out


# ---------------------------------------------------------------------------------- filters


def first_conv(model: Any) -> Any | None:
    """The first Conv2D layer of ``model`` (graph order), or None."""
    for layer in model.layers:
        if type(layer).__name__ == "Conv2D":
            return layer
    return None


def filters(model: Any) -> tuple[str, np.ndarray] | None:
    """The first Conv2D's kernels as images, each scaled to 0..1: (n, kh, kw) or
    (n, kh, kw, 3) for an RGB input; at most :data:`MAX_FILTERS`. None without a
    Conv2D."""
    layer = first_conv(model)
    if layer is None:
        return None
    k = np.asarray(layer.kernel.numpy(), dtype=np.float32)  # (kh, kw, cin, cout)
    k = np.moveaxis(k, -1, 0)[:MAX_FILTERS]  # (n, kh, kw, cin)
    k = k if k.shape[-1] == 3 else k.mean(-1)
    lo = k.reshape(len(k), -1).min(1).reshape([-1] + [1] * (k.ndim - 1))
    hi = k.reshape(len(k), -1).max(1).reshape([-1] + [1] * (k.ndim - 1))
    return layer.name, (k - lo) / np.maximum(hi - lo, 1e-12)


# --------------------------------------------------------------------------------- Grad-CAM


def last_conv(model: Any) -> Any | None:
    """The last convolution layer whose output is (batch, h, w, channels) with h, w > 1
    (else the last layer with such an output)."""
    found = conv = None
    for layer in model.layers:
        shape = getattr(layer.output, "shape", None)
        if type(layer).__name__ == "InputLayer" or shape is None or len(shape) != 4:
            continue
        if (shape[1] or 0) > 1 and (shape[2] or 0) > 1:
            found = layer
            if "Conv" in type(layer).__name__:
                conv = layer
    return conv or found


def grad_cam(
    model: Any, sample: np.ndarray, class_index: int | None = None
) -> dict[str, Any] | None:
    """Grad-CAM (Selvaraju et al., 2017) on the last convolution layer.

    Returns:
        ``{"heat": (h, w) in 0..1 at the input's size, "class_index": the class
        explained (the predicted one by default), "layer": the layer's name}``, or None
        when the model has no spatial layer.
    """
    import keras
    import tensorflow as tf

    layer = last_conv(model)
    if layer is None:
        return None
    probe = keras.Model(_inputs(model), [layer.output, model.outputs[0]])
    x = tf.constant(sample, dtype=tf.float32)
    with tf.GradientTape() as tape:
        maps, pred = probe(x, training=False)
        tape.watch(maps)
        pred = tf.reshape(pred, [tf.shape(pred)[0], -1])
        index = int(tf.argmax(pred[0])) if class_index is None else int(class_index)
        if pred.shape[-1] == 1:  # one sigmoid unit: class 1 is the unit, class 0 its opposite
            score = pred[:, 0] if index == 1 or class_index is None else -pred[:, 0]
        else:
            score = pred[:, index]
    grads = tape.gradient(score, maps)
    weights = tf.reduce_mean(grads, axis=(1, 2))  # (1, channels)
    cam = tf.nn.relu(tf.reduce_sum(maps * weights[:, None, None, :], axis=-1))[0]
    cam = cam.numpy().astype(np.float32)
    height, width = int(sample.shape[1]), int(sample.shape[2])
    heat = tf.image.resize(cam[:, :, None], (height, width), method="bilinear").numpy()[:, :, 0]
    top = float(heat.max())
    heat = heat / top if top > 0 else heat
    return {"heat": heat.astype(np.float32), "class_index": index, "layer": layer.name}


# ------------------------------------------------------------------------ decision boundary


def decision_boundary(model: Any, x_train: np.ndarray, grid: int = 64) -> dict[str, Any] | None:
    """The model's class over the plane of a two-feature input (what it was trained
    on: after the run's standardisation), on a ``grid`` x ``grid`` field spanning the
    training points with a 10 % margin.

    Returns:
        ``{"classes": (grid, grid) ints (row = second feature, ascending),
        "confidence": (grid, grid), "x": (grid,), "y": (grid,)}``, or None when the
        input is not two features.
    """
    x_train = np.asarray(x_train, dtype=np.float32)
    if x_train.ndim != 2 or x_train.shape[1] != 2 or not len(x_train):
        return None
    lo, hi = x_train.min(0), x_train.max(0)
    pad = np.maximum((hi - lo) * 0.1, 1e-3)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid, dtype=np.float32)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    points = np.stack([gx.ravel(), gy.ravel()], 1)
    pred = np.asarray(model.predict(points, batch_size=4096, verbose=0), dtype=np.float64)
    pred = pred.reshape(len(points), -1)
    if pred.shape[1] == 1:
        p = pred[:, 0]
        if p.min() < 0 or p.max() > 1:  # logits
            p = 1 / (1 + np.exp(-p))
        classes, confidence = (p > 0.5).astype(int), np.maximum(p, 1 - p)
    else:
        classes, confidence = pred.argmax(1), pred.max(1)
    return {
        "classes": classes.reshape(grid, grid),
        "confidence": confidence.reshape(grid, grid).astype(np.float32),
        "x": xs,
        "y": ys,
    }


# ------------------------------------------------------------------------------------ Try it

DRAW_SIDES = (8, 28)
"""Square single-channel inputs of these sides get a drawing canvas in the window."""


def try_inputs(run: OpenRun) -> dict[str, Any]:
    """What the Try it panel offers for ``run``'s model.

    Returns:
        ``{"kind": "draw" | "image" | "table" | "other", "shape": input shape,
        "feature_names": [...] (table), "sample": the first validation sample's raw
        values (table: before standardisation, as a user types them), "class_names",
        "task", "ink"}``. ``draw`` is a square single-channel input of a side in
        :data:`DRAW_SIDES` (values 0..1); ``ink`` is ``"light"`` (ink 1 on paper 0, as
        the digits sources scale them) or, when the training inputs are mostly bright
        (:func:`ink_of`), ``"dark"`` (ink 0 on paper 1).
    """
    shape = [int(s) for s in run.data.input_shape]
    kind = input_kind(shape)
    sample: list[float] = []
    if kind == "table" and run.data.x is not None:
        split = run.split()
        raw = np.asarray(run.data.x[run.data.parts[split][:1]], dtype=np.float64)
        sample = [float(v) for v in raw.ravel()]
    names = list(run.data.feature_names or [])
    if kind == "table" and len(names) != shape[0]:
        names = [f"feature {i + 1}" for i in range(shape[0])]
    return {
        "kind": kind,
        "shape": shape,
        "feature_names": names if kind == "table" else [],
        "sample": sample,
        "class_names": [str(c) for c in run.data.class_names or []],
        "task": run.data.task,
        "ink": run.ink if kind == "draw" else "light",
    }


def input_kind(shape: Any) -> str:
    """How a user gives one input of ``shape`` (no batch axis): ``"draw"`` (a square
    single-channel input of a side in :data:`DRAW_SIDES`), ``"image"`` (height x width
    x 1 or 3), ``"table"`` (feature values) or ``"other"``."""
    shape = [int(s) for s in shape]
    if len(shape) == 3 and shape[0] == shape[1] and shape[0] in DRAW_SIDES and shape[2] == 1:
        return "draw"
    if len(shape) == 3 and shape[2] in (1, 3):
        return "image"
    return "table" if len(shape) == 1 else "other"


INK_SAMPLES = 256
"""Training inputs :func:`ink_of` reads."""


def ink_of(run: OpenRun) -> str:
    """``"dark"`` when the first :data:`INK_SAMPLES` training inputs (raw, before
    standardisation) are mostly bright, i.e. their mean lies in the upper half of their
    range (dark ink on a light background), else ``"light"``."""
    idx = run.data.parts.get("train")
    if idx is None or not len(idx):
        return "light"
    idx = idx[:INK_SAMPLES]
    if run.data.images is not None:
        x = load_pixels(run.data.images, idx)
    elif run.data.x is not None:
        x = np.asarray(run.data.x[idx], dtype=np.float64)
    else:
        return "light"
    lo, hi = float(x.min()), float(x.max())
    return "dark" if hi > lo and (float(x.mean()) - lo) / (hi - lo) > 0.5 else "light"


def try_image(run: OpenRun, path: str | Path) -> np.ndarray:
    """An image file as the run's model takes it before standardisation: decoded,
    to the input's channels, resized as the run's image data is (else stretched),
    scaled to 0..1 (raises ``DataError`` naming the file)."""
    shape = tuple(int(s) for s in run.data.input_shape)
    if len(shape) != 3:
        raise InsideError(f"{path}: this model takes {len(shape)}-D inputs, not images")
    mode = run.data.images.resize if run.data.images is not None else "stretch"
    pixels = decode_image(path, 3)
    return np.asarray(_to_model(pixels, shape[:2], shape[2], mode), dtype=np.float32)


def model_input(run: OpenRun, raw: Any) -> np.ndarray:
    """One input as the user made it (``raw``) -> the model's input with a batch axis
    of 1, standardised as in training (raises ``InsideError`` when the number of
    values is not the input's, or one is not a number)."""
    shape = tuple(int(s) for s in run.data.input_shape)
    x = np.asarray(raw, dtype=np.float32)
    if x.size != int(np.prod(shape)):
        raise InsideError(
            f"the input has {x.size} values; the model takes {int(np.prod(shape))} {shape}"
        )
    x = x.reshape((1, *shape))
    if not np.isfinite(x).all():
        raise InsideError("every input value must be a number")
    return run.data.transform(x) if run.data.mean is not None else x


def try_predict(run: OpenRun, raw: Any) -> dict[str, Any]:
    """The model's answer for one input given as the user made it (``raw``: drawn
    pixels 0..1, a decoded image, typed feature values): the run's standardisation
    is applied, as in training.

    Returns:
        ``{"probabilities": [...], "class_names": [...]}`` for classification (a
        softmax applied to logits; one sigmoid unit: ``[1 - p, p]``), else
        ``{"values": [...]}``; ``"input"`` is the model's input (standardised).
    """
    x = model_input(run, raw)
    out = np.asarray(run.model(x, training=False), dtype=np.float64).reshape(-1)
    answer: dict[str, Any] = {"input": x[0]}
    if run.data.task != "classification":
        answer["values"] = [float(v) for v in out]
        return answer
    if out.size == 1:
        p = float(out[0])
        p = p if 0 <= p <= 1 else float(1 / (1 + np.exp(-p)))
        probs = np.array([1 - p, p])
    elif out.min() < 0 or out.max() > 1 or abs(out.sum() - 1) > 1e-3:  # logits
        e = np.exp(out - out.max())
        probs = e / e.sum()
    else:
        probs = out
    names = [str(c) for c in run.data.class_names or []]
    if len(names) != probs.size:
        names = [str(i) for i in range(probs.size)]
    answer.update(probabilities=[float(p) for p in probs], class_names=names)
    return answer


# ---------------------------------------------------------------------- what a run's health said


def last_health(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Layer name -> its record in the run's last ``health.jsonl`` line (empty without)."""
    records = read_health(run_dir)
    if not records:
        return {}
    return {row["name"]: row for row in records[-1]["layers"] if isinstance(row, dict)}


def to_json(value: Any) -> str:
    """``value`` as JSON, numpy arrays and numbers included."""

    def default(o: Any) -> Any:
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(type(o).__name__)

    return json.dumps(value, default=default)


def _inputs(model: Any) -> Any:
    """The model's inputs as a sub-model takes them (one tensor, or the list)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs
