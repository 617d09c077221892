"""A file the user gives as one input of a run's model (``layerlab inspect --file``,
the Inside tab's dropped file, Try it's "See inside").

- Image models (input height x width x 1 or 3): a PNG, JPEG, BMP or GIF file, decoded,
  resized and scaled as the run's images were (:func:`engine.train.inside.try_image`).
- Any model: a ``.npy`` holding one sample of the input's shape (a leading axis of 1
  or a missing channel axis of 1 are accepted: a drawn 28 x 28 digit fits 28 x 28 x 1).
- Tabular models: a ``.csv`` with one row of feature values in the model's input
  order (a header row before it is skipped).

Values are raw, as the user made them (pixels 0..1, feature values in the data's own
units): the run's standardisation is applied, as in training. A file that does not
fit raises :class:`InsideError` naming the file and what the model takes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from engine.data.sources import DataError, sniff_delimiter
from engine.data.table import is_number
from engine.train.inside import InsideError, OpenRun, input_kind, model_input, try_image

MAX_TEXT_BYTES = 1_000_000
"""Largest ``.csv`` read for one sample."""


def file_input(run: OpenRun, path: str | Path) -> np.ndarray:
    """The model's input (batch axis of 1, standardised) for the file at ``path``."""
    path = Path(path)
    shape = tuple(int(s) for s in run.data.input_shape)
    takes = expected(shape)
    if not path.is_file():
        raise InsideError(f"{path}: no such file (the model takes {takes})")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        raw = _npy(path, shape, takes)
    elif suffix == ".csv":
        raw = _csv(path, shape, takes)
    elif _is_image(shape):
        try:
            raw = try_image(run, path)
        except DataError as exc:
            reason = str(exc).replace(f"cannot read image {path}: ", "")
            raise InsideError(f"{path}: not an image ({reason}); the model takes {takes}") from None
    else:
        raise InsideError(f"{path}: not a .npy or .csv file; the model takes {takes}")
    try:
        return model_input(run, raw)
    except InsideError as exc:
        raise InsideError(f"{path}: {exc}") from None


def expected(shape: tuple[int, ...]) -> str:
    """What a file must hold for inputs of ``shape``, in words."""
    dims = "×".join(str(s) for s in shape)
    if _is_image(shape):
        return f"{dims} images (PNG, JPEG, BMP or GIF, or a .npy of shape {shape})"
    n = int(np.prod(shape))
    if len(shape) == 1:
        return f"{n} feature values (a one-row .csv or a .npy of shape {shape})"
    return f"inputs of shape {shape} (a .npy of that shape)"


def _is_image(shape: tuple[int, ...]) -> bool:
    return input_kind(shape) in ("draw", "image")


def _npy(path: Path, shape: tuple[int, ...], takes: str) -> np.ndarray:
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InsideError(
            f"{path}: not a NumPy .npy file ({exc}); the model takes {takes}"
        ) from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
        raise InsideError(f"{path}: not an array of numbers; the model takes {takes}")
    fits = a.shape in (shape, (1, *shape)) or (shape[-1:] == (1,) and a.shape == shape[:-1])
    if not fits:
        raise InsideError(
            f"{path}: an array of shape {tuple(a.shape)}; the model takes one sample of "
            f"shape {shape}"
        )
    return np.asarray(a, dtype=np.float32).reshape(shape)


def _csv(path: Path, shape: tuple[int, ...], takes: str) -> np.ndarray:
    n = int(np.prod(shape))
    if len(shape) != 1:
        raise InsideError(f"{path}: a .csv gives feature values; the model takes {takes}")
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise InsideError(f"{path}: too large for one sample; the model takes {takes}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InsideError(f"{path}: cannot be read as text ({exc})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    delimiter = sniff_delimiter(lines[0]) if lines else ","
    rows = [[cell.strip() for cell in row] for row in csv.reader(lines, delimiter=delimiter)]
    if len(rows) > 1 and not all(is_number(cell) for cell in rows[0]):
        rows = rows[1:]  # a header
    if len(rows) != 1:
        raise InsideError(
            f"{path}: {len(rows)} rows of values; one sample is one row of {n} values"
        )
    bad = [cell for cell in rows[0] if not is_number(cell)]
    if bad:
        raise InsideError(f"{path}: {bad[0]!r} is not a number; the model takes {takes}")
    if len(rows[0]) != n:
        raise InsideError(f"{path}: {len(rows[0])} values; the model takes {takes}")
    return np.array([float(cell) for cell in rows[0]], np.float32)
