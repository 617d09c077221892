"""Training through the GUI against plain ``model.fit``, and how responsive the UI stays.

Both sides train the same small CNN (built by LayerLab's builder from one project)
on the same generated 28x28 images, with the same split and compile settings:

(a) plain: ``model.fit`` in a fresh Python subprocess, one step per call (Keras's
    default); and the control "same N": the same with the steps per call LayerLab's
    ``"auto"`` picks for this model, so the ratio splits into what the N gains
    (``same_n_over_plain``) and what LayerLab itself costs (``plain_same_n_ratio``);
(b) GUI: the main window (offscreen) presses Train; the run goes through the
    ``TrainingSession`` and the worker process, with the live plots drawing.

Runs alternate (a b, b a, a b, ...) so machine noise hits both alike. Throughput
is training samples per second of wall time between the first and the last epoch
end (the first epoch's tracing is excluded on both sides). During (b) a 10 ms
``QTimer`` in the UI thread measures how late each tick fires beyond its interval.
The same probe runs in the idle window during (a): the control, showing how late
a timer fires on this machine when the UI has nothing to do but TensorFlow
keeps the cores busy. Prints one JSON line::

    {"throughput_ratio": median(gui/plain), "ui_stall_max_ms": ..., "ui_stall_p99_ms": ...}

    .venv/bin/python bench/gui_training.py [--pairs 3] [--epochs 4] [--samples 4000]
        [--worker] [--no-health] [--warm]

``--warm`` keeps a training worker ready, as the app does by default: each GUI run is
handed the warm worker, and a spare for the next run imports TensorFlow (at low
priority) while it trains, so the ratio shows what that import costs the run.
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
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PROBE_MS = 10


def make_images(path: Path, samples: int, seed: int = 0) -> None:
    """``samples`` noisy 28x28 pictures of 10 classes (a bar at one of 10 places/angles)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, samples)
    x = rng.normal(0.0, 0.3, (samples, 28, 28)).astype("float32")
    rows = np.arange(28)
    for i, label in enumerate(y):
        offset = 3 + 2 * (label % 5) + rng.integers(-1, 2)
        if label < 5:
            x[i, offset : offset + 3, 4:24] += 1.0  # a horizontal bar
        else:
            x[i, 4:24, offset : offset + 3] += 1.0  # a vertical bar
        x[i] += 0.2 * np.sin(rows / (1 + label))[None, :]
    np.savez(path, x=x[..., None], y=y.astype("int64"))


def project_dict(data_path: Path, epochs: int, health: bool = True) -> dict:
    nodes = [
        ("image", "Input", {"shape": [28, 28, 1]}),
        ("conv1", "Conv2D", {"filters": 8, "kernel_size": 3, "activation": "relu"}),
        ("pool1", "MaxPooling2D", {"pool_size": 2}),
        ("conv2", "Conv2D", {"filters": 16, "kernel_size": 3, "activation": "relu"}),
        ("pool2", "MaxPooling2D", {"pool_size": 2}),
        ("flat", "Flatten", {}),
        ("hidden", "Dense", {"units": 32, "activation": "relu"}),
        ("out", "Dense", {"units": 10, "activation": "softmax"}),
    ]
    return {
        "format": "layerlab",
        "version": 1,
        "name": "bench gui cnn",
        "graph": {
            "nodes": [
                {"id": i, "type": t, "params": p, "position": [0, 120 * k]}
                for k, (i, t, p) in enumerate(nodes)
            ],
            "edges": [{"source": a[0], "target": b[0]} for a, b in zip(nodes, nodes[1:])],
        },
        "data": {"source": "npz", "path": str(data_path), "validation_split": 0.2},
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": 0.001},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "batch_size": 32,
            "epochs": epochs,
            "seed": 0,
            "health": health,
        },
    }


PLAIN = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import keras
from engine.build.builder import build_model
from engine.data.dataset import labels_for_loss, load_data
from engine.model.project import Project
from engine.train.config import make_loss, make_metrics, make_optimizer
from engine.train.execution import steps_per_execution

