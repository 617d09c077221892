"""A CSV file -> a float32 feature matrix and its target column, read with ``pyarrow.csv``.

Why pyarrow (and not pandas): it is the reader pandas itself uses for speed
(``engine="pyarrow"``), without pandas' own weight; it parses in C++ on every core,
converts each column straight to a typed array (float64 for numbers, strings for
categories and targets), and has a streaming reader (``open_csv``) that hands over one
block at a time, which is what a file larger than memory needs.

Two ways through one batch converter:

- a file up to :data:`engine.limits.DATA_MEMORY_MB` is read whole (``read_csv``, all
  cores) into an in-memory array;
- a larger file is streamed (``open_csv``) block by block into a float32 cache file
  (:mod:`engine.data.arrays`), returned as an ``np.memmap``; the second run with the same
  file and settings reuses it. Peak memory is a few blocks (one block is
  ``CSV_LINE_KB``, 1 MB by default), plus the targets.

pyarrow is fast but says little about *where* a file is wrong. Whenever it refuses a
file, or a converted column holds something the data may not (a missing value, a
non-finite number), the file is re-read by Python's :mod:`csv` module, only then, to
name the first bad line and column exactly as before (:func:`_diagnose`).

Missing values (``""``, ``NA``, ``N/A``, ``NaN``, ``null``, ``?``, any case) follow the
data setting ``missing``: ``"error"`` (the default) refuses the file naming line and
column; ``"drop"`` drops the rows that have one in a column used; ``"mean"`` fills a
feature with the mean of that column over all the file's rows that have a value (for a
categorical column: each one-hot code gets its level's frequency). The mean is taken
over all rows, not the training rows only, because the seeded split is drawn later from
the targets (:func:`engine.data.dataset.split_indices`); one number per column is all
that leaks. A missing target cannot be filled: ``"mean"`` refuses it and says to drop.

pyarrow is imported inside the functions that read (as TensorFlow is): it takes about
0.15 s, which the window does not pay at start-up.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from engine.data.arrays import FloatRowWriter, cache_root, fill_nan_columns, table_cache
from engine.limits import (
    CSV_FIELD_KB,
    CSV_LINE_KB,
    CSV_MB,
    DATA_MEMORY_MB,
    LimitExceeded,
    NotRegularFile,
    check_mb,
    open_regular,
)

#: Cells that mean "no value" (compared stripped and lower-cased).
MISSING_TOKENS = ("", "na", "n/a", "nan", "null", "?")
#: What pyarrow reads as null in a number column (it compares exactly, so every case).
NULL_VALUES = sorted(
    {v for t in MISSING_TOKENS for v in (t, t.upper(), t.title(), t.capitalize())} | {"NaN"}
)
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_LEVELS = 1000  # one-hot columns of one categorical feature
MISSING_POLICIES = ("error", "drop", "mean")
_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


@dataclass(frozen=True)
class DataFix:
    """A change of the data section that makes a refused file load.

    Attributes:
        text: What the fix does, as a button says it ("One-hot encode 'city'").
        changes: The data section's keys to set.
    """

    text: str
    changes: dict[str, Any]


DROP_MISSING = DataFix("Drop the rows with missing values", {"missing": "drop"})


class TableError(ValueError):
    """A CSV file that cannot be used; the message names the file, line and column.
    ``fix``: a change of the data section that would get past it, when one is certain."""

    def __init__(self, message: str, fix: DataFix | None = None) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass(frozen=True)
class CsvSettings:
    """What to read from a CSV file (the ``csv`` keys of a data section, checked).

    Attributes:
        delimiter: One character.
        target: The target column's name, or None for the last column.
        features: The feature columns, or None for all but the target.
        categorical: Feature columns to one-hot encode.
        missing: ``"error"``, ``"drop"`` or ``"mean"``.
        regression: The task was set to regression (a target typo is then never a class).
    """

    delimiter: str
    target: str | None = None
    features: tuple[str, ...] | None = None
    categorical: tuple[str, ...] = ()
    missing: str = "error"
    regression: bool = False


@dataclass
class Table:
    """A CSV file's numbers.

    Attributes:
        x: float32 ``(rows, features)``; an ``np.memmap`` of a cache file when the file
            was larger than the memory budget.
        target: The target column: float64 numbers, or text (one class name per row).
        target_name: The target column's name.
        feature_names: One per column of ``x`` (``"color=red"`` for one-hot codes).
        onehot_columns: Columns of ``x`` holding one-hot codes.
        dropped: Rows dropped for a missing value (``missing: "drop"``).
        filled: Cells filled with a mean (``missing: "mean"``).
        streamed: Whether ``x`` was streamed to (or reused from) a cache file.
    """

    x: np.ndarray
    target: np.ndarray
    target_name: str
    feature_names: list[str] = field(default_factory=list)
    onehot_columns: list[int] = field(default_factory=list)
    dropped: int = 0
    filled: int = 0
    streamed: bool = False


@dataclass
class _Layout:
    """The header and what each used column is."""

    names: list[str]  # stripped header names
    header_line: int  # the header's line number (1-based; blank lines before it count)
    target: int
    numeric: list[int]  # feature columns read as numbers, in feature order
    categorical: list[int]
    features: list[int]  # in the order of the data section (or the file)

    def used(self) -> list[int]:
        return sorted({*self.features, self.target})


# --------------------------------------------------------------------------- public


def head_line(path: Path) -> str:
    """The file's first non-blank line (for sniffing the delimiter), checked as text
    (and the file's size against ``CSV_MB``)."""
    try:
        with open_regular(path) as f:
            check_mb(CSV_MB, os.fstat(f.fileno()).st_size, f"{path}: the file")
            for line in _lines(path, f):
                if line.strip():
                    return line
    except (LimitExceeded, NotRegularFile) as exc:
        raise TableError(str(exc)) from None
    except OSError as exc:
        raise TableError(f"{path} cannot be read ({exc.strerror or exc})") from None
    raise TableError(f"{path} is empty (a CSV file needs a header row and data rows)")


def read_table(path: Path, settings: CsvSettings) -> Table:
    """Read ``path`` as :class:`CsvSettings` say; the file is never trusted.

    Bounded like the old reader: the file's size (``CSV_MB``), each line
    (``CSV_LINE_KB``) and each field (``CSV_FIELD_KB``).

    Raises:
        TableError: One message naming the file (and line and column where there is one).
    """
    if settings.missing not in MISSING_POLICIES:
        raise TableError(
            f'data section: "missing" must be one of {", ".join(MISSING_POLICIES)}; '
            f"got {settings.missing!r}"
        )
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            check_mb(CSV_MB, size, f"{path}: the file")
        layout = _layout(path, settings)
        if size > DATA_MEMORY_MB.value() * 10**6:
            try:
                return _read_streamed(path, settings, layout, size)
            except OSError as exc:
                if exc.filename and Path(exc.filename).resolve() == path.resolve():
                    raise
                raise TableError(
                    f"{path} is larger than {DATA_MEMORY_MB.value():,} MB "
                    f"({DATA_MEMORY_MB.env}), so it is read into a cache file in "
                    f"{cache_root() / 'tables'}, which cannot be written "
                    f"({exc.strerror or exc}); free some disk space there or set "
                    "LAYERLAB_CACHE_DIR to another folder"
                ) from None
        return _read_in_memory(path, settings, layout)
    except (LimitExceeded, NotRegularFile) as exc:
        raise TableError(str(exc)) from None
    except OSError as exc:
        raise TableError(f"{path} cannot be read ({exc.strerror or exc})") from None


# --------------------------------------------------------------------------- header


def _header(path: Path, delimiter: str) -> tuple[list[str], int]:
    with open_regular(path) as f:
        csv.field_size_limit(CSV_FIELD_KB.value() * 1024)
        reader = csv.reader(_lines(path, f), delimiter=delimiter)
        try:
            for cells in reader:
                if cells and not all(not c.strip() for c in cells):
                    header = [c.strip() for c in cells]
                    _check_header(path, reader.line_num, header)
                    return header, reader.line_num
        except csv.Error as exc:
            raise _csv_error(path, reader.line_num, exc) from None
    raise TableError(f"{path} is empty (a CSV file needs a header row and data rows)")


def _check_header(path: Path, line: int, header: list[str]) -> None:
    if all(is_number(name) for name in header):
        shown = ", ".join(header[:4]) + (", ..." if len(header) > 4 else "")
        raise TableError(
            f"{path} line {line}: the first row holds numbers ({shown}), not column names; "
            "a CSV file needs a header row naming its columns"
        )
    for i, name in enumerate(header):
        if not name:
            raise TableError(f"{path} line {line}: column {i + 1} of the header has no name")
        if header.index(name) != i:
            raise TableError(f"{path} line {line}: column name {name!r} appears twice")


def is_number(text: str) -> bool:
    """Whether ``text`` reads as a number (``float`` takes it)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _layout(path: Path, settings: CsvSettings) -> _Layout:
    names, line = _header(path, settings.delimiter)
    target = settings.target if settings.target is not None else names[-1]
    if target not in names:
        raise TableError(f"{path}: no target column {target!r}; columns: {', '.join(names)}")
    features = (
        list(settings.features)
        if settings.features is not None
        else [n for n in names if n != target]
    )
    for key, chosen in (("features", features), ("categorical", settings.categorical)):
        for name in chosen:
            if name not in names:
                raise TableError(
                    f'{path}: "{key}" names column {name!r}, which is not in the '
                    f"file; columns: {', '.join(names)}"
                )
    if target in features:
        raise TableError(f"{path}: column {target!r} is the target and cannot also be a feature")
    if not features:
        raise TableError(f"{path}: no feature columns besides the target {target!r}")
    index = [names.index(n) for n in features]
    return _Layout(
        names,
        line,
        names.index(target),
        [i for i in index if names[i] not in settings.categorical],
        [i for i in index if names[i] in settings.categorical],
        index,
    )


# --------------------------------------------------------------------------- pyarrow


def _options(path: Path, settings: CsvSettings, layout: _Layout, only: list[int] | None = None):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = [f"c{i}" for i in range(len(layout.names))]
    types = {f"c{i}": pa.float64() for i in layout.numeric}
    types.update({f"c{i}": pa.string() for i in (*layout.categorical, layout.target)})
    read = pacsv.ReadOptions(
        column_names=columns, skip_rows=layout.header_line, block_size=CSV_LINE_KB.value() * 1024
    )
    parse = pacsv.ParseOptions(delimiter=settings.delimiter)
    convert = pacsv.ConvertOptions(
        column_types=types,
        null_values=NULL_VALUES,
        strings_can_be_null=False,
        include_columns=[f"c{i}" for i in (only if only is not None else layout.used())],
    )
    return read, parse, convert


def _trimmed(column) -> Any:
    import pyarrow.compute as pc

    return pc.utf8_trim_whitespace(column)


def _missing_mask(strings) -> np.ndarray:
    """True where a (trimmed) string cell is a missing value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    hit = pc.is_in(pc.utf8_lower(strings), value_set=pa.array(MISSING_TOKENS))
    return np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)


