"""Where training data comes from: built-in sets, CSV and NPZ (images: :mod:`engine.data.images`).

Each loader turns one source of a project's ``data`` section into a
:class:`RawData` (all samples, before splitting); :mod:`engine.data.dataset` splits,
standardises and serves them. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.arrays import (
    ArrayError,
    as_float32,
    first_nonfinite,
    is_npy,
    open_npy,
    read_npz_arrays,
)
from engine.data.table import CsvSettings, DataFix, TableError, head_line, read_table
from engine.limits import (
    NotRegularFile,
    require_regular,
)


class DataError(ValueError):
    """A data source that cannot be used; the message names the file, line, key or value.
    ``fix``: a change of the data section that would get past it, when one is certain
    (the data panel and the Problems list offer it as a button)."""

    def __init__(self, message: str, fix: DataFix | None = None) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass
class RawData:
    """All samples of one source, before splitting.

    Attributes:
        x: Inputs, float32, samples on axis 0.
        y: Targets: int64 class indices (classification) or float32 of shape
            ``(n, k)`` (regression).
        task: ``"classification"`` or ``"regression"``.
        class_names: One name per class (empty for regression).
        feature_names: Names of the columns of a tabular ``x`` (empty otherwise).
        description: What the data is, for the GUI.
        standardize: Whether standardisation is on by default for this source.
        onehot_columns: Feature indices holding one-hot codes (never standardised).
    """

    x: np.ndarray
    y: np.ndarray
    task: str
    class_names: list[str] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    description: str = ""
    standardize: bool = False
    onehot_columns: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------- section keys


def get_int(section: dict[str, Any], key: str, default: int, minimum: int = 0) -> int:
    """An integer key of the data section, checked; ``DataError`` names key and value."""
    value = section.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value != int(value)
        or value < minimum
    ):
        raise DataError(f'data section: "{key}" must be a whole number >= {minimum}; got {value!r}')
    return int(value)


def get_float(
    section: dict[str, Any], key: str, default: float, low: float = 0.0, high: float = math.inf
) -> float:
    """A number key of the data section within ``[low, high)``."""
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value < high):
        span = f"from {low:g} to below {high:g}" if high != math.inf else f">= {low:g}"
        raise DataError(f'data section: "{key}" must be a number {span}; got {value!r}')
    return float(value)


def get_str(
    section: dict[str, Any], key: str, default: str | None, choices: tuple[str, ...] = ()
) -> str:
    """A text key of the data section (required when ``default`` is None)."""
    value = section.get(key, default)
    if value is None:
        raise DataError(f'data section: source "{section.get("source")}" needs "{key}"')
    if not isinstance(value, str) or (choices and value not in choices):
        allowed = f"one of {', '.join(choices)}" if choices else "a text"
        raise DataError(f'data section: "{key}" must be {allowed}; got {value!r}')
    return value


def get_str_list(section: dict[str, Any], key: str) -> list[str] | None:
    """A list-of-names key of the data section, or None when absent."""
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise DataError(f'data section: "{key}" must be a list of column names; got {value!r}')
    return list(value)


def get_digit_classes(section: dict[str, Any]) -> list[int] | None:
    """The built-in digits' ``classes`` key: which digits to keep (at least two of
    0-9, each once), sorted; they become classes 0, 1, ... in that order. None when
    absent (all ten)."""
    value = section.get("classes")
    if value is None:
        return None
    ok = (
        isinstance(value, list)
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 9 for v in value)
        and len(set(value)) == len(value) >= 2
    )
    if not ok:
        raise DataError(
            'data section: "classes" must list at least two different digits from 0 to 9 '
            f"(e.g. [5, 6, 7, 8, 9]); got {value!r}"
        )
    return sorted(value)


def get_task(section: dict[str, Any]) -> str | None:
    """The ``task`` override, or None to infer it from the targets."""
    if section.get("task") is None:
        return None
    return get_str(section, "task", None, ("classification", "regression"))


def resolve_path(
    section: dict[str, Any], base_dir: str | os.PathLike | None, want_dir: bool = False
) -> Path:
    """The section's ``path``, relative to ``base_dir``; it must exist."""
    raw = get_str(section, "path", None)
    kind = "folder" if want_dir else "file"
    try:
        path = Path(raw).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        exists = path.exists()
    except (OSError, RuntimeError, ValueError) as exc:  # ~nosuchuser, a name too long
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DataError(f"data {kind} {raw[:200]!r} cannot be used ({reason})") from None
    if not exists:
        raise DataError(f"data {kind} not found: {path}")
    if want_dir and not path.is_dir():
        raise DataError(
            f"{path} is not a folder (the images source needs a folder "
            "with one sub-folder per class)"
        )
    if not want_dir:
        try:
            require_regular(path)
        except NotRegularFile as exc:
            raise DataError(f"{exc}; the {section.get('source')} source reads a file") from None
        except OSError as exc:
            raise DataError(f"data file {path} cannot be used ({exc.strerror or exc})") from None
    return path


