"""A big CSV file: LayerLab against pandas (pyarrow engine) and numpy.loadtxt + fit.

Generates a CSV of ``--rows`` rows (default 1,000,000) x ``--cols`` numeric features
(default 20) and a 3-class label that depends on them, then, in fresh processes:

1. **time to the first batch**: LayerLab (``load_data`` on a ``csv`` section, then the
   first batch of ``make_tf_dataset``) against ``pandas.read_csv(engine="pyarrow")`` and
   ``to_numpy`` + the first slice; TensorFlow, pyarrow and pandas are imported before
   the clock starts on both sides (``Dataset.batches`` when the Dataset streams, else
   ``make_tf_dataset``). ``load_csv_s`` is LayerLab's CSV read alone;
2. **one epoch**: ``layerlab train PROJECT --epochs 1`` (an MLP: 64 ReLU units, softmax
   output; batch 128) against a script that reads the file with ``numpy.loadtxt``,
   splits 80/20, standardises and fits the same model for one epoch. Wall time of the
   whole process and its peak RSS (``wait4``: the process or its largest child).

Runs are paired (LayerLab and plain in alternating order) and repeated; prints one
JSON object with the medians and ratios (LayerLab / plain) and every value::

    .venv/bin/python bench/data_pipeline_csv.py [--rows 1000000] [--cols 20] [--repeats 3]

The issue's targets: first batch <= 1.5x pandas, epoch wall <= 1.1x, peak RSS <= 1.25x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 128
TARGETS = {"first_batch_ratio": 1.5, "epoch_wall_ratio": 1.1, "epoch_rss_ratio": 1.25}


def make_csv(path: Path, rows: int, cols: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(0)
    step = 200_000
    weights = rng.normal(size=cols)
    with pacsv.CSVWriter(
        str(path),
        pa.schema([*(pa.field(f"f{i}", pa.float64()) for i in range(cols)), ("label", pa.int64())]),
    ) as writer:
        for start in range(0, rows, step):
            x = rng.normal(size=(min(step, rows - start), cols)).round(4)
            score = x @ weights
            label = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
            columns = [pa.array(x[:, i]) for i in range(cols)] + [pa.array(label)]
            writer.write_table(pa.table(columns, names=[*(f"f{i}" for i in range(cols)), "label"]))


def project(csv: Path, cols: int) -> dict:
    nodes = [
        ("x", "Input", {"shape": [cols]}),
        ("h", "Dense", {"units": 64, "activation": "relu"}),
        ("out", "Dense", {"units": 3, "activation": "softmax"}),
    ]
    return {
        "format": "layerlab",
        "version": 1,
        "name": "csv bench",
        "graph": {
            "nodes": [
                {"id": i, "type": t, "params": p, "position": [0, 80 * k]}
                for k, (i, t, p) in enumerate(nodes)
            ],
            "edges": [
                {"source": a[0], "target": b[0], "port": 0} for a, b in zip(nodes, nodes[1:])
            ],
        },
        "data": {"source": "csv", "path": str(csv), "validation_split": 0.2},
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": 0.001},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "batch_size": BATCH,
            "epochs": 1,
            "seed": 0,
            "tensorboard": False,
        },
    }


FIRST_LAYERLAB = """
import sys, time
import tensorflow, pyarrow.csv, pyarrow.compute
from pathlib import Path
from engine.data.dataset import load_data, make_tf_dataset
from engine.data.sources import load_csv
section = {"source": "csv", "path": sys.argv[1], "validation_split": 0.2}
t0 = time.perf_counter()
data = load_data(section)
if hasattr(data, "batches"):  # the streaming Dataset: batches gathered by index
    ds = data.batches("train", BATCH, shuffle=True)
else:
    ds = make_tf_dataset(data.x_train, data.y_train, BATCH, shuffle=True)
next(iter(ds))
first = time.perf_counter() - t0
t0 = time.perf_counter()
load_csv(Path(sys.argv[1]), section)
print(first, time.perf_counter() - t0)
""".replace("BATCH", str(BATCH))

FIRST_PANDAS = """
import sys, time
import numpy as np, pandas as pd, pyarrow.csv
t0 = time.perf_counter()
frame = pd.read_csv(sys.argv[1], engine="pyarrow")
x = frame.iloc[:, :-1].to_numpy(np.float32)
y = frame.iloc[:, -1].to_numpy()
batch = x[:BATCH], y[:BATCH]
print(time.perf_counter() - t0)
""".replace("BATCH", str(BATCH))

EPOCH_PLAIN = """
import sys
import numpy as np, keras
table = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, dtype=np.float32)
x, y = table[:, :-1], table[:, -1].astype(np.int64)
order = np.random.default_rng(0).permutation(len(x))
n_val = round(len(x) * 0.2)
val, train = order[:n_val], order[n_val:]
mean, std = x[train].mean(axis=0), x[train].std(axis=0)
x = (x - mean) / std
keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input((x.shape[1],)),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(3, activation="softmax"),
])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x[train], y[train], batch_size=BATCH, epochs=1, validation_data=(x[val], y[val]),
          verbose=0)
