"""How long from pressing Train to the first batch, with and without the warm worker.

Opens the main window offscreen on ``presets/lenet5.json`` (in a fresh process per
repeat, so each "first run" really is the window's first), waits until it is idle
(TensorFlow loaded in the window, the warm training worker ready), presses Train and
times until the first ``batch`` event reaches the UI thread; the run is then stopped.
Five timed runs per window, in this order:

- ``first_batch_s``: the window's first run, handed to the warm worker;
- ``second_first_batch_s``: a second run once the window is idle again (the fresh
  warm worker that replaced the used one is ready);
- ``immediate_first_batch_s``: a run pressed the moment the previous one ended, that
  one stopped at its first batch (the spare it started has only just begun importing
  TensorFlow);
- ``after_run_first_batch_s``: a run pressed the moment a run that trained for
  :data:`TRAIN_S` seconds ended (the spare started during that run is ready);
- ``cold_first_batch_s``: "Keep a training worker ready" turned off: a fresh worker
  process is spawned, as before issue 17.

Prints one JSON line with the medians over the repeats and every value::

    {"first_batch_s": ..., "second_first_batch_s": ..., "immediate_first_batch_s": ...,
     "after_run_first_batch_s": ..., "cold_first_batch_s": ..., "runs": [...],
     "targets": {...}}

    .venv/bin/python bench/train_latency.py [--repeats 3]
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
KEYS = (
    "first_batch_s",
    "second_first_batch_s",
    "immediate_first_batch_s",
    "after_run_first_batch_s",
    "cold_first_batch_s",
)
TRAIN_S = 20.0
"""How long the run before ``after_run_first_batch_s`` trains before it is stopped."""
TARGETS = {"first_batch_s": 1.5, "second_first_batch_s": 1.0}


def wait(app, until, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.005)


def press_train(window, app, train_s: float = 0.0) -> float:
    """Press Train; seconds until the first batch event arrives; the run is stopped
    then (``train_s``: that many seconds later) and this returns once the window is
    idle."""
    from PySide6.QtCore import QTimer

    session = window.training_dock.session
    first: list[float] = []
    ended: list[dict] = []

    def on_batch(_event: dict) -> None:
        if not first:
            first.append(time.perf_counter())
            QTimer.singleShot(int(train_s * 1000), session.stop)

    session.batch.connect(on_batch)
    session.finished.connect(ended.append)
    session.failed.connect(ended.append)
    start = time.perf_counter()
    window.act_train.trigger()
    wait(app, lambda: bool(ended), what="the run to end")
    session.batch.disconnect(on_batch)
    session.finished.disconnect(ended.append)
    session.failed.disconnect(ended.append)
    if ended[0].get("event") == "error" or not first:
        raise SystemExit(f"the run failed: {ended[0].get('message')}")
    return first[0] - start


def measure_once() -> dict[str, float]:
    """One window, four runs (see the module's docstring)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from PySide6.QtWidgets import QApplication

    from engine.model.project import load_project
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    window = MainWindow(
        load_project(ROOT / "presets" / "lenet5.json"),
        check_recovery=False,
        use_settings=False,
        autosave=False,
    )
    window.resize(1400, 900)
    window.show()
    window.act_warm_worker.setChecked(True)  # the app's default (a window without settings: off)
    session = window.training_dock.session
    dock = window.training_dock

    def idle() -> bool:
        return (
            window.validation.ready
            and not dock.data_panel.busy
            and session.warm_state == "ready"
            and not session.running
        )

    wait(app, idle, what="the window to be idle with a warm worker")
    out = {"first_batch_s": press_train(window, app)}
    wait(app, idle, what="the replacement warm worker")
    out["second_first_batch_s"] = press_train(window, app)
    app.processEvents()  # the moment after the end: the replacement has just started
    out["immediate_first_batch_s"] = press_train(window, app)
    epochs = window.project.training.get("epochs")
    window.project.training["epochs"] = 1000  # long enough for TRAIN_S, then stopped
    press_train(window, app, TRAIN_S)
    window.project.training["epochs"] = epochs
    app.processEvents()
    out["after_run_first_batch_s"] = press_train(window, app)
    window.act_warm_worker.setChecked(False)
    out["cold_first_batch_s"] = press_train(window, app)
    window.training_dock.shutdown()
    window.undo_stack.set_clean()
    window.close()
    return {k: round(v, 3) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.once:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(measure_once()), flush=True)
        os._exit(0)  # skip Qt's and TensorFlow's slow teardown
    runs = []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(
                os.environ,
                LAYERLAB_RUNS_DIR=str(Path(tmp) / "runs"),
                LAYERLAB_SETTINGS=str(Path(tmp) / "settings.ini"),
                LAYERLAB_RECOVERY_DIR=str(Path(tmp) / "recovery"),
                PYTHONPATH=str(ROOT),
            )
            done = subprocess.run(
                [sys.executable, __file__, "--once"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode:
                raise SystemExit(f"repeat {i + 1} failed:\n{done.stderr[-2000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"# repeat {i + 1}: {result}", file=sys.stderr, flush=True)
            runs.append(result)
    summary = {k: round(statistics.median(r[k] for r in runs), 3) for k in KEYS}
    print(json.dumps({**summary, "runs": runs, "targets": TARGETS}))


if __name__ == "__main__":
    main()