# --------------------------------------------------------------------------- built-in sets

BUILTINS: dict[str, str] = {
    "digits": "Handwritten digits, 8x8 grayscale images (8, 8, 1), 10 classes, 1797 samples",
    "digits-rows": "The same digits as sequences: 8 time steps of 8 pixels (8, 8), for RNNs",
    "iris": "Iris flowers: 4 measurements, 3 species, 150 samples",
    "wine": "Wine cultivars: 13 chemical measurements, 3 classes, 178 samples",
    "breast_cancer": "Breast cancer diagnosis: 30 features, 2 classes, 569 samples",
    "moons": "Two interleaving half circles in 2-D (2,), 2 classes (keys: samples, noise)",
    "circles": "A circle inside a ring in 2-D (2,), 2 classes (keys: samples, noise)",
    "spirals": "Two interleaved spirals in 2-D (2,), 2 classes (keys: samples, noise)",
    "xor": "Points in the four quadrants, class = signs differ (2,), 2 classes (key: samples)",
    "adding": "The adding problem: sequences (length, 2) of values and two markers; "
    "target = sum of the marked values (regression; keys: length, samples)",
}


def load_builtin(name: str, section: dict[str, Any]) -> RawData:
    """One of :data:`BUILTINS`, generated with the section's ``seed`` (default 0)."""
    if name not in BUILTINS:
        raise DataError(
            f"unknown built-in data set 'builtin:{name}'; valid: "
            + ", ".join(f"builtin:{n}" for n in BUILTINS)
        )
    seed = get_int(section, "seed", 0)
    if name in ("digits", "digits-rows"):
        return _digits(name, get_digit_classes(section))
    if name in ("iris", "wine", "breast_cancer"):
        return _sklearn_table(name)
    if name == "adding":
        return _adding(
            get_int(section, "samples", 1000, 1), get_int(section, "length", 50, 2), seed
        )
    samples = get_int(section, "samples", 500, 2)
    default_noise = {"moons": 0.1, "circles": 0.05, "spirals": 0.05, "xor": 0.0}[name]
    noise = get_float(section, "noise", default_noise)
    x, y, names = _PLANE_SETS[name](samples, noise, np.random.default_rng(seed))
    return RawData(
        x.astype(np.float32),
        y.astype(np.int64),
        "classification",
        names,
        ["x1", "x2"],
        f"builtin:{name}",
        standardize=True,
    )


