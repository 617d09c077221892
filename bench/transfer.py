"""Transfer learning, measured offline on generated images (prints one JSON object).

1. Speed: the "New from pretrained" model (MobileNet, width 0.25, 32x32) trained
   with its backbone frozen against the same model fully trainable, same data, same
   process; paired runs alternate and the medians of steps/s are compared.
2. Accuracy: nothing may be downloaded, so the "pretrained" weights come from a
   source task this script trains first (4 kinds of generated texture, 2,400
   images, backbone trainable); the backbone's weights are saved to a file. On a
   small target task (4 other textures, 40 training images per class) the
   "New from pretrained" project with that weights file (backbone frozen) is
   compared with the same network trained from scratch (weights none, trainable),
   each with the same epochs, on the same held-out images.

3. ``--digits``: the ``transfer-digits`` preset (offline, its shipped backbone
   pretrained on digits 0-4) trained with its own settings through the real
   training path, against the same network from scratch (weights none, trainable)
   and LeNet-5 from scratch, all on the same 90 training images of digits 5-9;
   validation accuracy on the other 806.

Usage (from the repository root; a few minutes on 2 CPU cores)::

    .venv/bin/python bench/transfer.py [--pairs 3] [--epochs 15] [--source-epochs 20]
    .venv/bin/python bench/transfer.py --digits
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.cli.new import new_from_pretrained  # noqa: E402

SIZE = 32


def textures(kinds: list[str], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images per kind in [0, 1] (as LayerLab's image folders load them)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    xs, ys = [], []
    for label, kind in enumerate(kinds):
        for _ in range(n):
            f = rng.uniform(0.2, 0.5)
            phase = rng.uniform(0, 2 * np.pi)
            cx, cy = rng.uniform(8, 24, 2)
            r = np.hypot(xx - cx, yy - cy)
            pattern = {
                "horizontal": np.sin(f * yy + phase),
                "vertical": np.sin(f * xx + phase),
                "diagonal": np.sin(f * (xx + yy) / 1.4 + phase),
                "anti": np.sin(f * (xx - yy) / 1.4 + phase),
                "rings": np.sin(f * r + phase),
                "checker": np.sign(np.sin(f * xx + phase) * np.sin(f * yy + phase)),
                "blob": np.exp(-(r**2) / (2 * rng.uniform(3, 6) ** 2)) * 2 - 1,
                "noise": rng.uniform(-1, 1, (SIZE, SIZE)),
            }[kind]
            colour = rng.uniform(0.3, 1.0, 3)
            img = 0.5 + 0.4 * pattern[..., None] * colour + rng.normal(0, 0.08, (SIZE, SIZE, 3))
            xs.append(np.clip(img, 0, 1))
            ys.append(label)
    order = rng.permutation(len(xs))
    return np.asarray(xs, np.float32)[order], np.asarray(ys)[order]


def build(weights, frozen: bool, classes: list[str], seed: int = 0):
    import keras

    from engine.build.builder import build_model

    project = new_from_pretrained("MobileNet", ".", size=SIZE, weights=weights, classes=classes)
    project.graph.nodes["backbone"].params["alpha"] = 0.25
    project.graph.set_trainable("backbone", not frozen)
    keras.utils.set_random_seed(seed)
    model = build_model(project)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def steps_per_second(model, x, y, batch: int = 32, steps: int = 30) -> float:
    model.fit(x[: batch * 3], y[: batch * 3], batch_size=batch, epochs=1, verbose=0)  # warm
    n = batch * steps
    start = time.perf_counter()
    model.fit(x[:n], y[:n], batch_size=batch, epochs=1, verbose=0)
    return steps / (time.perf_counter() - start)


def digits(epochs: int | None = None) -> dict:
    """The transfer-digits preset against two networks from scratch on its data."""
    from engine.model.project import load_project
    from engine.train.fit import run_training

    presets = ROOT / "presets"
    preset = load_project(presets / "transfer-digits.json").to_dict()
    scratch = json.loads(json.dumps(preset))
    for node in scratch["graph"]["nodes"]:
        if node["id"] == "backbone":
            node["params"]["weights"] = None
            node.pop("trainable", None)
    lenet = load_project(presets / "lenet5.json").to_dict()
    lenet["data"] = dict(preset["data"])
    lenet["training"] = dict(lenet["training"], epochs=preset["training"]["epochs"])
    for node in lenet["graph"]["nodes"]:
        if node["id"] == "output":
            node["params"]["units"] = 5
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, project in {
            "transfer_digits_preset": preset,
            "same_network_from_scratch": scratch,
            "lenet5_from_scratch": lenet,
        }.items():
            project["training"]["tensorboard"] = False
            start = time.perf_counter()
            final = run_training(project, Path(tmp) / label, epochs=epochs, base_dir=presets)
            val = final["history"]["val_accuracy"]
            out[label] = {
                "final_val_accuracy": round(val[-1], 3),
                "best_val_accuracy": round(max(val), 3),
                "epochs": len(val),
                "seconds": round(time.perf_counter() - start, 1),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--source-epochs", type=int, default=20)
    parser.add_argument("--digits", action="store_true", help="the transfer-digits preset")
    args = parser.parse_args(argv)
    if args.digits:
        print(json.dumps(digits(), indent=2))
        return 0
    import keras

    source_kinds = ["horizontal", "vertical", "diagonal", "anti"]
    target_kinds = ["rings", "checker", "blob", "noise"]
    xs, ys = textures(source_kinds, 600, seed=1)

    # 1. speed, frozen vs trainable, paired and alternating
    frozen_sps, trainable_sps = [], []
    for _ in range(args.pairs):
        frozen_sps.append(steps_per_second(build(None, True, source_kinds), xs, ys))
        keras.backend.clear_session()
        trainable_sps.append(steps_per_second(build(None, False, source_kinds), xs, ys))
        keras.backend.clear_session()

    # 2. accuracy: pretrain on the source task, transfer to the target task
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "source.weights.h5"
        source = build(None, False, source_kinds)
        source.fit(xs, ys, batch_size=32, epochs=args.source_epochs, verbose=0)
        xv, yv = textures(source_kinds, 100, seed=4)  # held out
        source_acc = float(source.evaluate(xv, yv, verbose=0)[1])
        source.get_layer("backbone").save_weights(weights)
        keras.backend.clear_session()
        xt, yt = textures(target_kinds, 40 + 100, seed=2)
        xtrain, ytrain, xval, yval = xt[:160], yt[:160], xt[160:], yt[160:]
        results = {}
        for label, (w, frozen) in {
            "new_from_pretrained_frozen": (str(weights), True),
            "same_network_from_scratch": (None, False),
        }.items():
            model = build(w, frozen, target_kinds, seed=3)
            model.fit(xtrain, ytrain, batch_size=16, epochs=args.epochs, verbose=0)
            results[label] = float(model.evaluate(xval, yval, verbose=0)[1])
            keras.backend.clear_session()
    out = {
        "model": "MobileNet alpha 0.25, 32x32x3, GAP, Dropout 0.2, Dense(4)",
        "steps_per_s": {
            "frozen_median": round(statistics.median(frozen_sps), 2),
            "trainable_median": round(statistics.median(trainable_sps), 2),
            "ratio_frozen_over_trainable": round(
                statistics.median(frozen_sps) / statistics.median(trainable_sps), 2
            ),
            "pairs": args.pairs,
            "batch_size": 32,
        }
        if args.pairs
        else None,
        "accuracy": {
            "source_epochs": args.source_epochs,
            "source_task_accuracy": round(source_acc, 3),
            "target_train_images": int(len(xtrain)),
            "target_val_images": int(len(xval)),
            "epochs": args.epochs,
            **{k: round(v, 3) for k, v in results.items()},
        },
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
