"""CSV files read with pyarrow: missing values, streaming beyond the memory budget to a
memory-mapped cache, categorical columns, and errors that name file, line and column."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.data.dataset import load_data
from engine.data.sources import DataError, load_csv

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("LAYERLAB_CACHE_DIR", str(folder))
    return folder


GAPS = """\
a,b,color,y
1,10,red,0
2,,blue,1
3,30,NA,0
,40,red,1
5,50,blue,
6,60,red,1
"""


# --------------------------------------------------------------------------- missing values


def test_missing_values_are_refused_by_default_with_line_and_column(tmp_path):
    path = write(tmp_path / "gaps.csv", GAPS)
    with pytest.raises(DataError, match=r"gaps\.csv line 3, column 'b': missing value \(empty"):
        load_csv(path, {"categorical": ["color"]})
    with pytest.raises(DataError, match=r"gaps\.csv line 3, column 'b'"):
        load_csv(path, {"categorical": ["color"], "missing": "error"})


def test_missing_drop_leaves_out_the_rows_with_a_gap(tmp_path):
    path = write(tmp_path / "gaps.csv", GAPS)
    raw = load_csv(path, {"categorical": ["color"], "missing": "drop"})
    np.testing.assert_array_equal(raw.x, [[1, 10, 0, 1], [6, 60, 0, 1]])
    assert raw.y.tolist() == [0, 1] and raw.class_names == ["0", "1"]
    assert "4 rows with missing values dropped" in raw.description


def test_missing_mean_fills_features_with_the_column_mean(tmp_path):
    text = GAPS.replace("5,50,blue,\n", "5,50,blue,0\n")  # no target missing
    path = write(tmp_path / "gaps.csv", text)
    raw = load_csv(path, {"categorical": ["color"], "missing": "mean"})
    assert raw.feature_names == ["a", "b", "color=blue", "color=red"]
    np.testing.assert_allclose(raw.x[3, 0], np.mean([1, 2, 3, 5, 6]))  # a, line 5
    np.testing.assert_allclose(raw.x[1, 1], np.mean([10, 30, 40, 50, 60]))  # b, line 3
    np.testing.assert_allclose(raw.x[2, 2:], [2 / 5, 3 / 5])  # color: the levels' shares
    assert not np.isnan(raw.x).any()
    assert "3 missing values filled with the column mean" not in raw.description
    assert "missing values filled with the column mean" in raw.description


def test_missing_mean_refuses_a_missing_target_and_says_to_drop(tmp_path):
    path = write(tmp_path / "gaps.csv", GAPS)
    with pytest.raises(DataError, match=r"gaps\.csv line 6, column 'y': missing target.*drop"):
        load_csv(path, {"categorical": ["color"], "missing": "mean"})


def test_a_refused_file_says_which_change_of_the_section_loads_it(tmp_path):
    path = write(tmp_path / "gaps.csv", GAPS)
    section: dict = {}
    fixes = []
    for _ in range(3):
        try:
            raw = load_csv(path, section)
            break
        except DataError as exc:
            assert exc.fix is not None, exc
            fixes.append(exc.fix.text)
            section = {**section, **exc.fix.changes}
    assert fixes == ["One-hot encode 'color'", "Drop the rows with missing values"]
    assert section == {"categorical": ["color"], "missing": "drop"}
    assert raw.feature_names == ["a", "b", "color=blue", "color=red"] and len(raw.y) == 2
    # a missing target under "mean": dropping is the fix; a wrong row length has none
    with pytest.raises(DataError) as err:
        load_csv(path, {"categorical": ["color"], "missing": "mean"})
    assert err.value.fix.changes == {"missing": "drop"}
    with pytest.raises(DataError) as err:
        load_csv(write(tmp_path / "short.csv", "a,b,y\n1,2,0\n3,4\n"), {})
    assert err.value.fix is None


def test_missing_setting_is_checked(tmp_path):
    path = write(tmp_path / "gaps.csv", GAPS)
    with pytest.raises(DataError, match=r'"missing" must be one of error, drop, mean'):
        load_csv(path, {"missing": "zero"})


def test_drop_policy_trains_through_load_data(tmp_path):
    rows = "".join(f"{i},{'' if i % 7 == 0 else i * 2},{i % 2}\n" for i in range(40))
    path = write(tmp_path / "d.csv", "a,b,y\n" + rows)
    data = load_data({"source": "csv", "path": str(path), "missing": "drop"})
    assert len(data.x_train) + len(data.x_val) == 40 - 6


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("a,b,y\n1,2,0\n3,x,1\n5,6,1\n", ["line 3", "column 'b'", "'x' is not a number"]),
        ("a,b,y\n1,2,0\n3,4\n5,6,1\n", ["line 3", "2 values", "header (line 1) has 3 columns"]),
        ("", ["is empty"]),
        ("\n\n\n", ["is empty"]),
        ("a,,y\n1,2,0\n", ["line 1", "column 2 of the header has no name"]),
        ("a,b,y\n", ["has a header but no data rows"]),
        ("1,2,0\n3,4,1\n", ["line 1", "holds numbers (1, 2, 0), not column names"]),
        ("a,b,y\n1,inf,0\n2,3,1\n", ["line 2", "column 'b'", "'inf' is not a finite number"]),
        # a quoted cell over two lines: the line the row ends on (as Python's csv counts)
        ('a,b,y\n1,"2",0\n2,"3\n4",1\n', ["line 4", "column 'b'", "is not a number"]),
    ],
)
def test_errors_name_the_file_line_and_column(tmp_path, text, fragments):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError) as err:
        load_csv(path, {})
    message = str(err.value)
    assert "bad.csv" in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_bom_quotes_and_categorical_text_are_read(tmp_path):
    text = '\ufeffsize,"kind, long",label\n1,"a, b",x\n2, c ,y\n3,"a, b",x\n4,d,y\n'
    path = write(tmp_path / "q.csv", text)
    raw = load_csv(path, {"categorical": ["kind, long"]})
    assert raw.feature_names == ["size", "kind, long=a, b", "kind, long=c", "kind, long=d"]
    np.testing.assert_array_equal(raw.x[1], [2, 0, 1, 0])
    assert raw.class_names == ["x", "y"] and raw.y.tolist() == [0, 1, 0, 1]
    assert raw.onehot_columns == [1, 2, 3]


def test_a_categorical_column_with_too_many_levels_is_refused(tmp_path):
    rows = "".join(f"{i},id{i},{i % 2}\n" for i in range(1001))
    path = write(tmp_path / "ids.csv", "a,id,y\n" + rows)
    with pytest.raises(DataError, match=r"ids\.csv, column 'id': more than 1000 different"):
        load_csv(path, {"categorical": ["id"]})


# --------------------------------------------------------------------------- streaming


def big_csv(path: Path, rows: int = 70_000, gaps: bool = True) -> Path:
    rng = np.random.default_rng(0)
    a = rng.normal(size=rows).round(4)
    b = rng.integers(0, 100, rows)
    color = rng.choice(["red", "green", "blue"], rows)
    y = rng.choice(["cat", "dog", "eel"], rows)
    lines = ["a,b,color,y"]
    for i in range(rows):
        cell_b = "" if gaps and i % 997 == 5 else str(b[i])
        cell_c = "NA" if gaps and i % 1201 == 7 else color[i]
        lines.append(f"{a[i]},{cell_b},{cell_c},{y[i]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("missing", ["mean", "drop"])
def test_a_csv_beyond_the_memory_budget_streams_to_a_memmap_with_the_same_numbers(
    tmp_path, monkeypatch, cache_dir, missing
):
    path = big_csv(tmp_path / "big.csv")
    assert path.stat().st_size > 10**6
    section = {"categorical": ["color"], "missing": missing}
    in_memory = load_csv(path, section)
    assert not isinstance(in_memory.x, np.memmap)
    monkeypatch.setenv("LAYERLAB_DATA_MEMORY_MB", "1")  # the file is 1.2 MB
    monkeypatch.setenv("LAYERLAB_MAX_CSV_LINE_KB", "8")  # small blocks: many batches
    streamed = load_csv(path, section)
    assert isinstance(streamed.x, np.memmap) and streamed.x.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(streamed.x), in_memory.x)
    np.testing.assert_array_equal(streamed.y, in_memory.y)
    assert streamed.feature_names == in_memory.feature_names
    assert streamed.onehot_columns == in_memory.onehot_columns
    assert streamed.class_names == ["cat", "dog", "eel"]
    assert streamed.description == in_memory.description
    [cached] = (cache_dir / "tables").glob("*.f32")
    stamp = cached.stat().st_mtime_ns
    again = load_csv(path, section)  # the second run reuses the cache file
    assert cached.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(np.asarray(again.x), in_memory.x)
    path.write_text(path.read_text().replace("a,b,color,y\n", "a,b,color,y\n1,2,red,cat\n"))
    changed = load_csv(path, section)  # a changed file: a new entry, the old one removed
    assert len(changed.x) == len(in_memory.x) + 1
    assert [p.name for p in (cache_dir / "tables").glob("*.f32")] != [cached.name]
    assert len(list((cache_dir / "tables").glob("*.f32"))) == 1


def test_a_streamed_csv_names_the_line_of_an_error_deep_in_the_file(tmp_path, monkeypatch):
    path = big_csv(tmp_path / "big.csv", gaps=False)
    lines = path.read_text().splitlines()
    lines[60_000] = lines[60_000].split(",", 1)[0] + ",oops,red,cat"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("LAYERLAB_DATA_MEMORY_MB", "1")
    with pytest.raises(DataError, match=r"big\.csv line 60001, column 'b': 'oops' is not a number"):
        load_csv(path, {"categorical": ["color"]})
    lines[60_000] = lines[60_000].rsplit(",", 1)[0]  # a ragged row
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"big\.csv line 60001: 3 values but the header"):
        load_csv(path, {"categorical": ["color"]})
    assert not list((tmp_path / "cache" / "tables").glob("*.f32"))  # nothing half-written


def test_streaming_keeps_memory_to_a_few_blocks(tmp_path):
    """A 20 MB CSV of 40 columns beyond a 1 MB budget: x goes to the cache file; what
    Python and NumPy hold at the peak (the targets, one block) is a fraction of x, and
    pyarrow's own peak (its read-ahead blocks) stays a few tens of MB whatever the size."""
    rng = np.random.default_rng(1)
    rows = "".join(
        ",".join(map(str, row)) + f",{label}\n"
        for row, label in zip(rng.normal(size=(5000, 40)).round(5), rng.integers(0, 2, 5000))
    )
    path = tmp_path / "wide.csv"
    with path.open("w") as f:
        f.write(",".join(f"f{i}" for i in range(40)) + ",y\n")
        for _ in range(12):
            f.write(rows)
    write(tmp_path / "warm.csv", "a,y\n1,0\n2,1\n")
    code = (
        "import tracemalloc\n"
        "import numpy as np, pyarrow as pa\n"
        "from pathlib import Path\n"
        "from engine.data.sources import load_csv\n"
        f"load_csv(Path({str(tmp_path / 'warm.csv')!r}), {{}})\n"
        "tracemalloc.start()\n"
        f"raw = load_csv(Path({str(path)!r}), {{}})\n"
        "assert isinstance(raw.x, np.memmap), type(raw.x)\n"
        "peak = tracemalloc.get_traced_memory()[1]\n"
        "print('PEAK', peak, pa.default_memory_pool().max_memory(), raw.x.nbytes)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "LAYERLAB_DATA_MEMORY_MB": "1",
            "LAYERLAB_CACHE_DIR": str(tmp_path / "cache"),
        },
    )
    assert "PEAK" in result.stdout, result.stderr
    python_peak, arrow_peak, x_bytes = map(int, result.stdout.split("PEAK")[1].split())
    assert x_bytes == 60_000 * 40 * 4
    assert python_peak < x_bytes / 2, (python_peak, x_bytes)
    assert arrow_peak < 80 * 2**20, arrow_peak