def _digits(name: str, classes: list[int] | None = None) -> RawData:
    """The 8x8 digits; with ``classes`` only those digits, relabelled 0, 1, ..."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    x = images[..., None] if name == "digits" else images
    y = bunch.target.astype(np.int64)
    names = [str(c) for c in bunch.target_names]
    if classes is not None:
        keep = np.isin(y, classes)
        x, y = x[keep], np.searchsorted(classes, y[keep]).astype(np.int64)
        names = [str(c) for c in classes]
    return RawData(
        x,
        y,
        "classification",
        names,
        [],
        f"builtin:{name}" + ("" if classes is None else f" (digits {classes})"),
    )


def _sklearn_table(name: str) -> RawData:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    return RawData(
        bunch.data.astype(np.float32),
        bunch.target.astype(np.int64),
        "classification",
        [str(c) for c in bunch.target_names],
        [str(f) for f in bunch.feature_names],
        f"builtin:{name}",
        standardize=True,
    )


def _adding(samples: int, length: int, seed: int) -> RawData:
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(samples, length))
    markers = np.zeros((samples, length))
    half = length // 2
    rows = np.arange(samples)
    first = rng.integers(0, half, size=samples)
    second = rng.integers(half, length, size=samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)[:, None]
    return RawData(x, y, "regression", [], [], f"builtin:adding (length {length})")


def _moons(n: int, noise: float, rng: np.random.Generator):
    n0 = n // 2
    t0 = rng.uniform(0, np.pi, n0)
    t1 = rng.uniform(0, np.pi, n - n0)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    x = np.concatenate([upper, lower]) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(n0), np.ones(n - n0)])
    return x, y, ["upper moon", "lower moon"]


def _circles(n: int, noise: float, rng: np.random.Generator):
    n0 = n // 2
    t = rng.uniform(0, 2 * np.pi, n)
    radius = np.where(np.arange(n) < n0, 1.0, 0.5)
    x = np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1) + rng.normal(0, noise, (n, 2))
    y = (np.arange(n) >= n0).astype(np.int64)
    return x, y, ["outer ring", "inner circle"]


def _spirals(n: int, noise: float, rng: np.random.Generator):
    n0 = n // 2
    y = (np.arange(n) >= n0).astype(np.int64)
    along = np.concatenate([np.linspace(0, 1, n0), np.linspace(0, 1, n - n0)])
    angle = 1.75 * 2 * np.pi * along + np.pi * y
    x = np.stack([along * np.sin(angle), along * np.cos(angle)], axis=1)
    return x + rng.normal(0, noise, (n, 2)), y, ["spiral A", "spiral B"]


def _xor(n: int, noise: float, rng: np.random.Generator):
    x = rng.uniform(-1, 1, (n, 2))
    x += np.sign(x) * 0.05  # keep points off the axes, like the Playground's padding
    y = (x[:, 0] * x[:, 1] < 0).astype(np.int64)
    return x + rng.normal(0, noise, (n, 2)), y, ["same signs", "different signs"]


_PLANE_SETS: dict[str, Callable] = {
    "moons": _moons,
    "circles": _circles,
    "spirals": _spirals,
    "xor": _xor,
}


# --------------------------------------------------------------------------- targets


def encode_targets(
    values: np.ndarray, task: str | None, where: str, max_classes: int = 20
) -> tuple[np.ndarray, str, list[str]]:
    """Targets -> (y, task, class_names).

    Strings are classes. Numbers are classes when integer-valued with at most
    ``max_classes`` distinct values, else regression; ``task`` overrides that.
    """
    if values.ndim == 2 and values.shape[1] == 1 and task != "regression":
        values = values[:, 0]  # labels shaped (n, 1), as Keras datasets ship them
    if values.dtype.kind not in "biufUSO":
        raise DataError(f"{where}: the targets must be numbers or text; they hold {values.dtype}")
    if values.dtype.kind == "S":
        try:
            values = np.char.decode(values, "utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{where}: the text targets are not UTF-8") from None
    if values.dtype.kind in "USO":
        if task == "regression":
            raise DataError(
                f"{where}: the targets are text ({values.flat[0]!r}); "
                'a "regression" task needs numbers'
            )
        names, y = np.unique(values.astype(str), return_inverse=True)
        _need_two_classes([str(n) for n in names], where)
        return y.astype(np.int64).reshape(-1), "classification", [str(n) for n in names]
    numbers = values.astype(np.float64)
    if task is None:
        whole = bool(np.all(numbers == np.round(numbers)))
        few = len(np.unique(numbers)) <= max_classes
        task = "classification" if whole and few and numbers.ndim == 1 else "regression"
    if task == "regression":
        y = numbers.astype(np.float32)
        return (y[:, None] if y.ndim == 1 else y), "regression", []
    if numbers.ndim != 1:
        raise DataError(
            f"{where}: class labels must be one value per sample; got shape {numbers.shape}"
        )
    classes, y = np.unique(numbers, return_inverse=True)
    names = [str(int(c)) if c == int(c) else str(c) for c in classes]
    _need_two_classes(names, where)
    return y.astype(np.int64).reshape(-1), "classification", names


def _need_two_classes(names: list[str], where: str) -> None:
    if len(names) < 2:
        raise DataError(
            f"{where}: every target is {names[0]!r}: a classifier needs at "
            'least two classes (or set "task": "regression")'
            if names
            else f"{where}: there are no targets"
        )


# --------------------------------------------------------------------------- CSV

MISSING_KEYS = ("error", "drop", "mean")


def load_csv(path: Path, section: dict[str, Any]) -> RawData:
    """A CSV file with a header row: one target column, numeric or categorical features.

    Read by :func:`engine.data.table.read_table` (pyarrow); ``missing`` chooses what a
    missing value does (``error``, ``drop``, ``mean``). A file beyond
    :data:`engine.limits.DATA_MEMORY_MB` comes back memory-mapped from a cache file.
    """
    delimiter = section.get("delimiter")
    target = section.get("target")
    if target is not None and not isinstance(target, str):
        raise DataError(f'data section: "target" must be a column name; got {target!r}')
    features = get_str_list(section, "features")
    categorical = get_str_list(section, "categorical") or []
    missing = get_str(section, "missing", "error", MISSING_KEYS)
    task = get_task(section)
    try:
        if delimiter is None:
            delimiter = sniff_delimiter(head_line(path)[:65536])
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            raise DataError(f'data section: "delimiter" must be one character; got {delimiter!r}')
        table = read_table(
            path,
            CsvSettings(
                delimiter,
                target,
                None if features is None else tuple(features),
                tuple(categorical),
                missing,
                task == "regression",
            ),
        )
    except TableError as exc:
        raise DataError(str(exc), exc.fix) from None
    y, task, class_names = encode_targets(
        table.target, task, f"{path}, column {table.target_name!r}"
    )
    notes = []
    if table.dropped:
        notes.append(f"{table.dropped:,} rows with missing values dropped")
    if table.filled:
        notes.append(f"{table.filled:,} missing values filled with the column mean")
    return RawData(
        table.x,
        y,
        task,
        class_names,
        table.feature_names,
        f"csv: {path.name}" + (f" ({'; '.join(notes)})" if notes else ""),
        standardize=True,
        onehot_columns=table.onehot_columns,
    )


DELIMITERS = ",;\t|"


def sniff_delimiter(text: str) -> str:
    """A CSV text's delimiter: the candidate seen most often on its first non-blank line."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    return max(DELIMITERS, key=line.count)


