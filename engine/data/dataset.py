"""Datasets for training: load a project's ``data`` section, split, standardise, serve.

``load_data({"source": "builtin:digits", "validation_split": 0.2})`` returns a
:class:`Dataset` of numpy splits. Sources (see :mod:`engine.data.sources`):

- ``builtin:<name>`` — one of :data:`BUILTINS` (offline, seeded by ``seed``);
  generated sets take ``samples`` and ``noise``, ``builtin:adding`` takes ``length``.
- ``csv`` — ``path``, ``target`` (default: the last column), optional ``features``,
  ``categorical`` (one-hot encoded, at most 1000 levels), ``task``, ``delimiter``
  (default: sniffed). Numbers must be finite and within float32's range.
- ``npz`` — ``path``, array names ``x`` and ``y`` (one-hot ``y`` becomes class indices,
  ``y`` shaped ``(n, 1)`` is read as ``(n,)``).
- ``images`` — ``path`` to a folder with one sub-folder per class, ``image_size``,
  ``color_mode`` (``grayscale``/``rgb``), ``max_memory_mb`` (all images are held in memory).
  Hidden files and folders (and macOS's ``._*`` and ``__MACOSX``) are skipped.

Targets are class indices when they are text, or whole numbers with at most 20
distinct values; otherwise regression. ``"task": "classification"|"regression"``
overrides that. A classifier needs at least two classes; a numeric CSV target with a
few cells that are not numbers is a typo (the first is named), not a set of classes.

Common keys: ``validation_split`` (0.2), ``test_split`` (0), ``seed`` (0),
``standardize`` (true for tabular sources). Splits are stratified for
classification; standardisation is fitted on the training split only. Every
bad input raises :class:`DataError` with one message naming what is wrong.

TensorFlow is imported only by :func:`make_tf_dataset` (and the image decoder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.data.sources import (
    BUILTINS,
    DataError,
    RawData,
    get_float,
    get_int,
    load_builtin,
    load_csv,
    load_images,
    load_npz,
    resolve_path,
)

SOURCES = tuple(f"builtin:{name}" for name in BUILTINS) + ("csv", "npz", "images")


@dataclass
class Dataset:
    """Train / validation / test splits of one data source.

    Attributes:
        x_train, y_train, x_val, y_val: numpy arrays; ``y`` holds int64 class
            indices for classification and float32 ``(n, k)`` for regression.
        x_test, y_test: the test split, or None when ``test_split`` is 0.
        task: ``"classification"`` or ``"regression"``.
        num_classes: Number of classes (0 for regression).
        class_names: One name per class index.
        input_shape: Shape of one sample, without the batch axis.
        feature_names: Column names of tabular inputs.
        source: What the data is, in words.
        mean, std: The standardisation fitted on the training split (None when off);
            apply the same to new inputs with :meth:`transform`.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    task: str
    num_classes: int
    class_names: list[str]
    input_shape: tuple[int, ...]
    feature_names: list[str] = field(default_factory=list)
    source: str = ""
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    @property
    def target_shape(self) -> tuple[int, ...]:
        """Shape of one target (``()`` for class indices)."""
        return tuple(self.y_train.shape[1:])

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Raw inputs -> what the model was trained on (the stored standardisation)."""
        x = np.asarray(x, dtype=np.float32)
        if self.mean is None or self.std is None:
            return x
        return ((x - self.mean) / self.std).astype(np.float32)

    def summary(self) -> dict[str, Any]:
        """Plain facts for the GUI: samples per split, classes, shapes."""
        out: dict[str, Any] = {
            "source": self.source,
            "task": self.task,
            "train": len(self.x_train),
            "validation": len(self.x_val),
            "test": 0 if self.x_test is None else len(self.x_test),
            "input_shape": list(self.input_shape),
            "target_shape": list(self.target_shape),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "standardized": self.mean is not None,
        }
        if self.feature_names:
            out["feature_names"] = list(self.feature_names)
        if self.task == "classification":
            out["class_counts"] = {
                name: np.bincount(y, minlength=self.num_classes).tolist()
                for name, y in (
                    ("train", self.y_train),
                    ("validation", self.y_val),
                    ("test", self.y_test),
                )
                if y is not None
            }
        return out


def load_data(
    data_section: dict[str, Any],
    base_dir: str | os.PathLike | None = None,
    input_shape: tuple[int | None, ...] | None = None,
) -> Dataset:
    """Load, split and standardise the data a project's ``data`` section declares.

    Args:
        data_section: The project's ``data`` dict (``source`` plus source keys).
        base_dir: Folder that relative paths are resolved against (the project's).
        input_shape: The model's input shape without the batch axis; image folders
            are resized to it (it wins over ``image_size``).

    Raises:
        DataError: With one message naming the file, line, column, key or value.
    """
    if not isinstance(data_section, dict):
        raise DataError(f"the data section must be an object; got {data_section!r}")
    source = data_section.get("source")
    if not isinstance(source, str) or not source:
        raise DataError(
            f'data section: "source" is missing or not a text (got {source!r}); '
            f"choose one of {', '.join(SOURCES)}"
        )
    val = get_float(data_section, "validation_split", 0.2, 0.0, 1.0)
    test = get_float(data_section, "test_split", 0.0, 0.0, 1.0)
    if val + test >= 1.0:
        raise DataError(
            f"data section: validation_split {val:g} + test_split {test:g} "
            "leave no training data (their sum must be below 1)"
        )
    seed = get_int(data_section, "seed", 0)
    standardize = data_section.get("standardize")
    if standardize is not None and not isinstance(standardize, bool):
        raise DataError(f'data section: "standardize" must be true or false; got {standardize!r}')

    raw = _load_raw(source, data_section, base_dir, input_shape)
    if len(raw.x) < 2:
        raise DataError(f"{raw.description}: {len(raw.x)} sample(s) is too few to split")
    parts = split_indices(raw.y, raw.task, val, test, seed)
    x_train, y_train = raw.x[parts[0]], raw.y[parts[0]]
    mean = std = None
    if raw.standardize if standardize is None else standardize:
        mean, std = _fit_standardization(x_train, raw.onehot_columns)
    data = Dataset(
        x_train=x_train,
        y_train=y_train,
        x_val=raw.x[parts[1]],
        y_val=raw.y[parts[1]],
        x_test=raw.x[parts[2]] if test > 0 else None,
        y_test=raw.y[parts[2]] if test > 0 else None,
        task=raw.task,
        num_classes=len(raw.class_names) if raw.task == "classification" else 0,
        class_names=list(raw.class_names) if raw.task == "classification" else [],
        input_shape=tuple(int(d) for d in raw.x.shape[1:]),
        feature_names=list(raw.feature_names),
        source=raw.description,
        mean=mean,
        std=std,
    )
    if mean is not None:
        data.x_train = data.transform(data.x_train)
        data.x_val = data.transform(data.x_val)
        if data.x_test is not None:
            data.x_test = data.transform(data.x_test)
    return data


def _load_raw(
    source: str,
    section: dict[str, Any],
    base_dir: str | os.PathLike | None,
    input_shape: tuple[int | None, ...] | None,
) -> RawData:
    if source.startswith("builtin:"):
        return load_builtin(source[len("builtin:") :], section)
    if source == "csv":
        return load_csv(resolve_path(section, base_dir), section)
    if source == "npz":
        return load_npz(resolve_path(section, base_dir), section)
    if source == "images":
        return load_images(resolve_path(section, base_dir, want_dir=True), section, input_shape)
    raise DataError(f"unknown data source {source!r}; choose one of {', '.join(SOURCES)}")


def split_indices(
    y: np.ndarray, task: str, validation: float, test: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded (train, validation, test) index arrays; stratified for classification.

    Each class gives ``validation`` and ``test`` of its samples (largest
    remainders settle the rounding so the totals match the fractions).
    """
    n = len(y)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val, n_test = round(n * validation), round(n * test)
    if validation > 0 and n_val == 0:
        raise DataError(
            f"validation_split {validation:g} of {n} samples leaves no "
            "validation samples; use more data or a larger split"
        )
    if test > 0 and n_test == 0:
        raise DataError(
            f"test_split {test:g} of {n} samples leaves no test samples; "
            "use more data or a larger split"
        )
    if n - n_val - n_test < 1:
        raise DataError(f"{n} samples leave no training data after the validation and test splits")
    if task != "classification":
        return (
            np.sort(order[n_val + n_test :]),
            np.sort(order[n_test : n_test + n_val]),
            np.sort(order[:n_test]),
        )
    groups = [order[y[order] == c] for c in np.unique(y)]
    sizes = np.array([len(g) for g in groups])
    spare = np.maximum(sizes - 1, 0)  # every class keeps a training sample if it can
    take_test = _apportion(spare, n_test, weights=sizes)
    take_val = _apportion(spare - take_test, n_val, weights=sizes)
    for name, asked, took in (
        ("validation_split", validation, take_val),
        ("test_split", test, take_test),
    ):
        if asked > 0 and took.sum() == 0:
            raise DataError(
                f"{name} {asked:g}: no class has a sample to spare ({n} samples "
                f"in {len(groups)} classes; every class keeps one for training); "
                "use more samples per class"
            )
    train, val, tst = [], [], []
    for group, k_test, k_val in zip(groups, take_test, take_val):
        tst.append(group[:k_test])
        val.append(group[k_test : k_test + k_val])
        train.append(group[k_test + k_val :])
    return tuple(np.sort(np.concatenate(p)) for p in (train, val, tst))  # type: ignore


def _apportion(
    capacity: np.ndarray,
    total: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Split ``total`` over groups in proportion to ``weights`` (default ``capacity``)."""
    weights = capacity if weights is None else weights
    share = weights / weights.sum() * total
    take = np.minimum(np.floor(share).astype(int), capacity)
    for i in np.argsort(-(share - take), kind="stable"):
        if take.sum() >= total:
            break
        if take[i] < capacity[i]:
            take[i] += 1
    return take


def _fit_standardization(
    x_train: np.ndarray,
    onehot_columns: list[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of the training inputs (one-hot columns left as they are)."""
    mean = x_train.mean(axis=0, dtype=np.float64).astype(np.float32)  # float64: no overflow
    std = x_train.std(axis=0, dtype=np.float64).astype(np.float32)
    std[std < 1e-7] = 1.0
    if onehot_columns and x_train.ndim == 2:
        mean[onehot_columns] = 0.0
        std[onehot_columns] = 1.0
    return mean, std


# --------------------------------------------------------------------------- labels and losses

_CLASSIFICATION_LOSSES = {
    "sparsecategoricalcrossentropy",
    "categoricalcrossentropy",
    "binarycrossentropy",
    "categoricalfocalcrossentropy",
    "binaryfocalcrossentropy",
    "categoricalhinge",
    "hinge",
    "squaredhinge",
    "kldivergence",
    "kld",
    "kullbackleiblerdivergence",
    "poisson",
}
_REGRESSION_LOSSES = {
    "meansquarederror",
    "mse",
    "meanabsoluteerror",
    "mae",
    "meanabsolutepercentageerror",
    "mape",
    "meansquaredlogarithmicerror",
    "msle",
    "huber",
    "logcosh",
    "cosinesimilarity",
}
ONE_HOT_LOSSES = {
    "categoricalcrossentropy",
    "categoricalfocalcrossentropy",
    "categoricalhinge",
    "kldivergence",
    "kld",
    "kullbackleiblerdivergence",
}
"""Loss keys (see :func:`loss_key`) that want one-hot labels."""


def loss_key(loss: Any) -> str:
    """``"categorical_crossentropy"``, ``"CategoricalCrossentropy"``, ``{"type": ...}`` -> key."""
    if isinstance(loss, dict):
        loss = loss.get("type") or loss.get("class_name") or loss.get("name") or ""
    return str(loss or "").lower().replace("_", "").replace(" ", "")


def labels_for_loss(y: np.ndarray, loss: Any, num_classes: int) -> np.ndarray:
    """Class indices as the loss wants them: one-hot for categorical losses, else unchanged."""
    if loss_key(loss) in ONE_HOT_LOSSES and num_classes > 0:
        return np.eye(num_classes, dtype=np.float32)[np.asarray(y, dtype=np.int64)]
    return y


def make_tf_dataset(
    x: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    cache: bool = True,
):
    """A batched ``tf.data.Dataset`` (cached, seeded shuffle per epoch, prefetched)."""
    import tensorflow as tf

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(f"batch_size must be a whole number >= 1; got {batch_size!r}")
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------- does it fit?


def _shape_text(shape: tuple) -> str:
    return str(tuple(shape))


def _units(n: int | None) -> str:
    return "1 unit" if n == 1 else f"{n} units"


def _matches(expected: tuple, given: tuple) -> bool:
    return len(expected) == len(given) and all(e is None or e == g for e, g in zip(expected, given))


def _model_shapes(model: Any) -> tuple[tuple, tuple]:
    """(input, output) shapes of a single-input, single-output Keras model, no batch axis."""
    ins, outs = model.input_shape, model.output_shape
    if isinstance(ins, list) or isinstance(outs, list):
        raise DataError(
            "the data gives one input and one target; the model has "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    return tuple(ins[1:]), tuple(outs[1:])


def check_fit(
    dataset: Dataset, model_input_shape: Any, model_output_shape: Any = None, loss: Any = None
) -> list[str]:
    """Why the data does not fit the model and loss; ``[]`` when everything fits.

    Args:
        dataset: The loaded data.
        model_input_shape: The model's input shape without the batch axis (a
            built ``keras.Model`` is accepted too: ``check_fit(data, model, loss)``).
        model_output_shape: The model's output shape without the batch axis.
        loss: The loss name (``"sparse_categorical_crossentropy"``, ``"mse"``, ...).
    """
    if hasattr(model_input_shape, "input_shape") and hasattr(model_input_shape, "outputs"):
        loss = model_output_shape
        try:
            model_input_shape, model_output_shape = _model_shapes(model_input_shape)
        except DataError as exc:
            return [str(exc)]
    expected_in = tuple(model_input_shape)
    out_shape = tuple(model_output_shape)
    problems: list[str] = []
    if not _matches(expected_in, dataset.input_shape):
        hint = ""
        if None not in expected_in and np.prod(expected_in) == np.prod(dataset.input_shape):
            hint = " (same number of values: a Reshape or Flatten layer would fit them)"
        problems.append(
            f"the model's input expects {_shape_text(expected_in)}; the data "
            f"gives {_shape_text(dataset.input_shape)}{hint}"
        )
    key = loss_key(loss)
    if dataset.task == "classification":
        problems.extend(_classification_problems(dataset, out_shape, key, loss))
    else:
        problems.extend(_regression_problems(dataset, out_shape, key, loss))
    return problems


def _classification_problems(data: Dataset, out_shape: tuple, key: str, loss: Any) -> list[str]:
    k = data.num_classes
    if key in _REGRESSION_LOSSES:
        return [
            f"loss {loss!r} is a regression loss but the data has {k} classes; use "
            "'sparse_categorical_crossentropy' (or 'binary_crossentropy' for 2 classes)"
        ]
    if len(out_shape) != 1:
        return [
            f"the model's output has shape {_shape_text(out_shape)} but the data has one "
            f"class label per sample; end with a Dense layer of {k} units (add Flatten "
            "or GlobalAveragePooling before it)"
        ]
    units = out_shape[0]
    if key in ("binarycrossentropy", "binaryfocalcrossentropy"):
        if k != 2:
            return [
                f"loss {loss!r} is for 2 classes but the data has {k} classes; use "
                "'sparse_categorical_crossentropy'"
            ]
        if units != 1:
            return [
                f"{loss} needs 1 output unit for 2 classes; the model's output has {_units(units)}"
            ]
        return []
    if units == k or units is None:
        return []
    if key in ONE_HOT_LOSSES:
        return [
            f"loss {loss!r} needs one output unit per class: the model's output has "
            f"{_units(units)} but the data has {k} classes"
        ]
    hint = "; or use 'binary_crossentropy' with 1 unit" if units == 1 and k == 2 else ""
    return [
        f"the model's output has {_units(units)} but the data has {k} classes"
        + (f"; loss {loss!r} needs one output unit per class" if key else "")
        + hint
    ]


def _regression_problems(data: Dataset, out_shape: tuple, key: str, loss: Any) -> list[str]:
    problems = []
    if key in _CLASSIFICATION_LOSSES:
        problems.append(
            f"loss {loss!r} is for classification but the data is regression "
            "(continuous targets); use 'mse' or 'mae'"
        )
    target = data.target_shape
    if not _matches(out_shape, target) and not (np.prod(out_shape) == 1 == np.prod(target)):
        problems.append(
            f"the model's output has shape {_shape_text(out_shape)} but the data's "
            f"targets have shape {_shape_text(target)}"
        )
    return problems