""".replace("BATCH", str(BATCH))


def fresh_rss_run(args: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one process, run from a helper process
    so that its RUSAGE_CHILDREN holds this run (and the run's own children) only."""
    code = (
        "import json, sys, resource, subprocess, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "wall = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "sys.stderr.write(p.stderr.decode()[-2000:])\n"
        "print(json.dumps([wall, rss, p.returncode, p.stdout.decode()]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
    )
    wall, rss, code_, out = json.loads(done.stdout.strip().splitlines()[-1])
    if code_ != 0:
        raise SystemExit(f"{args[:3]} failed:\n{done.stderr[-2000:]}")
    return wall, rss, out


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-epoch", action="store_true", help="time to first batch only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="layerlab-csv-bench-") as tmp:
        folder = Path(tmp)
        csv = folder / "big.csv"
        t0 = time.perf_counter()
        make_csv(csv, args.rows, args.cols)
        made_s = time.perf_counter() - t0
        (folder / "project.json").write_text(json.dumps(project(csv, args.cols)))
        (folder / "first_layerlab.py").write_text(FIRST_LAYERLAB)
        (folder / "first_pandas.py").write_text(FIRST_PANDAS)
        (folder / "epoch_plain.py").write_text(EPOCH_PLAIN)
        env = {"LAYERLAB_CACHE_DIR": str(folder / "cache")}
        runs = []
        for repeat in range(args.repeats):
            row: dict = {}
            order = ("layerlab", "plain") if repeat % 2 == 0 else ("plain", "layerlab")
            for side in order:
                if side == "layerlab":
                    script = [sys.executable, str(folder / "first_layerlab.py"), str(csv)]
                    _, _, out = fresh_rss_run(script, env)
                    row["layerlab_first_batch_s"], row["layerlab_load_csv_s"] = map(
                        float, out.split()
                    )
                else:
                    script = [sys.executable, str(folder / "first_pandas.py"), str(csv)]
                    _, _, out = fresh_rss_run(script, env)
                    row["pandas_first_batch_s"] = float(out.split()[0])
            if not args.skip_epoch:
                for side in order:
                    if side == "layerlab":
                        out_dir = folder / f"run{repeat}"
                        cmd = [sys.executable, "-m", "engine.cli", "train"]
                        cmd += [
                            str(folder / "project.json"),
                            "--epochs",
                            "1",
                            "--out",
                            str(out_dir),
                        ]
                        wall, rss, _ = fresh_rss_run(cmd, env)
                        row["layerlab_epoch_wall_s"], row["layerlab_epoch_rss_mb"] = wall, rss
                    else:
                        script = [sys.executable, str(folder / "epoch_plain.py"), str(csv)]
                        wall, rss, _ = fresh_rss_run(script, env)
                        row["plain_epoch_wall_s"], row["plain_epoch_rss_mb"] = wall, rss
            runs.append({k: round(v, 3) for k, v in row.items()})
            print(json.dumps(runs[-1]), file=sys.stderr)
        keys = sorted(runs[0])
        medians = {k: median([r[k] for r in runs]) for k in keys}
        ratios = {
            "first_batch_ratio": median(
                [r["layerlab_first_batch_s"] / r["pandas_first_batch_s"] for r in runs]
            ),
            "load_csv_ratio": median(
                [r["layerlab_load_csv_s"] / r["pandas_first_batch_s"] for r in runs]
            ),
        }
        if not args.skip_epoch:
            ratios["epoch_wall_ratio"] = median(
                [r["layerlab_epoch_wall_s"] / r["plain_epoch_wall_s"] for r in runs]
            )
            ratios["epoch_rss_ratio"] = median(
                [r["layerlab_epoch_rss_mb"] / r["plain_epoch_rss_mb"] for r in runs]
            )
        print(
            json.dumps(
                {
                    "rows": args.rows,
                    "cols": args.cols,
                    "csv_mb": round(csv.stat().st_size / 1e6, 1),
                    "generated_s": round(made_s, 2),
                    "repeats": args.repeats,
                    "cpu_count": os.cpu_count(),
                    "medians": medians,
                    "ratios": ratios,
                    "targets": TARGETS,
                    "runs": runs,
                }
            )
        )


if __name__ == "__main__":
    main()
