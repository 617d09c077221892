"""What running a training in the worker process costs, against plain ``model.fit``.

Both sides train the same model (the builder's, from one project) on the same data
with the same compile settings. Runs alternate (worker, plain, plain, worker, ...)
so machine noise hits both alike. Throughput is measured after the first epoch
(tracing excluded) as training samples per second of wall time between epoch
ends, so the worker's checkpoints, history files, TensorBoard scalars and events
count against it. Prints one JSON object:
``{"ratio": median(worker/plain), "worker_sps": [...], "plain_sps": [...], ...}``.

    .venv/bin/python bench/worker_overhead.py [--pairs 3] [--epochs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from plain_fit import plain_fit

PROJECT = {
    "format": "layerlab",
    "version": 1,
    "name": "bench digits cnn",
    "graph": {
        "nodes": [
            {"id": "image", "type": "Input", "params": {"shape": [8, 8, 1]}},
            {
                "id": "conv",
                "type": "Conv2D",
                "params": {
                    "filters": 16,
                    "kernel_size": 3,
                    "padding": "same",
                    "activation": "relu",
                },
            },
            {"id": "flat", "type": "Flatten", "params": {}},
            {"id": "hidden", "type": "Dense", "params": {"units": 64, "activation": "relu"}},
            {"id": "out", "type": "Dense", "params": {"units": 10, "activation": "softmax"}},
        ],
        "edges": [
            {"source": "image", "target": "conv"},
            {"source": "conv", "target": "flat"},
            {"source": "flat", "target": "hidden"},
            {"source": "hidden", "target": "out"},
        ],
    },
    "data": {"source": "builtin:digits", "validation_split": 0.2},
    "training": {
        "optimizer": {"type": "Adam", "learning_rate": 0.001},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "batch_size": 32,
        "epochs": 4,
        "seed": 0,
    },
}


def throughput(epoch_ends: list[float], samples: int) -> float:
    """Samples per second between the first and the last epoch end."""
    return samples * (len(epoch_ends) - 1) / (epoch_ends[-1] - epoch_ends[0])


def worker_sps(project: dict, samples: int, root: Path, i: int) -> float:
    from engine.train.worker import start_training

    run = start_training(project, root / f"worker-{i}")
    ends = []
    for event in run.events():
        if event["event"] == "epoch":
            ends.append(time.monotonic())
        elif event["event"] == "error":
            raise SystemExit(f"worker run failed: {event['message']}")
    return throughput(ends, samples)


def plain_sps(project: dict, ds, samples: int) -> float:
    import keras

    ends: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: ends.append(time.monotonic())
    )
    plain_fit(project, ds, timer)
    return throughput(ends, samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()

    from engine.data.dataset import load_data

    project = json.loads(json.dumps(PROJECT))
    project["training"]["epochs"] = args.epochs
    ds = load_data(project["data"], None, (8, 8, 1))
    samples = len(ds.x_train)
    worker, plain = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            if i % 2 == 0:
                worker.append(worker_sps(project, samples, Path(tmp), i))
                plain.append(plain_sps(project, ds, samples))
            else:
                plain.append(plain_sps(project, ds, samples))
                worker.append(worker_sps(project, samples, Path(tmp), i))
    ratios = [w / p for w, p in zip(worker, plain)]
    print(
        json.dumps(
            {
                "ratio": round(statistics.median(ratios), 3),
                "worker_sps": [round(v, 1) for v in worker],
                "plain_sps": [round(v, 1) for v in plain],
                "samples": samples,
                "epochs": args.epochs,
            }
        )
    )


if __name__ == "__main__":
    main()
