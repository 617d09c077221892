"""What the engine's own callbacks cost the training thread, against plain ``model.fit``.

Wall-clock throughput on a shared 2-core machine swings by a factor of two from one
run to the next (``bench/gui_training.py``), so this measures what does not: in one
process (TensorFlow loaded once), plain ``model.fit`` and the engine's
``run_training`` (the code the worker process runs, without the process) train the
same CNN on the same data as ``bench/gui_training.py``, alternating. For each run it
records

- ``epoch_end_ms``: wall time the training thread spends in the callbacks'
  ``on_epoch_end`` per epoch (the loop waits for it; disk syncs show here),
  with the share of each callback class (``by_callback_ms``);
- ``cpu_us_per_sample``: CPU time of the whole process per training sample between
  the first and the last epoch end (all threads; less sensitive to load than wall).

Prints one JSON line with medians per side::

    .venv/bin/python bench/epoch_end_cost.py [--pairs 3] [--epochs 5] [--samples 8000]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from gui_training import make_images, project_dict  # noqa: E402
from plain_fit import plain_fit  # noqa: E402

SPENT: dict[str, float] = collections.defaultdict(float)


def timed_epoch_end() -> None:
    """Make Keras's CallbackList time each callback's ``on_epoch_end`` into SPENT."""
    from keras.src.callbacks import callback_list
    from keras.src.utils import python_utils

    def on_epoch_end(self, epoch, logs=None):
        if self._async_train:
            self._flush_futures()
        logs = python_utils.pythonify_logs(logs)
        for callback in self.callbacks:
            start = time.perf_counter()
            callback.on_epoch_end(epoch, logs)
            SPENT[type(callback).__name__] += time.perf_counter() - start

    callback_list.CallbackList.on_epoch_end = on_epoch_end


def plain(project: dict, marks: list) -> int:
    import keras

    from engine.data.dataset import load_data

    ds = load_data(project["data"], None, (28, 28, 1))
    mark = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: marks.append((time.monotonic(), time.process_time()))
    )
    plain_fit(project, ds, mark)
    return len(ds.x_train)


def engine(project: dict, marks: list, run_dir: Path) -> int:
    from engine.train.fit import run_training

    samples = [0]

    def emit(event: dict) -> None:
        if event["event"] == "epoch":
            marks.append((time.monotonic(), time.process_time()))
        elif event["event"] == "started":
            samples[0] = int(event["samples"])
        elif event["event"] == "error":
            raise SystemExit(f"the engine's run failed: {event['message']}")

    run_training(project, run_dir, emit=emit)
    return samples[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=8000)
    args = parser.parse_args()
    import keras

    timed_epoch_end()
    tmp = Path(tempfile.mkdtemp(prefix="epoch-end-"))
    make_images(tmp / "images.npz", args.samples)
    project = project_dict(tmp / "images.npz", args.epochs)
    rows: dict[str, list[dict]] = {"plain": [], "engine": []}
    for i in range(args.pairs):
        for side in ("plain", "engine") if i % 2 == 0 else ("engine", "plain"):
            keras.backend.clear_session()
            SPENT.clear()
            marks: list[tuple[float, float]] = []
            if side == "plain":
                samples = plain(json.loads(json.dumps(project)), marks)
            else:
                samples = engine(json.loads(json.dumps(project)), marks, tmp / f"run-{i}")
            (w0, c0), (w1, c1) = marks[0], marks[-1]
            trained = samples * (len(marks) - 1)
            rows[side].append(
                {
                    "epoch_end_ms": 1e3 * sum(SPENT.values()) / len(marks),
                    "by_callback_ms": {k: round(1e3 * v / len(marks), 1) for k, v in SPENT.items()},
                    "cpu_us_per_sample": 1e6 * (c1 - c0) / trained,
                    "samples_per_s": trained / (w1 - w0),
                }
            )
            print(f"# pair {i + 1} {side}: {json.dumps(rows[side][-1])}", file=sys.stderr)
    out = {"load_average": round(os.getloadavg()[0], 1)}
    for side, runs in rows.items():
        for key in ("epoch_end_ms", "cpu_us_per_sample", "samples_per_s"):
            out[f"{side}_{key}"] = round(statistics.median(r[key] for r in runs), 1)
    out["cpu_ratio"] = round(out["engine_cpu_us_per_sample"] / out["plain_cpu_us_per_sample"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
