"""Overhead of a trial run through the study (``layerlab tune``) against a plain
``layerlab train`` of the same settings.

Each pair runs, in fresh processes and alternating which goes first, ``layerlab train
P --out DIR`` and ``layerlab tune P --trials N`` where the search has one choice (the
project's own learning rate), so both train the same thing N times (train: N runs one
after the other). Wall time from start to exit, and the CPU time of each command's
whole process tree (steadier than wall time on a shared machine). Prints one JSON object: the medians
and the median of the paired ratios (tune / train), wall and CPU.

    python bench/tune_overhead.py [--pairs 3] [--trials 1] [--epochs 3] [--sqlite]

The study is the default journal file (``<runs>/tune.journal``); ``--sqlite`` keeps it
in ``sqlite:///<runs>/tune.sqlite3`` instead (the default before issue 20's second
round), to measure what the storage costs.

With ``--trials`` above 1 the search starts each next trial's process while the
current one trains (a warm worker), which plain runs one after the other do not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LR = "training.optimizer.learning_rate"


def project(epochs: int) -> dict:
    return {
        "format": "layerlab",
        "version": 1,
        "name": "iris",
        "graph": {
            "nodes": [
                {"id": "input", "type": "Input", "params": {"shape": [4]}, "position": [0, 0]},
                {"id": "norm", "type": "Normalization", "params": {}, "position": [0, 60]},
                {"id": "hidden", "type": "Dense", "params": {"units": 16, "activation": "relu"},
                 "position": [0, 120]},
                {"id": "output", "type": "Dense", "params": {"units": 3, "activation": "softmax"},
                 "position": [0, 240]},
            ],
            "edges": [
                {"source": "input", "target": "norm", "port": 0},
                {"source": "norm", "target": "hidden", "port": 0},
                {"source": "hidden", "target": "output", "port": 0},
            ],
        },
        "data": {"source": "builtin:iris", "validation_split": 0.3, "seed": 0},
        "training": {"optimizer": {"type": "Adam", "learning_rate": 0.01},
                     "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                     "batch_size": 16, "epochs": epochs, "seed": 0, "tensorboard": False},
        "search": {"parameters": {LR: {"choices": [0.01]}}, "strategy": "random",
                   "metric": "val_accuracy", "pruner": "none"},
    }  # fmt: skip


CPU: list[float] = []
"""CPU seconds (user + system) of each command's whole process tree, in call order."""


def timed(args: list[str]) -> float:
    """Wall seconds of one command; its CPU seconds are appended to :data:`CPU` (the
    processes it waited for count: the trial's or run's training process too)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("LAYERLAB_RUNS_DIR", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], check=True, env=env, capture_output=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--trials", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--sqlite", action="store_true", help="the study in SQLite")
    args = ap.parse_args()
    tune_s, train_s, tune_cpu, train_cpu = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            folder = Path(tmp) / f"pair{i}"
            folder.mkdir()
            path = folder / "iris.json"
            path.write_text(json.dumps(project(args.epochs)), encoding="utf-8")

            def tune(path: Path = path, folder: Path = folder) -> float:
                storage = ["--storage", f"sqlite:///{folder / 'tune.sqlite3'}"] * args.sqlite
                return timed(["tune", str(path), "--trials", str(args.trials), "--json", *storage])

            def train(path: Path = path, folder: Path = folder) -> float:
                return sum(
                    timed(["train", str(path), "--out", str(folder / f"plain-{n}"), "--json"])
                    for n in range(args.trials)
                )

            def measured(side: Callable[[], float]) -> tuple[float, float]:
                n = len(CPU)
                wall = side()
                return wall, sum(CPU[n:])

            if i % 2:
                b, cb = measured(train)
                a, ca = measured(tune)
            else:
                a, ca = measured(tune)
                b, cb = measured(train)
            tune_s.append(a)
            train_s.append(b)
            tune_cpu.append(ca)
            train_cpu.append(cb)
    ratios = [a / b for a, b in zip(tune_s, train_s, strict=True)]
    print(
        json.dumps(
            {
                "pairs": args.pairs,
                "trials": args.trials,
                "epochs": args.epochs,
                "storage": "sqlite" if args.sqlite else "journal",
                "tune_s": [round(x, 2) for x in tune_s],
                "train_s": [round(x, 2) for x in train_s],
                "tune_median_s": round(statistics.median(tune_s), 2),
                "train_median_s": round(statistics.median(train_s), 2),
                "ratio_median": round(statistics.median(ratios), 3),
                "tune_cpu_s": [round(x, 2) for x in tune_cpu],
                "train_cpu_s": [round(x, 2) for x in train_cpu],
                "cpu_ratio_median": round(
                    statistics.median(a / b for a, b in zip(tune_cpu, train_cpu, strict=True)), 3
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
