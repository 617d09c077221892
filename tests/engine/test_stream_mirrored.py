"""Streamed data under MirroredStrategy (``"device": "all"`` on a machine with two
logical CPU devices) and resume on a streamed image folder.

TensorFlow's logical devices must be set before anything uses it, so the mirrored runs
happen in one subprocess (one TensorFlow start for both sources).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from engine.train.fit import run_training

    root = Path(sys.argv[1])
    rng = np.random.default_rng(0)
    for c, name in enumerate(("dark", "bright")):
        (root / "set" / name).mkdir(parents=True)
        for i in range(12):
            base = 40 if c == 0 else 210
            pixels = np.clip(base + rng.integers(-30, 30, (8, 8, 3)), 0, 255).astype(np.uint8)
            data = tf.io.encode_png(pixels).numpy()
            (root / "set" / name / f"{i:02d}.png").write_bytes(data)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    np.save(root / "x.npy", x)
    np.save(root / "y.npy", (x[:, 0] > 0).astype(np.int64))

    def project(data, shape, head):
        nodes = [{"id": "x", "type": "Input", "params": {"shape": shape}}]
        nodes += head
        nodes.append({"id": "out", "type": "Dense", "params": {"units": 2, "activation": "softmax"}})
        ids = [n["id"] for n in nodes]
        return {
            "format": "layerlab", "version": 1, "name": "mirrored",
            "graph": {
                "nodes": nodes,
                "edges": [{"source": a, "target": b, "port": 0} for a, b in zip(ids, ids[1:])],
            },
            "data": data,
            "training": {
                "optimizer": {"type": "Adam", "learning_rate": 0.05},
                "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                "epochs": 1, "batch_size": 8, "seed": 0, "device": "all",
                "health": False, "tensorboard": False,
            },
        }

    images = project(
        {"source": "images", "path": str(root / "set"), "validation_split": 0.25},
        [8, 8, 3],
        [{"id": "c", "type": "Conv2D", "params": {"filters": 4, "kernel_size": 3}},
         {"id": "p", "type": "GlobalAveragePooling2D", "params": {}}],
    )
    arrays = project(
        {"source": "npz", "path": str(root / "x.npy"), "y": str(root / "y.npy"),
         "validation_split": 0.25},
        [6],
        [{"id": "h", "type": "Dense", "params": {"units": 8, "activation": "relu"}}],
    )
    out = {}
    # both in one process, as a warm worker runs one project after another
    for name, proj in (("images", images), ("npy", arrays)):
        events = []
        final = run_training(proj, root / f"run-{name}", emit=events.append)
        out[name] = {
            "final": {k: final.get(k) for k in ("event", "message", "epochs_done", "history")},
            "started": [e for e in events if e["event"] == "started"],
        }
    print("RESULT " + json.dumps(out, default=str))
    """
)


def test_streamed_images_and_memmapped_npy_train_under_mirrored_strategy(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    env["LAYERLAB_CACHE_DIR"] = str(tmp_path / "cache")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    result = json.loads(lines[0][len("RESULT ") :])
    for name, samples in (("images", 18), ("npy", 30)):
        final, started = result[name]["final"], result[name]["started"]
        assert final["event"] == "done", (name, final)
        assert final["epochs_done"] == 1
        assert np.isfinite(final["history"]["loss"][0])
        assert "val_loss" in final["history"]
        # two replicas share each global batch of 8
        assert started[0]["devices"] == ["CPU:0", "CPU:1"], started
        assert started[0]["batch_size"] == 8 and started[0]["samples"] == samples
        assert started[0]["steps_per_epoch"] == -(-samples // 8)  # global batches of 8


def test_a_streamed_image_run_stopped_in_epoch_2_resumes_with_one_history_row_per_epoch(
    tmp_path,
):
    import tensorflow as tf

    from engine.train.callbacks import Controls
    from engine.train.fit import run_training
    from engine.train.runs import read_history

    rng = np.random.default_rng(1)
    for c, name in enumerate(("dark", "bright")):
        (tmp_path / "set" / name).mkdir(parents=True)
        for i in range(10):
            pixels = np.clip(40 + 170 * c + rng.integers(-30, 30, (8, 8, 3)), 0, 255)
            png = tf.io.encode_png(pixels.astype(np.uint8)).numpy()
            (tmp_path / "set" / name / f"{i:02d}.png").write_bytes(png)
    project = {
        "format": "layerlab",
        "version": 1,
        "name": "resume",
        "graph": {
            "nodes": [
                {"id": "x", "type": "Input", "params": {"shape": [8, 8, 3]}},
                {"id": "f", "type": "Flatten", "params": {}},
                {"id": "out", "type": "Dense", "params": {"units": 2, "activation": "softmax"}},
            ],
            "edges": [
                {"source": "x", "target": "f", "port": 0},
                {"source": "f", "target": "out", "port": 0},
            ],
        },
        "data": {"source": "images", "path": str(tmp_path / "set"), "cache": "none"},
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": 0.01},
            "loss": "sparse_categorical_crossentropy",
            "epochs": 3,
            "batch_size": 4,
            "seed": 0,
            "health": False,
            "tensorboard": False,
        },
    }
    controls, events = Controls(), []

    def watch(event: dict) -> None:  # stop once epoch 1 is done: epoch 2 is cut short
        events.append(event)
        if event["event"] == "epoch":
            controls.stop.set()

    run_dir = tmp_path / "run"
    first = run_training(project, run_dir, emit=watch, controls=controls)
    assert first["event"] == "done" and first["stopped"], first
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1]
    events.clear()
    again = run_training(project, run_dir, resume=True, emit=events.append)
    assert again["event"] == "done", again
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [2, 3]
    history = read_history(run_dir)
    assert {k: len(v) for k, v in history.items()} == {k: 3 for k in history}
    assert len((run_dir / "history.csv").read_text().splitlines()) == 1 + 3