# --------------------------------------------------------------------------- NPZ and NPY


def load_npz(path: Path, section: dict[str, Any]) -> RawData:
    """Arrays ``x`` and ``y`` (names from the section) of a NumPy ``.npz`` file, or a
    ``.npy`` file of inputs with ``y`` naming the targets' ``.npy`` file (beside it).

    Stored (uncompressed) arrays and ``.npy`` files are memory-mapped, never copied
    whole (:mod:`engine.data.arrays`); the targets are read into memory.
    """
    x_key = get_str(section, "x", "x")
    y_key = get_str(section, "y", "y")
    try:
        if is_npy(path) and y_key.endswith(".npy"):
            x_key, y_path = path.name, path.parent / y_key
            try:
                require_regular(y_path)
            except FileNotFoundError:
                raise DataError(f'{path}: the targets file "y" ({y_path}) is not there') from None
            x, y = open_npy(path, "x"), np.array(open_npy(y_path, "y"))
            where = y_path
        else:
            x, y = read_npz_arrays(path, x_key, y_key)
            y, where = np.array(y), path
    except (ArrayError, NotRegularFile) as exc:
        raise DataError(str(exc)) from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if y.ndim == 0:
        y = y.reshape(1)
    if x.ndim < 2 and x.dtype.kind in "biuf":
        x = x.reshape(-1, 1)
    if x.size == 0:
        raise DataError(f"{path}: array {x_key!r} holds no values (shape {x.shape})")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: array {x_key!r} must hold numbers; it holds {x.dtype}")
    if len(x) != len(y):
        raise DataError(f"{path}: array {x_key!r} has {len(x)} samples but {y_key!r} has {len(y)}")
    bad = first_nonfinite(x)
    if bad is not None:
        raise DataError(f"{path}: array {x_key!r} has a NaN or infinite value in sample {bad}")
    if (
        y.dtype.kind in "biuf"
        and y.ndim == 2
        and y.shape[1] > 1
        and _is_one_hot(y)
        and get_task(section) != "regression"
    ):
        y = y.argmax(axis=1)
    if y.dtype.kind in "f" and not np.all(np.isfinite(y)):
        raise DataError(
            f"{where}: array {y_key!r} has a NaN or infinite value in sample "
            f"{np.argwhere(~np.isfinite(y.reshape(len(y), -1)))[0][0]}"
        )
    y, task, class_names = encode_targets(y, get_task(section), f"{where}, array {y_key!r}")
    try:
        x = as_float32(x, path, x_key)
    except OSError as exc:
        raise DataError(f"{path}: the float32 cache file cannot be written ({exc})") from None
    kind = "npy" if path.suffix.lower() == ".npy" or x_key == path.name else "npz"
    return RawData(x, y, task, class_names, [], f"{kind}: {path.name}", standardize=x.ndim == 2)


def _is_one_hot(y: np.ndarray) -> bool:
    return bool(np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1))