def test_a_cache_folder_that_cannot_be_written_is_named(tmp_path, monkeypatch):
    path = big_csv(tmp_path / "big.csv", rows=70_000)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("LAYERLAB_CACHE_DIR", str(blocker))
    monkeypatch.setenv("LAYERLAB_DATA_MEMORY_MB", "1")
    with pytest.raises(
        DataError, match=r"big\.csv is larger than 1 MB .*blocker/tables, which cannot be written"
    ):
        load_csv(path, {"categorical": ["color"], "missing": "drop"})


def test_two_settings_of_one_file_keep_their_own_cache(tmp_path, monkeypatch, cache_dir):
    path = big_csv(tmp_path / "big.csv", rows=70_000)
    monkeypatch.setenv("LAYERLAB_DATA_MEMORY_MB", "1")
    drop = load_csv(path, {"categorical": ["color"], "missing": "drop"})
    mean = load_csv(path, {"categorical": ["color"], "missing": "mean"})
    assert len(list((cache_dir / "tables").glob("*.f32"))) == 2
    assert len(drop.x) < len(mean.x) == 70_000


# --------------------------------------------------------------------------- the first batch


def test_standardising_an_in_memory_split_never_copies_the_training_rows(tmp_path):
    # 200 MB of float32 rows in memory (a parsed CSV); the limit leaves room for chunks,
    # not for the 160 MB training split (nor its float64 twin) that was copied before
    code = """
import re, resource
import numpy as np
from engine.data.dataset import dataset_from_raw
from engine.data.sources import RawData
rows, cols = 50_000, 1_000
x = np.empty((rows, cols), np.float32)
for start in range(0, rows, 5_000):
    x[start:start + 5_000] = np.arange(start, start + 5_000, dtype=np.float32)[:, None]
y = (np.arange(rows) % 3).astype(np.int64)
size = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
limit = size + 120 * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
data = dataset_from_raw(RawData(x, y, "classification", ["a", "b", "c"], standardize=True),
                        0.2, 0.0, 0)
assert not data.streamed
print("MEAN", float(data.mean[0]), float(data.std[0]))
try:
    np.array(x[data.parts["train"]])
except MemoryError:
    print("COPY REFUSED")
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "COPY REFUSED" in out.stdout  # the limit really forbids a whole copy
    mean, std = (float(v) for v in out.stdout.split("MEAN")[1].split()[:2])
    assert 24_000 < mean < 26_000 and 14_000 < std < 15_000  # ~uniform over 0..50,000


def test_a_shuffled_split_serves_its_first_batch_without_filling_a_shuffle_buffer():
    import time

    from engine.data.dataset import dataset_from_raw
    from engine.data.sources import RawData

    rows = 1_000_000
    x = np.arange(rows, dtype=np.float32)[:, None]
    y = (np.arange(rows) % 2).astype(np.int64)
    data = dataset_from_raw(RawData(x, y, "classification", ["a", "b"]), 0.2, 0.0, 0)

    import tensorflow as tf

    def first_batch(stream) -> float:
        start = time.perf_counter()
        next(iter(stream))
        return time.perf_counter() - start

    first_batch(data.batches("train", 128))  # TensorFlow's start-up is not the pipeline's
    # what it was: a shuffle buffer of all 800,000 positions filled before the first batch
    # (measured beside it, so a loaded machine slows both alike)
    n = data.count("train")
    buffer = tf.data.Dataset.range(n).shuffle(n, seed=3).batch(128)
    shuffled = min(first_batch(data.batches("train", 128, shuffle=True, seed=3)) for _ in range(2))
    filled = min(first_batch(buffer) for _ in range(2))
    assert shuffled < 0.5 * filled, (shuffled, filled)  # ~0.1x here
    small = dataset_from_raw(RawData(x[:1000], y[:1000], "classification", ["a", "b"]), 0.2, 0.0, 0)
    stream = small.batches("train", 100, shuffle=True, seed=3)
    again = small.batches("train", 100, shuffle=True, seed=3)

    def epoch(s) -> list[float]:
        return np.concatenate([b[0][:, 0] for b in s.as_numpy_iterator()]).tolist()

    one, two = epoch(stream), epoch(again)
    assert one == two  # seeded: the same order from the same seed
    three = epoch(stream)
    assert sorted(three) == sorted(one) and three != one  # reshuffled each epoch
    assert one != sorted(one)  # shuffled across batches
