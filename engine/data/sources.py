"""Where training data comes from: built-in sets, CSV and NPZ (images: :mod:`engine.data.images`).

Each loader turns one source of a project's ``data`` section into a
:class:`RawData` (all samples, before splitting); :mod:`engine.data.dataset` splits,
standardises and serves them. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from engine.build.errors import first_line
from engine.limits import (
    CSV_FIELD_KB,
    CSV_LINE_KB,
    CSV_MB,
    NPZ_MB,
    LimitExceeded,
    NotRegularFile,
    check_mb,
    check_zip_member,
    open_regular,
    read_zip_member,
    require_regular,
)


class DataError(ValueError):
    """A data source that cannot be used; the message names the file, line, key or value."""


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
        return _digits(name)
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


def _digits(name: str) -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    x = images[..., None] if name == "digits" else images
    return RawData(
        x,
        bunch.target.astype(np.int64),
        "classification",
        [str(c) for c in bunch.target_names],
        [],
        f"builtin:{name}",
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

_MISSING = {"", "na", "n/a", "nan", "null", "?"}
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_LEVELS = 1000  # one-hot columns of one categorical feature


def load_csv(path: Path, section: dict[str, Any]) -> RawData:
    """A CSV file with a header row: one target column, numeric or categorical features."""
    header, rows = _read_csv_rows(path, section.get("delimiter"))
    target = section.get("target", header[-1])
    if not isinstance(target, str) or target not in header:
        raise DataError(f"{path}: no target column {target!r}; columns: {', '.join(header)}")
    features = get_str_list(section, "features")
    if features is None:
        features = [c for c in header if c != target]
    categorical = get_str_list(section, "categorical") or []
    for key, names in (("features", features), ("categorical", categorical)):
        for name in names:
            if name not in header:
                raise DataError(
                    f'{path}: "{key}" names column {name!r}, which is not in the '
                    f"file; columns: {', '.join(header)}"
                )
    if target in features:
        raise DataError(f"{path}: column {target!r} is the target and cannot also be a feature")
    if not features:
        raise DataError(f"{path}: no feature columns besides the target {target!r}")

    columns: list[np.ndarray] = []
    feature_names: list[str] = []
    onehot: list[int] = []
    for name in features:
        cells = _column_cells(path, header, rows, name)
        if name in categorical:
            levels = sorted(set(cells))
            if len(levels) > MAX_LEVELS:
                raise DataError(
                    f"{path}, column {name!r}: {len(levels)} different values; "
                    f"one-hot encoding takes at most {MAX_LEVELS} (is it an id "
                    'column? leave it out of "features")'
                )
            for level in levels:
                onehot.append(len(feature_names))
                feature_names.append(f"{name}={level}")
                columns.append(np.array([c == level for c in cells], dtype=np.float32))
        else:
            columns.append(_numbers(path, rows, name, cells))
            feature_names.append(name)
    x = np.stack(columns, axis=1).astype(np.float32)

    target_cells = _column_cells(path, header, rows, target)
    target_values = _target_values(
        path, rows, target, target_cells, get_task(section) == "regression"
    )
    y, task, class_names = encode_targets(
        target_values, get_task(section), f"{path}, column {target!r}"
    )
    return RawData(
        x,
        y,
        task,
        class_names,
        feature_names,
        f"csv: {path.name}",
        standardize=True,
        onehot_columns=onehot,
    )


def _target_values(
    path: Path, rows: list[tuple[int, list[str]]], name: str, cells: list[str], regression: bool
) -> np.ndarray:
    """Numbers when the column is numbers, text (classes) when it is text. A column of
    numbers with a few odd cells (1 in 20 or fewer, at most 5) names the first one:
    it is almost surely a typo, not a class."""
    numbers, odd = [], []
    for i, cell in enumerate(cells):
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            odd.append(i)
        numbers.append(value)
    if not odd:
        return np.array(numbers)
    if len(odd) < len(cells) and (regression or len(odd) <= min(5, len(cells) // 20)):
        i = odd[0]
        raise DataError(
            f"{path} line {rows[i][0]}, column {name!r}: {cells[i]!r} is not a "
            "finite number (the rest of the column is numbers)"
        )
    return np.array(cells)


DELIMITERS = ",;\t|"


def sniff_delimiter(text: str) -> str:
    """A CSV text's delimiter: the candidate seen most often on its first non-blank line."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    return max(DELIMITERS, key=line.count)


