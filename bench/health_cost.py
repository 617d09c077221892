"""What training health collection (``training.health``, issue 19) costs on LeNet-5.

Trains the LeNet-5 preset (``builtin:digits``, 1,437 training samples, batch 16) with
health on and off in alternating pairs (the order flips each pair), in this one
process after a warm-up run, and measures the training throughput of each run from
its events: samples trained / time from the ``started`` event to the last ``epoch``
event (so model building, saving and evaluation are left out; health's probes,
which run at epoch ends, are in). Prints JSON::

    {"epochs": 20, "pairs": 3, "samples_per_s_off": median, "samples_per_s_on": median,
     "cost": 1 - median(on / off of each pair), "pairs_raw": [[off, on], ...],
     "probes_per_run": median number of health events, "probe_share": median share
     of the training time the probes took (robust to a busy machine)}

Usage: ``python bench/health_cost.py [--pairs 3] [--epochs 20]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from engine.model.project import load_project
from engine.train.fit import run_training
from presets import presets_dir


def one_run(project: dict, health: bool, folder: Path) -> tuple[float, int, float]:
    """Samples per second of one run, how many health probes it made, and the share
    of the training time they took (each ``health`` event's time since the ``epoch``
    event before it: the probe, after the checkpoint callback)."""
    section = {**project["training"], "health": health, "tensorboard": False}
    times: dict[str, float] = {}
    counts = {"epoch": 0, "health": 0}
    samples = 0
    probing = 0.0

    def emit(event: dict) -> None:
        nonlocal samples, probing
        kind = event.get("event")
        if kind == "started":
            times["start"] = time.perf_counter()
            samples = int(event["samples"])
        elif kind == "epoch":
            times["end"] = time.perf_counter()
            counts["epoch"] += 1
        elif kind == "health":
            counts["health"] += 1
            probing += time.perf_counter() - times.get("end", time.perf_counter())

    final = run_training({**project, "training": section}, folder, emit=emit)
    assert final["event"] == "done", final
    took = times["end"] - times["start"]
    return samples * counts["epoch"] / took, counts["health"], probing / took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--epochs", type=int, default=20)
    args = p.parse_args()
    project = load_project(presets_dir() / "lenet5.json").to_dict()
    project["training"]["epochs"] = args.epochs
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        one_run({**project, "training": {**project["training"], "epochs": 2}}, True, root / "w")
        pairs, probes, shares = [], [], []
        for i in range(args.pairs):
            order = (False, True) if i % 2 == 0 else (True, False)
            result = {}
            for health in order:
                speed, n, share = one_run(project, health, root / f"{i}-{health}")
                result[health] = speed
                if health:
                    probes.append(n)
                    shares.append(share)
            pairs.append([result[False], result[True]])
    print(
        json.dumps(
            {
                "epochs": args.epochs,
                "pairs": args.pairs,
                "samples_per_s_off": round(statistics.median(p[0] for p in pairs), 1),
                "samples_per_s_on": round(statistics.median(p[1] for p in pairs), 1),
                "cost": round(1 - statistics.median(p[1] / p[0] for p in pairs), 4),
                "pairs_raw": [[round(a, 1), round(b, 1)] for a, b in pairs],
                "probes_per_run": statistics.median(probes),
                "probe_share": round(statistics.median(shares), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
