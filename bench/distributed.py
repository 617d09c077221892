"""Throughput of a cluster run with 1, 2 and 3 local workers (loopback ports).

Trains a small MLP on ``builtin:digits`` (8x8 images, 1,437 training samples) with
the same global batch on every cluster size, each worker a real ``layerlab`` process,
and reads the chief's epoch times from ``events.jsonl``. The first epoch (tracing,
cluster warm-up) is reported apart. Prints JSON::

    {"global_batch_size": 64, "epochs": 4, "cpu_count": 2,
     "results": [{"workers": 1, "samples_per_s": ..., "epoch_s": ..., "first_epoch_s": ...,
                  "wall_s": ...}, ...]}

On one machine every worker shares the same cores, so this shows the overhead of
the collectives, not a speed-up. Usage: ``python bench/distributed.py [--workers 1 2 3]
[--epochs 4] [--batch 64]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 600


def project(epochs: int, batch: int) -> dict:
    nodes = [
        ("x", "Input", {"shape": [8, 8, 1]}),
        ("flat", "Flatten", {}),
        ("h1", "Dense", {"units": 128, "activation": "relu"}),
        ("h2", "Dense", {"units": 64, "activation": "relu"}),
        ("out", "Dense", {"units": 10, "activation": "softmax"}),
    ]
    return {
        "format": "layerlab",
        "version": 1,
        "name": "digits cluster bench",
        "graph": {
            "nodes": [
                {"id": i, "type": t, "params": p, "position": [0, 80 * k]}
                for k, (i, t, p) in enumerate(nodes)
            ],
            "edges": [
                {"source": a[0], "target": b[0], "port": 0} for a, b in zip(nodes, nodes[1:])
            ],
        },
        "data": {"source": "builtin:digits", "validation_split": 0.2},
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": 0.001},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "epochs": epochs,
            "seed": 0,
            "tensorboard": False,
            "cluster": {"global_batch_size": batch, "timeout_s": 120},
        },
    }


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def launch(*args: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli.main", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def one(n: int, path: Path, out: Path) -> dict:
    cluster = ",".join(f"127.0.0.1:{p}" for p in free_ports(n))
    start = time.monotonic()
    procs = [
        launch("worker", str(path), "--cluster", cluster, "--index", str(i)) for i in range(1, n)
    ]
    chief = launch(
        "train", str(path), "--cluster", cluster, "--index", "0", "--out", str(out), "--json"
    )
    try:
        _, err = chief.communicate(timeout=LIMIT_S)
        for p in procs:
            p.communicate(timeout=60)
    finally:
        for p in [chief, *procs]:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    wall = time.monotonic() - start
    if chief.returncode != 0:
        raise SystemExit(f"{n} worker(s) failed:\n{err[-2000:]}")
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    started = next(e for e in events if e["event"] == "started")
    times = [e["time_s"] for e in events if e["event"] == "epoch"]
    rest = times[1:] or times
    samples = started["samples"]
    return {
        "workers": n,
        "samples_per_s": round(samples * len(rest) / sum(rest), 1),
        "epoch_s": round(sum(rest) / len(rest), 3),
        "first_epoch_s": round(times[0], 3),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="layerlab-bench-") as tmp:
        path = Path(tmp) / "digits.json"
        path.write_text(json.dumps(project(args.epochs, args.batch)))
        results = [one(n, path, Path(tmp) / f"run-{n}") for n in args.workers]
    print(
        json.dumps(
            {
                "global_batch_size": args.batch,
                "epochs": args.epochs,
                "cpu_count": os.cpu_count(),
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