project = json.loads(open(sys.argv[2]).read())
section = project["training"]
ds = load_data(project["data"], None, (28, 28, 1))
keras.utils.set_random_seed(section["seed"])
model = build_model(Project.from_dict(project))
steps = -(-len(ds.x_train) // section["batch_size"])
loss = section["loss"]
# "1": Keras's default; "auto": the N LayerLab picks for this model (the same function)
per_call = steps_per_execution(sys.argv[3], model, section["batch_size"], steps, False)
model.compile(optimizer=make_optimizer(section, steps, section["epochs"]),
              loss=make_loss(section, loss), metrics=make_metrics(section, loss, 10),
              steps_per_execution=per_call)
ends = []
timer = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: ends.append(time.monotonic()))
model.fit(ds.x_train, labels_for_loss(ds.y_train, loss, ds.num_classes),
          batch_size=section["batch_size"], epochs=section["epochs"],
          validation_data=(ds.x_val, labels_for_loss(ds.y_val, loss, ds.num_classes)),
          callbacks=[timer], verbose=0)
print(json.dumps({"ends": ends, "samples": len(ds.x_train), "per_call": per_call}))
"""


def throughput(epoch_ends: list[float], samples: int) -> float:
    """Samples per second between the first and the last epoch end."""
    return samples * (len(epoch_ends) - 1) / (epoch_ends[-1] - epoch_ends[0])


PER_CALL: dict[str, int] = {}
"""The steps per call each kind of plain run compiled with."""


def plain_sps(project_path: Path, probe: Probe, per_call: str = "1") -> float:
    """Plain ``model.fit`` in a subprocess, one step per call (Keras's default) or, with
    ``per_call="auto"``, the N LayerLab picks; the idle window's UI is probed meanwhile
    (the control: how late the timer fires when the UI has nothing to do)."""
    from PySide6.QtCore import QEventLoop, QTimer

    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", PLAIN, str(ROOT), str(project_path), per_call],
            stdout=out,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        loop = QEventLoop()
        check = QTimer()
        check.setInterval(50)
        check.timeout.connect(lambda: proc.poll() is not None and loop.quit())
        check.start()
        probe.start()
        loop.exec()
        probe.stop()
        check.stop()
        if proc.returncode:
            raise SystemExit(f"the plain run failed (exit code {proc.returncode})")
        out.seek(0)
        result = json.loads(out.read().strip().splitlines()[-1])
    PER_CALL[per_call] = result["per_call"]
    return throughput(result["ends"], result["samples"])


def worker_sps(project_path: Path, run_dir: Path) -> float:
    """The training engine's worker alone (no window): what the engine itself costs."""
    from engine.model.project import load_project
    from engine.train.worker import start_training

    run = start_training(load_project(project_path), run_dir)
    ends, samples = [], 0
    for event in run.events():
        if event["event"] == "started":
            samples = int(event["samples"])
        elif event["event"] == "epoch":
            ends.append(time.monotonic())
        elif event["event"] == "error":
            raise SystemExit(f"worker run failed: {event['message']}")
    return throughput(ends, samples)


class Probe:
    """A 10 ms timer in the UI thread; records how late each tick fires."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.late_ms: list[float] = []
        self._last = 0.0
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.late_ms.append(max(0.0, (now - self._last) * 1000 - PROBE_MS))
        self._last = now


def gui_sps(window, app, probe: Probe) -> float:
    """Press Train in the window; samples/s between epoch ends, probing the UI meanwhile."""
    dock = window.training_dock
    ends: list[float] = []
    final: list[dict] = []
    started: list[dict] = []
    on_epoch = lambda e: ends.append(time.monotonic())  # noqa: E731
    dock.session.epoch.connect(on_epoch)
    dock.session.started.connect(started.append)
    dock.session.finished.connect(final.append)
    dock.session.failed.connect(final.append)
    from PySide6.QtCore import QEventLoop

    loop = QEventLoop()
    dock.session.state_changed.connect(lambda state: state == "idle" and loop.quit())
    probe.start()
    window.act_train.trigger()
    if not final:
        loop.exec()
    probe.stop()
    for signal, slot in (
        (dock.session.epoch, on_epoch),
        (dock.session.started, started.append),
        (dock.session.finished, final.append),
        (dock.session.failed, final.append),
    ):
        signal.disconnect(slot)
    if final[0]["event"] == "error":
        raise SystemExit(f"GUI run failed: {final[0]['message']}")
    curve = dock.live.plots.curve("batch:loss")
    assert curve is not None and len(curve.getData()[0]) > 0, "the live plot drew nothing"
    return throughput(ends, int(started[0]["samples"]))


def open_window(project_path: Path, warm: bool = False):
    from PySide6.QtWidgets import QApplication

    from engine.model.project import load_project
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    window = MainWindow(
        load_project(project_path), check_recovery=False, use_settings=False, autosave=False
    )
    window.resize(1400, 900)
    window.show()
    window.training_dock.show()
    window.training_dock.raise_()
    window.validation.start()
    session = window.training_dock.session
    if warm:
        window.act_warm_worker.setChecked(True)  # the app's default
    deadline = time.monotonic() + 120
    while not window.validation.ready and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    while (
        window.training_dock.data_panel.busy or (warm and session.warm_state != "ready")
    ) and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    for _ in range(50):  # let the start-up work (schedule plot, devices) settle
        app.processEvents()
        time.sleep(0.01)
    return window, app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=8000)
    parser.add_argument(
        "--worker", action="store_true", help="also time the engine's worker without the window"
    )
    parser.add_argument(
        "--no-health", action="store_true", help="training health probes off (on by default)"
    )
    parser.add_argument(
        "--warm", action="store_true", help="keep a training worker ready (the app's default)"
    )
    args = parser.parse_args()

    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["LAYERLAB_RUNS_DIR"] = str(tmp_path / "runs")
        make_images(tmp_path / "images.npz", args.samples)
        project_path = tmp_path / "bench.json"
        project_path.write_text(
            json.dumps(project_dict(tmp_path / "images.npz", args.epochs, not args.no_health))
        )
        window, app = open_window(project_path, args.warm)
        probe, control = Probe(), Probe()
        results: dict[str, list[float]] = {"plain": [], "gui": [], "worker": [], "same_n": []}
        for i in range(args.pairs):
            order = ["plain", "gui", "same_n"] if i % 2 == 0 else ["same_n", "gui", "plain"]
            if args.worker:
                order.insert(2, "worker")
            for side in order:
                if side in ("plain", "same_n"):
                    value = plain_sps(project_path, control, "1" if side == "plain" else "auto")
                elif side == "worker":
                    value = worker_sps(project_path, tmp_path / f"worker-{i}")
                else:
                    value = gui_sps(window, app, probe)
                results[side].append(value)
                print(f"# pair {i + 1} {side}: {value:.0f} samples/s", file=sys.stderr, flush=True)
        window.training_dock.shutdown()
    late, idle = np.array(probe.late_ms), np.array(control.late_ms)
    gui, plain, worker = results["gui"], results["plain"], results["worker"]
    same_n = results["same_n"]
    ratios = [g / p for g, p in zip(gui, plain)]
    extra = {}
    if worker:
        extra = {
            "worker_ratio": round(statistics.median([w / p for w, p in zip(worker, plain)]), 3),
            "worker_over_same_n": round(
                statistics.median([w / p for w, p in zip(worker, same_n)]), 3
            ),
            "gui_over_worker": round(statistics.median([g / w for g, w in zip(gui, worker)]), 3),
            "worker_sps": [round(v, 1) for v in worker],
        }
    print(
        json.dumps(
            {
                "throughput_ratio": round(statistics.median(ratios), 3),
                "ui_stall_max_ms": round(float(late.max()), 1),
                "ui_stall_p99_ms": round(float(np.percentile(late, 99)), 1),
                "control_stall_max_ms": round(float(idle.max()), 1),
                "control_stall_p99_ms": round(float(np.percentile(idle, 99)), 1),
                "gui_sps": [round(v, 1) for v in gui],
                "plain_sps": [round(v, 1) for v in plain],
                "ratios": [round(r, 3) for r in ratios],
                # the control: plain fit with the N LayerLab chose; gui/it is LayerLab's
                # own cost, it/plain what the N alone gains
                "steps_per_execution": PER_CALL.get("auto"),
                "plain_same_n_ratio": round(
                    statistics.median([g / p for g, p in zip(gui, same_n)]), 3
                ),
                "same_n_over_plain": round(
                    statistics.median([n / p for n, p in zip(same_n, plain)]), 3
                ),
                "plain_same_n_sps": [round(v, 1) for v in same_n],
                "probe_ticks": int(len(late)),
                "samples": args.samples,
                "epochs": args.epochs,
                "health": not args.no_health,
                "warm": args.warm,
                **extra,
            }
        )
    )


if __name__ == "__main__":
    main()