def _read_csv_rows(path: Path, delimiter: Any) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, cells) rows; ragged, empty or binary files are refused.

    Bounded before and while reading: the file's size (:data:`engine.limits.CSV_MB`),
    each line's length (``CSV_LINE_KB``) and each field's (``CSV_FIELD_KB``), so a
    hostile file is refused by name without filling memory.
    """
    try:
        with open_regular(path) as f:
            check_mb(CSV_MB, os.fstat(f.fileno()).st_size, f"{path}: the file")
            lines = _csv_lines(path, f)
            head: list[str] = []
            for line in lines:
                head.append(line)
                if line.strip():
                    break
            else:
                raise DataError(f"{path} is empty (a CSV file needs a header row and data rows)")
            if delimiter is None:
                delimiter = sniff_delimiter(head[-1][:65536])
            if not isinstance(delimiter, str) or len(delimiter) != 1:
                raise DataError(
                    f'data section: "delimiter" must be one character; got {delimiter!r}'
                )
            return _parse_csv(path, itertools.chain(head, lines), delimiter)
    except (LimitExceeded, NotRegularFile) as exc:
        raise DataError(str(exc)) from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror or exc})") from None


def _csv_lines(path: Path, f: BinaryIO) -> Iterator[str]:
    """The file's lines as text, each bounded in length (and the file in size)."""
    max_line = CSV_LINE_KB.value() * 1024
    max_total = CSV_MB.value() * 10**6
    number = offset = 0
    while True:
        raw = f.readline(max_line + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_line:
            raise DataError(
                f"{path} line {number}: the line is longer than {CSV_LINE_KB.value():,} KB, "
                f"the limit for one line (set {CSV_LINE_KB.env} to raise it)"
            )
        if offset < 4096 and b"\0" in raw:
            raise DataError(f"{path} is not a CSV file (it holds binary data)")
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path} is not a CSV file (not UTF-8 text at byte {offset + exc.start})"
            ) from None
        offset += len(raw)
        if offset > max_total:  # it grew while being read
            check_mb(CSV_MB, offset, f"{path}: the file")
        if "\r" in text.rstrip("\r\n"):  # old Mac line ends: split as text mode would
            yield from io.StringIO(text, newline="")
        else:
            yield text


def _parse_csv(
    path: Path, lines: Iterator[str], delimiter: str
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    csv.field_size_limit(CSV_FIELD_KB.value() * 1024)
    reader = csv.reader(lines, delimiter=delimiter)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                _check_header(path, reader.line_num, header)
                continue
            if len(cells) != len(header):
                raise DataError(
                    f"{path} line {reader.line_num}: {len(cells)} values but the "
                    f"header (line 1) has {len(header)} columns"
                )
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise DataError(
                f"{path} line {reader.line_num}: a field is longer than "
                f"{CSV_FIELD_KB.value():,} KB, the limit for one field "
                f"(set {CSV_FIELD_KB.env} to raise it)"
            ) from None
        raise DataError(f"{path} line {reader.line_num}: not valid CSV ({exc})") from None
    if header is None:
        raise DataError(f"{path} is empty (a CSV file needs a header row and data rows)")
    if not rows:
        raise DataError(f"{path} has a header but no data rows")
    return header, rows


def _check_header(path: Path, line: int, header: list[str]) -> None:
    for i, name in enumerate(header):
        if not name:
            raise DataError(f"{path} line {line}: column {i + 1} of the header has no name")
        if header.index(name) != i:
            raise DataError(f"{path} line {line}: column name {name!r} appears twice")


def _column_cells(
    path: Path, header: list[str], rows: list[tuple[int, list[str]]], name: str
) -> list[str]:
    """The stripped cells of one column; a missing value names its line."""
    index = header.index(name)
    cells = []
    for line, row in rows:
        cell = row[index].strip()
        if cell.lower() in _MISSING:
            shown = f"{cell!r}" if cell else "empty cell"
            raise DataError(f"{path} line {line}, column {name!r}: missing value ({shown})")
        cells.append(cell)
    return cells


def _numbers(
    path: Path, rows: list[tuple[int, list[str]]], name: str, cells: list[str]
) -> np.ndarray:
    out = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        try:
            out[i] = float(cell)
        except ValueError:
            raise DataError(
                f"{path} line {rows[i][0]}, column {name!r}: {cell!r} is not a "
                'number; list the column under "categorical" to one-hot '
                "encode it"
            ) from None
        if not math.isfinite(out[i]) or abs(out[i]) > FLOAT32_MAX:
            raise DataError(
                f"{path} line {rows[i][0]}, column {name!r}: {cell!r} is not a "
                "finite number (within float32's range, about 3.4e38)"
            )
    return out


# --------------------------------------------------------------------------- NPZ


def load_npz(path: Path, section: dict[str, Any]) -> RawData:
    """Arrays ``x`` and ``y`` (names from the section) of a NumPy ``.npz`` file."""
    x_key = get_str(section, "x", "x")
    y_key = get_str(section, "y", "y")
    x, y = read_npz_arrays(path, x_key, y_key)
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise DataError(
            f"{path}: {x_key!r} or {y_key!r} is not a NumPy array inside the "
            "archive (save it with numpy.savez(path, x=..., y=...))"
        )
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
    bad = np.argwhere(~np.isfinite(x.reshape(len(x), -1).astype(np.float32)))
    if len(bad):
        raise DataError(
            f"{path}: array {x_key!r} has a NaN or infinite value in sample {bad[0][0]}"
        )
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
            f"{path}: array {y_key!r} has a NaN or infinite value in sample "
            f"{np.argwhere(~np.isfinite(y.reshape(len(y), -1)))[0][0]}"
        )
    y, task, class_names = encode_targets(y, get_task(section), f"{path}, array {y_key!r}")
    return RawData(
        x.astype(np.float32), y, task, class_names, [], f"npz: {path.name}", standardize=x.ndim == 2
    )