def _levels(path: Path, layout: _Layout, columns: dict[int, list]) -> dict[int, list[str]]:
    """Each categorical column's sorted levels (missing cells aside), within MAX_LEVELS."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out: dict[int, list[str]] = {}
    for i in layout.categorical:
        values: set[str] = set()
        for chunk in columns[i]:
            strings = _trimmed(chunk)
            keep = pa.array(~_missing_mask(strings))
            values.update(pc.unique(pc.filter(strings, keep)).to_pylist())
            if len(values) > MAX_LEVELS:
                break
        if len(values) > MAX_LEVELS:
            raise TableError(
                f"{path}, column {layout.names[i]!r}: more than {MAX_LEVELS} different "
                f"values; one-hot encoding takes at most {MAX_LEVELS} (is it an id "
                'column? leave it out of "features")'
            )
        out[i] = sorted(values)
    return out


@dataclass
class _Batch:
    """One block converted: its rows of x, the target cells, which rows had what."""

    x: np.ndarray
    target: Any  # pyarrow string array (trimmed), rows kept
    first_row: int  # index of the block's first row among all data rows
    kept: np.ndarray | None  # indices (in the block) of the rows kept, None = all


def _convert(
    path: Path,
    settings: CsvSettings,
    layout: _Layout,
    levels: dict[int, list[str]],
    batch,
    first_row: int,
) -> _Batch:
    """One record batch -> float32 rows; missing cells handled as ``settings.missing`` says."""
    import pyarrow as pa
    import pyarrow.compute as pc

    width = len(layout.numeric) + sum(len(v) for v in levels.values())
    rows = batch.num_rows
    x = np.zeros((rows, width), dtype=np.float32)
    missing = np.zeros(rows, dtype=bool)
    column = 0
    for i in layout.features:
        cells = batch.column(f"c{i}")
        if i in levels:
            strings = _trimmed(cells)
            gone = _missing_mask(strings)
            codes = pc.index_in(strings, value_set=pa.array(levels[i], pa.string()))
            codes = np.asarray(codes.fill_null(-1).to_numpy(zero_copy_only=False))
            hit = codes >= 0
            x[np.flatnonzero(hit), column + codes[hit]] = 1.0
            if gone.any():
                missing |= gone
                x[gone, column : column + len(levels[i])] = np.nan
            column += len(levels[i])
            continue
        values = np.asarray(cells.to_numpy(zero_copy_only=False), dtype=np.float64)
        gone = np.asarray(cells.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        bad = ~gone & (~np.isfinite(values) | (np.abs(values) > FLOAT32_MAX))
        if bad.any():
            _diagnose(path, settings, layout, first_row + int(np.argmax(bad)))
        x[:, column] = values  # NaN where missing
        missing |= gone
        column += 1
    target = _trimmed(batch.column(f"c{layout.target}"))
    target_gone = _missing_mask(target)
    if settings.missing == "error" and (missing.any() or target_gone.any()):
        _diagnose(path, settings, layout, first_row + int(np.argmax(missing | target_gone)))
    if settings.missing == "mean" and target_gone.any():
        row = first_row + int(np.argmax(target_gone))
        line, _ = _locate(path, settings.delimiter, layout, row)
        raise TableError(
            f"{path} line {line}, column {layout.names[layout.target]!r}: missing target; "
            '"missing": "mean" fills features only (use "drop" to leave such rows out)',
            DROP_MISSING,
        )
    drop = (missing | target_gone) if settings.missing == "drop" else None
    if drop is None or not drop.any():
        return _Batch(x, target, first_row, None)
    kept = np.flatnonzero(~drop)
    return _Batch(x[kept], pc.take(target, pa.array(kept)), first_row, kept)


def _arrow_failed(path: Path, settings: CsvSettings, layout: _Layout, exc: Exception):
    """pyarrow refused the file: find and name the first bad line, or say what it said."""
    _diagnose(path, settings, layout, None, str(exc))


def _read_in_memory(path: Path, settings: CsvSettings, layout: _Layout) -> Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read, parse, convert = _options(path, settings, layout)
    try:
        table = pacsv.read_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        _arrow_failed(path, settings, layout, exc)
    if table.num_rows == 0:
        raise TableError(f"{path} has a header but no data rows")
    _check_field_lengths(path, settings, layout, table)
    levels = _levels(path, layout, {i: table.column(f"c{i}").chunks for i in layout.categorical})
    width = len(layout.numeric) + sum(len(v) for v in levels.values())
    x = np.empty((table.num_rows, width), dtype=np.float32)
    targets, kept_rows = [], []
    at = start = 0
    for batch in table.to_batches():
        part = _convert(path, settings, layout, levels, batch, start)
        x[at : at + len(part.x)] = part.x
        at += len(part.x)
        targets.append(part.target)
        kept_rows.append((start, len(part.x), part.kept))
        start += batch.num_rows
    x = x[:at]
    if at == 0:
        raise TableError(f'{path}: every row has a missing value ("missing": "drop")')
    filled = 0
    if settings.missing == "mean":
        filled = fill_nan_columns(x, _means(x, path, layout, levels))
    target = _target_values(
        path, settings, layout, pa.chunked_array(targets, pa.string()), kept_rows
    )
    return _table(layout, levels, x, target, table.num_rows - at, filled, streamed=False)


def _read_streamed(path: Path, settings: CsvSettings, layout: _Layout, size: int) -> Table:
    """A file beyond the memory budget: block by block into a float32 cache file."""
    import pyarrow as pa

    entry = table_cache(path, size, _settings_key(settings))
    cached = entry.load()
    if cached is not None:
        meta, x, target = cached
        return Table(
            x,
            target,
            meta["target_name"],
            meta["feature_names"],
            meta["onehot_columns"],
            meta["dropped"],
            meta["filled"],
            streamed=True,
        )
    levels = {}
    if layout.categorical:
        columns: dict[int, list] = {i: [] for i in layout.categorical}
        for batch in _batches(path, settings, layout, layout.categorical):
            for i in layout.categorical:
                columns[i].append(batch.column(f"c{i}"))
                if len(columns[i]) > 64:  # keep the levels, not the cells
                    columns[i] = [
                        pa.array(_levels(path, _only(layout, i), {i: columns[i]})[i], pa.string())
                    ]
        levels = _levels(path, layout, columns)
    width = len(layout.numeric) + sum(len(v) for v in levels.values())
    targets, kept_rows = [], []
    sums = np.zeros(width, dtype=np.float64)
    counts = np.zeros(width, dtype=np.int64)
    start = 0
    with FloatRowWriter(entry.x_path, width) as writer:
        for batch in _batches(path, settings, layout, layout.used()):
            _check_field_lengths(path, settings, layout, batch, start)
            part = _convert(path, settings, layout, levels, batch, start)
            writer.write(part.x)
            if settings.missing == "mean":
                present = ~np.isnan(part.x)
                sums += np.where(present, part.x, 0.0).sum(axis=0, dtype=np.float64)
                counts += present.sum(axis=0)
            targets.append(part.target)
            kept_rows.append((start, len(part.x), part.kept))
            start += batch.num_rows
        if start == 0:
            raise TableError(f"{path} has a header but no data rows")
        if writer.rows == 0:
            raise TableError(f'{path}: every row has a missing value ("missing": "drop")')
        filled = 0
        if settings.missing == "mean":
            means = _checked_means(sums, counts, path, layout, levels)
            filled = writer.fill_nan(means)
        target = _target_values(
            path, settings, layout, pa.chunked_array(targets, pa.string()), kept_rows
        )
    table = _table(layout, levels, None, target, start - writer.rows, filled, streamed=True)
    table.x = entry.save(writer.rows, width, target, _meta(table))
    return table


def _only(layout: _Layout, i: int) -> _Layout:
    return _Layout(layout.names, layout.header_line, layout.target, [], [i], [i])


def _batches(path: Path, settings: CsvSettings, layout: _Layout, columns: list[int]):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read, parse, convert = _options(path, settings, layout, columns)
    try:
        reader = pacsv.open_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            yield batch
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        _arrow_failed(path, settings, layout, exc)


def _check_field_lengths(path: Path, settings, layout: _Layout, table, first_row: int = 0):
    """Text cells longer than CSV_FIELD_KB (pyarrow has no such bound) are refused by line."""
    import pyarrow.compute as pc

    limit = CSV_FIELD_KB.value() * 1024
    for i in (*layout.categorical, layout.target):
        longest = pc.max(pc.binary_length(table.column(f"c{i}"))).as_py()
        if longest is not None and longest > limit:
            _diagnose(path, settings, layout, None, f"a field of {longest:,} bytes")


def _means(x: np.ndarray, path: Path, layout: _Layout, levels) -> np.ndarray:
    present = ~np.isnan(x)
    sums = np.where(present, x, 0.0).sum(axis=0, dtype=np.float64)
    return _checked_means(sums, present.sum(axis=0), path, layout, levels)


def _checked_means(sums, counts, path: Path, layout: _Layout, levels) -> np.ndarray:
    if np.any(counts == 0):
        names = _feature_names(layout, levels)
        name = names[int(np.argmax(counts == 0))].split("=")[0]
        raise TableError(
            f"{path}, column {name!r}: every value is missing; there is no mean to fill with "
            '(leave the column out of "features")'
        )
    return (sums / counts).astype(np.float32)


def _settings_key(settings: CsvSettings) -> str:
    return repr(
        (
            "table-1",
            settings.delimiter,
            settings.target,
            settings.features,
            settings.categorical,
            settings.missing,
            settings.regression,
            CSV_LINE_KB.value(),
            CSV_FIELD_KB.value(),
        )
    )


def _feature_names(layout: _Layout, levels: dict[int, list[str]]) -> list[str]:
    names: list[str] = []
    for i in layout.features:
        if i in levels:
            names.extend(f"{layout.names[i]}={level}" for level in levels[i])
        else:
            names.append(layout.names[i])
    return names


def _table(layout, levels, x, target, dropped, filled, streamed) -> Table:
    names, onehot = [], []
    for i in layout.features:
        if i in levels:
            for level in levels[i]:
                onehot.append(len(names))
                names.append(f"{layout.names[i]}={level}")
        else:
            names.append(layout.names[i])
    return Table(x, target, layout.names[layout.target], names, onehot, dropped, filled, streamed)


def _meta(table: Table) -> dict[str, Any]:
    return {
        "target_name": table.target_name,
        "feature_names": table.feature_names,
        "onehot_columns": table.onehot_columns,
        "dropped": table.dropped,
        "filled": table.filled,
    }


# --------------------------------------------------------------------------- targets


def _target_values(path: Path, settings: CsvSettings, layout: _Layout, strings, kept_rows):
    """Numbers when the column is numbers, text (classes) when it is text. A column of
    numbers with a few odd cells (1 in 20 or fewer, at most 5) names the first one:
    it is almost surely a typo, not a class."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(strings)
    try:  # the common case, all numbers: one cast in C++
        numbers = pc.cast(strings, pa.float64()).to_numpy(zero_copy_only=False)
        if np.all(np.isfinite(numbers)) and np.all(np.abs(numbers) <= FLOAT32_MAX):
            return numbers
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    looks = np.asarray(
        pc.match_substring_regex(strings, _NUMBER).to_numpy(zero_copy_only=False), dtype=bool
    )
    numbers = np.full(n, np.nan)
    if looks.any():
        numbers[looks] = pc.cast(pc.filter(strings, pa.array(looks)), pa.float64()).to_numpy(
            zero_copy_only=False
        )
    odd = ~looks | ~np.isfinite(numbers) | (np.abs(numbers) > FLOAT32_MAX)
    if not odd.any():
        return numbers
    count = int(odd.sum())
    if count < n and (settings.regression or count <= min(5, n // 20)):
        row = _row_of(int(np.argmax(odd)), kept_rows)
        line, cells = _locate(path, settings.delimiter, layout, row)
        raise TableError(
            f"{path} line {line}, column {layout.names[layout.target]!r}: "
            f"{cells[layout.target].strip()!r} is not a finite number (the rest of the "
            "column is numbers)"
        )
    return np.asarray(strings.to_numpy(zero_copy_only=False), dtype=str)


def _row_of(position: int, kept_rows: list[tuple[int, int, np.ndarray | None]]) -> int:
    """The data row (0-based, in the file) of the ``position``-th row kept."""
    for start, count, kept in kept_rows:
        if position < count:
            return start + (position if kept is None else int(kept[position]))
        position -= count
    raise IndexError(position)  # pragma: no cover


# --------------------------------------------------------------------------- exact errors


def _diagnose(
    path: Path,
    settings: CsvSettings,
    layout: _Layout,
    row: int | None,
    said: str | None = None,
) -> None:
    """Re-read the file with :mod:`csv` and raise the first problem, named by line and
    column. ``row`` is the data row where a problem was seen (the scan stops there);
    ``said`` is what pyarrow said, for the rare file the scan finds nothing wrong in."""
    for number, (line, cells) in enumerate(_rows(path, settings.delimiter, layout)):
        for i in layout.used():
            _check_cell(path, settings, layout, line, i, cells[i])
        if row is not None and number >= row:
            break
    if said is None:
        said = "a value pyarrow could not read"
    raise TableError(f"{path} is not a CSV file LayerLab can read ({said.splitlines()[0][:300]})")


def _check_cell(path: Path, settings: CsvSettings, layout: _Layout, line: int, i: int, raw: str):
    cell = raw.strip()
    name = layout.names[i]
    if cell.lower() in MISSING_TOKENS:
        if settings.missing == "error":
            shown = f"{cell!r}" if cell else "empty cell"
            raise TableError(
                f"{path} line {line}, column {name!r}: missing value ({shown})",
                DROP_MISSING,
            )
        return
    if i not in layout.numeric:
        return
    try:
        value = float(cell)
    except ValueError:
        raise TableError(
            f"{path} line {line}, column {name!r}: {cell!r} is not a "
            'number; list the column under "categorical" to one-hot '
            "encode it",
            DataFix(f"One-hot encode {name!r}", {"categorical": [*settings.categorical, name]}),
        ) from None
    if not np.isfinite(value) or abs(value) > FLOAT32_MAX:
        raise TableError(
            f"{path} line {line}, column {name!r}: {cell!r} is not a "
            "finite number (within float32's range, about 3.4e38)"
        )


def _locate(path: Path, delimiter: str, layout: _Layout, row: int) -> tuple[int, list[str]]:
    """The line number and cells of data row ``row`` (0-based)."""
    for line, cells in itertools.islice(_rows(path, delimiter, layout), row, None):
        return line, cells
    return layout.header_line + row + 1, [""] * len(layout.names)  # pragma: no cover


def _rows(path: Path, delimiter: str, layout: _Layout) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each data row, as pyarrow counts them (empty lines
    skipped); ragged rows, long lines and fields, binary or non-UTF-8 text refused."""
    csv.field_size_limit(CSV_FIELD_KB.value() * 1024)
    with open_regular(path) as f:
        reader = csv.reader(_lines(path, f), delimiter=delimiter)
        try:
            for cells in reader:
                if reader.line_num <= layout.header_line or not cells:
                    continue
                if len(cells) != len(layout.names):
                    raise TableError(
                        f"{path} line {reader.line_num}: {len(cells)} values but the "
                        f"header (line {layout.header_line}) has {len(layout.names)} columns"
                    )
                yield reader.line_num, cells
        except csv.Error as exc:
            raise _csv_error(path, reader.line_num, exc) from None


def _csv_error(path: Path, line: int, exc: csv.Error) -> TableError:
    if "field limit" in str(exc):
        return TableError(
            f"{path} line {line}: a field is longer than "
            f"{CSV_FIELD_KB.value():,} KB, the limit for one field "
            f"(set {CSV_FIELD_KB.env} to raise it)"
        )
    return TableError(f"{path} line {line}: not valid CSV ({exc})")


def _lines(path: Path, f: BinaryIO) -> Iterator[str]:
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
            raise TableError(
                f"{path} line {number}: the line is longer than {CSV_LINE_KB.value():,} KB, "
                f"the limit for one line (set {CSV_LINE_KB.env} to raise it)"
            )
        if offset < 4096 and b"\0" in raw:
            raise TableError(f"{path} is not a CSV file (it holds binary data)")
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise TableError(
                f"{path} is not a CSV file (not UTF-8 text at byte {offset + exc.start})"
            ) from None
        offset += len(raw)
        if offset > max_total:  # it grew while being read
            check_mb(CSV_MB, offset, f"{path}: the file")
        if "\r" in text.rstrip("\r\n"):  # old Mac line ends: split as text mode would
            yield from io.StringIO(text, newline="")
        else:
            yield text
