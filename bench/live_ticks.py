"""The live view's cost per refresh tick, in UI-thread CPU time (not moved much by
the machine's load, unlike a wall-clock stall probe).

Offscreen, a :class:`gui.training.live_view.LiveView` (1400×420) is fed synthetic
``batch`` events (loss and accuracy, three per tick, as the worker's 20 events/s
against the 15 Hz refresh) and ``epoch`` events; each tick does what the refresh
timer does (``flush``, the progress bar) and processes the events (the paint). No
TensorFlow. Prints one JSON line::

    {"tick_cpu_ms_median": ..., "tick_cpu_ms_p99": ..., "tick_cpu_ms_max": ...,
     "total_cpu_ms": ..., "ticks": ..., "slowest": [[tick, ms], ...]}

    .venv/bin/python bench/live_ticks.py [--epochs 5] [--steps 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200, help="batches per epoch")
    args = parser.parse_args()

    import numpy as np
    from PySide6.QtWidgets import QApplication

    from gui.training.live_view import LiveView

    app = QApplication.instance() or QApplication([])
    view = LiveView()
    view.resize(1400, 420)
    view.show()
    for _ in range(20):
        app.processEvents()
    steps, epochs = args.steps, args.epochs
    view.set_state("running")
    view.on_started({"epochs": epochs, "steps_per_epoch": steps, "samples": 32 * steps})
    view.plots.reset()
    view.plots.timer.stop()  # the ticks are driven here
    rng = np.random.default_rng(0)
    costs: list[float] = []
    for epoch in range(1, epochs + 1):
        for first in range(1, steps + 1, 3):
            for step in range(first, min(first + 3, steps + 1)):
                loss = 2.3 * np.exp(-(epoch - 1 + step / steps)) + 0.05 * rng.random()
                view.on_batch(
                    {
                        "epoch": epoch,
                        "step": step,
                        "steps": steps,
                        "logs": {"loss": loss, "accuracy": 1 - loss / 3},
                        "samples_per_s": 6000.0,
                        "eta_s": 5.0,
                    }
                )
            start = time.thread_time()
            view.plots.flush()
            view._update_progress()
            app.processEvents()
            costs.append((time.thread_time() - start) * 1000)
        view.on_epoch(
            {
                "epoch": epoch,
                "logs": {"loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.7},
                "time_s": 1.0,
            }
        )
    ordered = sorted(costs)
    slowest = sorted(range(len(costs)), key=lambda i: -costs[i])[:5]
    print(
        json.dumps(
            {
                "tick_cpu_ms_median": round(statistics.median(costs), 2),
                "tick_cpu_ms_p99": round(ordered[int(len(ordered) * 0.99)], 2),
                "tick_cpu_ms_max": round(ordered[-1], 2),
                "total_cpu_ms": round(sum(costs)),
                "ticks": len(costs),
                "slowest": [[i, round(costs[i], 1)] for i in slowest],
            }
        )
    )


if __name__ == "__main__":
    main()
