"""Image folders: LayerLab's streamed training against plain Keras, on a generated folder.

Generates a folder of ``--images`` images (default 20,000; half PNG, half JPEG, 128x128
RGB, 10 classes, smooth random pictures), then, per repeat (paired, order alternated):

- ``layerlab``: ``layerlab train project.json --epochs 1`` (a tiny CNN; the default
  settings, ``"cache": "none"``, validation split 0.2), in a fresh process;
- ``plain``: ``keras.utils.image_dataset_from_directory`` (``subset="both"``, the same
  split fraction, seed and batch size) scaled to [0, 1] + ``model.fit`` for 1 epoch with
  the same model, in a fresh process;

each timed end to end (process start to exit: TensorFlow's import counts for both)
with its peak RSS (``ru_maxrss`` of the process and its children: LayerLab's CLI trains
in a child process). Then, with no model, the input pipeline alone: images per second
over one pass of the training split after its first batch (LayerLab's
``Dataset.batches`` against ``image_dataset_from_directory``), and the time to index
the folder and summarise it (the data panel's summary).

Prints one JSON object: medians of the paired ratios (``wall_ratio``, ``rss_ratio``,
``pipeline_ratio`` = LayerLab images/s over plain) and every value::

    .venv/bin/python bench/data_pipeline.py [--images 20000] [--repeats 3] [--keep DIR]

``--big`` checks issue 13's other claim instead: a folder whose decoded size is larger
than the machine's memory trains one epoch with peak RSS under 3 GB. It generates
``--images`` (default 30,000) JPEG images at 224x224 under /tmp (about 1 GB on disk,
18 GB as float32), trains 1 epoch of a tiny CNN with ``layerlab train`` (default
settings: ``"cache": "auto"`` streams a set this size), prints wall time and peak RSS
as JSON, and deletes the folder (unless ``--keep``)::

    .venv/bin/python bench/data_pipeline.py --big [--images 30000]

The CSV part of issue 13 is ``bench/data_pipeline_csv.py``.
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
SIDE = 128
CLASSES = 10
BATCH = 32
TARGETS = {"wall_ratio": 1.1, "rss_ratio": 1.25, "pipeline_ratio": 1.0}

BIG_SIDE = 224
BIG_LIMIT_MB = 3 * 1024
BIG_MODEL = [  # cheap per pixel: the claim is about memory, not the model
    ("shrink", "AveragePooling2D", {"pool_size": 4}),
    ("conv1", "Conv2D", {"filters": 8, "kernel_size": 3, "activation": "relu"}),
    ("pool", "GlobalAveragePooling2D", {}),
    ("out", "Dense", {"units": CLASSES, "activation": "softmax"}),
]

MODEL = [
    ("conv1", "Conv2D", {"filters": 16, "kernel_size": 3, "activation": "relu"}),
    ("pool1", "MaxPooling2D", {"pool_size": 2}),
    ("conv2", "Conv2D", {"filters": 32, "kernel_size": 3, "activation": "relu"}),
    ("pool2", "GlobalAveragePooling2D", {}),
    ("out", "Dense", {"units": CLASSES, "activation": "softmax"}),
]

GENERATE = """
import sys
from pathlib import Path
import numpy as np
import tensorflow as tf
root, count, side, classes = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
jpeg_only = len(sys.argv) > 5
rng = np.random.default_rng(0)
for i in range(count):
    c = i % classes
    small = rng.integers(0, 256, (8, 8, 3)).astype(np.float32)
    small[..., c % 3] = 40 + 20 * c  # a class colour
    if jpeg_only:  # many images: NumPy blocks, smoothed by JPEG itself
        k = -(-side // 8)
        big = np.kron(small, np.ones((k, k, 1)))[:side, :side].astype(np.uint8)
    else:
        big = tf.image.resize(small[None], (side, side))[0].numpy().clip(0, 255).astype(np.uint8)
    folder = root / f"class{c}"
    folder.mkdir(parents=True, exist_ok=True)
    if i % 2 or jpeg_only:
        (folder / f"{i:06d}.jpg").write_bytes(tf.io.encode_jpeg(big, quality=90).numpy())
    else:
        (folder / f"{i:06d}.png").write_bytes(tf.io.encode_png(big).numpy())
"""

PEAK = """
import resource
def peak_mb():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024
"""

LAYERLAB = (
    PEAK
    + """
import sys
from engine.cli.main import main
try:
    code = main(["train", sys.argv[1], "--epochs", "1", "--out", sys.argv[2]])
except SystemExit as exc:
    code = exc.code
assert not code, f"layerlab train exited with {code}"
print("PEAK_MB", peak_mb())
"""
)

PLAIN = (
    PEAK
    + """
import sys
import keras
import tensorflow as tf
keras.utils.set_random_seed(0)
train, val = keras.utils.image_dataset_from_directory(
    sys.argv[1], validation_split=0.2, subset="both", seed=0, image_size=(SIDE, SIDE),
    batch_size=BATCH)
scale = lambda x, y: (x / 255.0, y)
train = train.map(scale, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
val = val.map(scale, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
model = keras.Sequential([keras.Input((SIDE, SIDE, 3)),
    keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(2),
    keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
    keras.layers.Dense(CLASSES, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train, validation_data=val, epochs=1, verbose=0)
print("PEAK_MB", peak_mb())
""".replace("SIDE", str(SIDE))
    .replace("BATCH", str(BATCH))
    .replace("CLASSES", str(CLASSES))
)

PIPELINE_LAYERLAB = """
import sys, time
from engine.data.dataset import load_data
start = time.perf_counter()
data = load_data({"source": "images", "path": sys.argv[1], "validation_split": 0.2,
                  "cache": "none"}, None, (SIDE, SIDE, 3))
summary = data.summary()
index_s = time.perf_counter() - start
batches = data.batches("train", BATCH, shuffle=True).as_numpy_iterator()
next(batches)  # the pipeline's start-up (tracing) is not its throughput
start = time.perf_counter()
n = sum(len(x) for x, _ in batches)
print("RATE", n / (time.perf_counter() - start), "INDEX_S", index_s)
""".replace("SIDE", str(SIDE)).replace("BATCH", str(BATCH))

PIPELINE_PLAIN = """
import sys, time
import keras
train = keras.utils.image_dataset_from_directory(
    sys.argv[1], validation_split=0.2, subset="training", seed=0, image_size=(SIDE, SIDE),
    batch_size=BATCH, verbose=False)
batches = train.map(lambda x, y: (x / 255.0, y)).prefetch(-1).as_numpy_iterator()
next(batches)
start = time.perf_counter()
n = sum(len(x) for x, _ in batches)
print("RATE", n / (time.perf_counter() - start))
""".replace("SIDE", str(SIDE)).replace("BATCH", str(BATCH))


def project(folder: Path, side: int = SIDE, model: list | None = None) -> dict:
    nodes = [{"id": "x", "type": "Input", "params": {"shape": [side, side, 3]}}]
    nodes += [{"id": i, "type": t, "params": p} for i, t, p in (model or MODEL)]
    ids = [n["id"] for n in nodes]
    return {
        "format": "layerlab",
        "version": 1,
        "name": "bench images",
        "graph": {
            "nodes": nodes,
            "edges": [{"source": a, "target": b, "port": 0} for a, b in zip(ids, ids[1:])],
        },
        "data": {
            "source": "images",
            "path": str(folder),
            "validation_split": 0.2,
            "seed": 0,
            "cache": "none",
        },
        "training": {
            "optimizer": "Adam",
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "batch_size": BATCH,
            "epochs": 1,
            "seed": 0,
        },
    }


def run(code: str, *args: str) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT
    )
    wall = time.perf_counter() - start
    if out.returncode:
        raise SystemExit(f"benchmark step failed:\n{out.stderr[-3000:]}")
    return wall, out.stdout


def value(text: str, key: str) -> float:
    return float(text.split(key)[1].split()[0])


def big(count: int, keep: str | None) -> None:
    """Issue 13's claim: more decoded pixels than memory, one epoch under 3 GB of RSS."""
    import shutil

    work = Path(keep or tempfile.mkdtemp(prefix="layerlab-bench-big-", dir="/tmp"))
    folder = work / "images"
    try:
        start = time.perf_counter()
        if not folder.is_dir():
            run(GENERATE, str(folder), str(count), str(BIG_SIDE), str(CLASSES), "jpeg")
        made_s = time.perf_counter() - start
        disk = sum(f.stat().st_size for f in folder.rglob("*.jpg"))
        data = project(folder, BIG_SIDE, BIG_MODEL)["data"]
        data.pop("cache")  # the default ("auto"): streams a set beyond its 512 MB cache
        project_file = work / "project.json"
        project_file.write_text(
            json.dumps({**project(folder, BIG_SIDE, BIG_MODEL), "data": data}), encoding="utf-8"
        )
        wall, out = run(LAYERLAB, str(project_file), str(work / "run"))
        peak = value(out, "PEAK_MB")
        result = {
            "images": count,
            "side": BIG_SIDE,
            "disk_mb": round(disk / 2**20),
            "decoded_float32_gb": round(count * BIG_SIDE * BIG_SIDE * 3 * 4 / 2**30, 1),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "generate_s": round(made_s, 1),
            "train_wall_s": round(wall, 1),
            "peak_rss_mb": round(peak),
            "target_peak_mb": BIG_LIMIT_MB,
            "met": peak < BIG_LIMIT_MB,
        }
        print(json.dumps(result))
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", help="generate the folder here (and reuse it)")
    parser.add_argument("--big", action="store_true", help="30,000 images at 224x224: peak RSS")
    args = parser.parse_args()
    if args.big:
        big(args.images or 30_000, args.keep)
        return
    args.images = args.images or 20_000
    work = Path(args.keep or tempfile.mkdtemp(prefix="layerlab-bench-images-"))
    folder = work / "images"
    if not folder.is_dir():
        run(GENERATE, str(folder), str(args.images), str(SIDE), str(CLASSES))
    project_file = work / "project.json"
    project_file.write_text(json.dumps(project(folder)), encoding="utf-8")
    pairs = []
    for r in range(args.repeats):
        order = ("layerlab", "plain") if r % 2 == 0 else ("plain", "layerlab")
        got = {}
        for who in order:
            if who == "layerlab":
                out_dir = work / f"run-{os.getpid()}-{r}"
                wall, out = run(LAYERLAB, str(project_file), str(out_dir))
            else:
                wall, out = run(PLAIN, str(folder))
            got[who] = {"wall_s": round(wall, 2), "peak_mb": round(value(out, "PEAK_MB"))}
        if r % 2 == 0:  # the pipelines alone, in the same alternating order
            _, ours = run(PIPELINE_LAYERLAB, str(folder))
            _, plain = run(PIPELINE_PLAIN, str(folder))
        else:
            _, plain = run(PIPELINE_PLAIN, str(folder))
            _, ours = run(PIPELINE_LAYERLAB, str(folder))
        got["layerlab"]["images_per_s"] = round(value(ours, "RATE"))
        got["layerlab"]["index_s"] = round(value(ours, "INDEX_S"), 3)
        got["plain"]["images_per_s"] = round(value(plain, "RATE"))
        pairs.append(got)
        print(json.dumps({"repeat": r, **got}), file=sys.stderr)

    def ratio(key: str) -> float:
        return round(statistics.median(p["layerlab"][key] / p["plain"][key] for p in pairs), 3)

    result = {
        "images": args.images,
        "side": SIDE,
        "repeats": args.repeats,
        "wall_ratio": ratio("wall_s"),
        "rss_ratio": ratio("peak_mb"),
        "pipeline_ratio": ratio("images_per_s"),
        "index_s": statistics.median(p["layerlab"]["index_s"] for p in pairs),
        "targets": TARGETS,
        "runs": pairs,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
