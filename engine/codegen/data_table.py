"""CSV files and ``.npy`` pairs in a generated script, read as :mod:`engine.data.table`
and :mod:`engine.data.arrays` read them.

The script reads the CSV file with ``pyarrow.csv`` too (every cell as text, trimmed,
then numbers converted column by column in C++), with the same missing-value
tokens and the same ``missing`` setting (``error``, ``drop``, ``mean``), and loads
``.npy`` files memory-mapped. It reads the whole CSV file into memory: a script is
for reading and adapting, and a file beyond LayerLab's memory budget is better
converted once to ``.npy`` (``numpy.save``) and read with ``read_npy``.

:func:`csv_code` and :func:`npy_code` add the reader to a :class:`ScriptPart` and return
the line of ``load_data()`` that calls it; :mod:`engine.codegen.data` adds
``encode_targets`` (which both readers call).
"""

from __future__ import annotations

from typing import Any

from engine.codegen.text import ScriptPart, call_code, literal
from engine.data.sources import DataError, get_str, get_str_list, get_task
from engine.data.table import MISSING_POLICIES, MISSING_TOKENS

READ_CSV = f'''
MISSING = {repr(MISSING_TOKENS)}  # cells that mean "no value" (compared trimmed, lower-cased)


def read_csv(path, target=None, features=None, categorical=(), delimiter=None, task=None,
             missing="error"):
    """Inputs and targets of a CSV file with a header row, read with pyarrow.

    Categorical feature columns become one 0/1 column per value (returned in
    onehot so standardisation leaves them alone). A missing value is refused
    (missing="error"), leaves its row out ("drop"), or takes its column's mean ("mean").
    """
    if delimiter is None:  # the most frequent on the first non-blank line
        with open(path, encoding="utf-8-sig") as f:
            delimiter = max(",;\\t|", key=next((ln for ln in f if ln.strip()), "").count)
    table = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(default_column_type=pa.string()),
    )
    header = [name.strip("\\ufeff ").strip() for name in table.column_names]
    cells = {{name: pc.utf8_trim_whitespace(table.column(i)) for i, name in enumerate(header)}}
    target = header[-1] if target is None else target
    features = [c for c in header if c != target] if features is None else list(features)
    gone = {{
        name: pc.is_in(pc.utf8_lower(cells[name]), value_set=pa.array(MISSING))
        .to_numpy(zero_copy_only=False)
        for name in features + [target]
    }}
    any_gone = np.logical_or.reduce([gone[name] for name in gone])
    if missing == "error" and any_gone.any():
        raise ValueError(f"{{path}}: data row {{int(np.argmax(any_gone)) + 1}} has a missing value")
    if missing == "mean" and gone[target].any():
        raise ValueError(f"{{path}}: a target is missing; \\"mean\\" fills features only")
    keep = ~any_gone if missing == "drop" else np.ones(len(any_gone), dtype=bool)
    columns, onehot = [], []
    for name in features:
        if name in categorical:
            text = cells[name].to_numpy(zero_copy_only=False).astype(str)
            for level in sorted(set(text[~gone[name]])):
                column = (text == level).astype(np.float64)
                column[gone[name]] = np.nan
                onehot.append(len(columns))
                columns.append(column)
        else:
            nothing = pa.scalar(None, pa.string())
            numbers = pc.if_else(pa.array(gone[name]), nothing, cells[name])
            columns.append(pc.cast(numbers, pa.float64()).to_numpy(zero_copy_only=False))
    x = np.stack(columns, axis=1).astype(np.float32)[keep]
    if missing == "mean":
        x = np.where(np.isnan(x), np.nanmean(x, axis=0, dtype=np.float64), x).astype(np.float32)
    text = cells[target].to_numpy(zero_copy_only=False).astype(str)[keep]
    try:
        values = text.astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError
    except ValueError:
        values = text
    y, classification = encode_targets(values, task)
    return x, y, classification, onehot
'''

READ_NPY = '''
def read_npy(x_path, y_path, task=None):
    """Inputs from one .npy file (memory-mapped: read as batches need it), targets
    from another (one-hot targets -> indices)."""
    x = np.load(x_path, mmap_mode="r", allow_pickle=False)
    y = np.load(y_path, allow_pickle=False)
    if x.ndim < 2:
        x = x.reshape(-1, 1)
    if (y.ndim == 2 and y.shape[1] > 1 and task != "regression"
            and np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)):
        y = y.argmax(axis=1)
    y, classification = encode_targets(y, task)
    return (x if x.dtype == np.float32 else x.astype(np.float32)), y, classification
'''

CSV_IMPORTS = {
    "import pyarrow as pa",
    "import pyarrow.compute as pc",
    "import pyarrow.csv as pacsv",
}


def csv_code(section: dict[str, Any], path: str, part: ScriptPart) -> str:
    """The ``load_data()`` line that reads a ``csv`` section (``path`` is its source code);
    adds ``read_csv`` and its imports to ``part``.

    Raises:
        DataError: A bad key (the message names it).
    """
    args = [path]
    for key in ("target", "features", "categorical", "delimiter"):
        if section.get(key) is not None:
            value = section[key]
            if key in ("features", "categorical"):
                value = get_str_list(section, key)
            elif not isinstance(value, str):
                raise DataError(f'data section: "{key}" must be a text; got {value!r}')
            args.append(f"{key}={literal(value)}")
    if get_task(section):
        args.append(f"task={literal(get_task(section))}")
    missing = get_str(section, "missing", "error", MISSING_POLICIES)
    if missing != "error":
        args.append(f"missing={literal(missing)}")
    part.imports |= CSV_IMPORTS
    part.functions.append(READ_CSV)
    return call_code("x, y, classification, onehot = read_csv", args, "    ")


def is_npy_pair(section: dict[str, Any]) -> bool:
    """Whether an ``npz`` section names a ``.npy`` file of inputs and one of targets."""
    path, y = section.get("path"), section.get("y")
    return (
        isinstance(path, str)
        and path.lower().endswith(".npy")
        and isinstance(y, str)
        and y.endswith(".npy")
    )


def npy_code(section: dict[str, Any], path: str, part: ScriptPart) -> str:
    """The ``load_data()`` line that reads a ``.npy`` pair (see :func:`is_npy_pair`);
    the targets file is found beside the inputs file. Adds ``read_npy`` to ``part``."""
    args = [path, f"({path}).parent / {literal(get_str(section, 'y', None))}"]
    if get_task(section):
        args.append(f"task={literal(get_task(section))}")
    part.functions.append(READ_NPY)
    return call_code("x, y, classification = read_npy", args, "    ")
