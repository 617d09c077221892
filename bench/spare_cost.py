"""What a spare warm worker costs the run it starts beside (issue 17).

The engine's worker alone (no window) trains ``bench/gui_training.py``'s CNN, handed a
ready warm worker, in three modes taken in alternating order:

- ``alone``: nothing else starts;
- ``spare``: a spare (``WarmWorker(low_priority=True)``, as the window starts one at
  the run's first batch) imports TensorFlow meanwhile;
- ``in_spare``: the run trains in a released spare (is a run slower there?).

Throughput is samples/s between the first and the last epoch end. Prints one JSON
line with every value and the median ratio of each mode to ``alone``::

    .venv/bin/python bench/spare_cost.py [--repeats 3] [--samples 8000] [--epochs 5]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
MODES = ("alone", "spare", "in_spare")


def one_run(project, run_dir: Path, mode: str) -> float:
    from bench.gui_training import throughput
    from engine.train.worker import WarmWorker, start_training

    warm = WarmWorker(low_priority=mode == "in_spare")
    if mode == "in_spare":
        time.sleep(6)  # it imports first, as beside a run
        warm.release()
    while not warm.ready():
        time.sleep(0.05)
    run = start_training(project, run_dir, warm=warm)
    ends: list[float] = []
    samples, spare = 0, None
    try:
        for event in run.events():
            if event["event"] == "started":
                samples = int(event["samples"])
            elif event["event"] == "batch" and spare is None and mode == "spare":
                spare = WarmWorker(low_priority=True)
            elif event["event"] == "epoch":
                ends.append(time.monotonic())
            elif event["event"] == "error":
                raise SystemExit(f"the run failed: {event['message']}")
    finally:
        if spare is not None:
            spare.close()
    return throughput(ends, samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()

    from bench.gui_training import make_images, project_dict
    from engine.model.project import load_project

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_images(folder / "images.npz", args.samples)
        path = folder / "project.json"
        path.write_text(json.dumps(project_dict(folder / "images.npz", args.epochs)))
        project = load_project(path)
        values: dict[str, list[float]] = {mode: [] for mode in MODES}
        for i in range(args.repeats):
            for mode in MODES if i % 2 == 0 else MODES[::-1]:
                sps = one_run(project, folder / f"run-{i}-{mode}", mode)
                values[mode].append(sps)
                load = os.getloadavg()[0]
                print(f"# {i + 1} {mode}: {sps:.0f} samples/s (load {load:.1f})", file=sys.stderr)
    alone = values["alone"]
    ratios = {mode: [round(v / a, 3) for v, a in zip(values[mode], alone)] for mode in MODES[1:]}
    print(
        json.dumps(
            {
                **{f"{m}_ratio": round(statistics.median(r), 3) for m, r in ratios.items()},
                "ratios": ratios,
                "sps": {m: [round(v) for v in vs] for m, vs in values.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