def read_npz_arrays(path: Path, x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Two arrays of an ``.npz`` file, read within :data:`engine.limits.NPZ_MB`.

    Each member's declared unpacked size (and packing ratio) is checked before it is
    read, the read is bounded, and the array header's shape must match the bytes
    there are before an array is made: no member, however built, takes more memory
    than the limit allows. Pickled (object) arrays are refused.
    """
    try:
        with open_regular(path) as f:
            if f.read(6) == b"\x93NUMPY":
                raise DataError(
                    f"{path} is a single .npy array, not an .npz archive with "
                    "named arrays (save it with numpy.savez(path, x=..., y=...))"
                )
            f.seek(0)
            with zipfile.ZipFile(f) as archive:
                members = {(n[:-4] if n.endswith(".npy") else n): n for n in archive.namelist()}
                for key, role in ((x_key, "inputs"), (y_key, "targets")):
                    if key not in members:
                        raise DataError(
                            f"{path} has no array {key!r} (for the {role}); arrays "
                            f"in the file: {', '.join(members) or 'none'}"
                        )
                infos = [archive.getinfo(members[k]) for k in (x_key, y_key)]
                for info in infos:
                    check_zip_member(info, NPZ_MB)
                check_mb(NPZ_MB, sum(i.file_size for i in infos), "the data unpacked")
                return tuple(  # type: ignore[return-value]
                    _npy(path, key, read_zip_member(archive, members[key], NPZ_MB))
                    for key in (x_key, y_key)
                )
    except NotRegularFile as exc:
        raise DataError(str(exc)) from None
    except LimitExceeded as exc:
        raise DataError(f"{path}: {exc}") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path} is not a readable .npz file ({first_line(exc, 200)})") from None


def _npy(path: Path, key: str, data: bytes) -> np.ndarray:
    """The array in one ``.npy`` member, checked against the bytes it really has."""
    buf = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buf)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, fortran, dtype = read_header(buf)
    except ValueError as exc:
        raise DataError(f"{path}: array {key!r} is not a NumPy array ({exc})") from None
    if dtype.hasobject:
        raise DataError(
            f"{path}: array {key!r} holds Python objects, which are never loaded "
            "(pickled data can run code); save numbers or text"
        )
    count = math.prod(shape)
    start = buf.tell()
    if count * dtype.itemsize > len(data) - start:
        raise DataError(
            f"{path}: array {key!r} declares shape {shape} ({count * dtype.itemsize:,} bytes) "
            f"but holds {len(data) - start:,} bytes: the file is damaged"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=start)
    return array.reshape(shape, order="F" if fortran else "C")


def _is_one_hot(y: np.ndarray) -> bool:
    return bool(np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1))
