"""The training engine, in process: section checks, optimizers, schedules, whole runs.

Runs are real but tiny (a Dense model on iris or a 200-row CSV, a few epochs);
TensorFlow starts once for the module. The MirroredStrategy check runs in a
subprocess because logical CPU devices must be set before TensorFlow starts.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.train.callbacks import Controls
from engine.train.config import (
    LOSSES,
    METRICS,
    OPTIMIZERS,
    class_weights,
    make_optimizer,
    make_schedule,
    training_problems,
)
from engine.train.fit import run_training

# ------------------------------------------------------------------------------- helpers


def dense_project(
    training: dict | None = None, data: dict | None = None, output: dict | None = None
) -> dict:
    """Input(4) -> Dense(16, relu) -> Dense(3, softmax) on iris."""
    out = output or {"units": 3, "activation": "softmax"}
    return {
        "format": "layerlab",
        "version": 1,
        "name": "iris mlp",
        "graph": {
            "nodes": [
                {"id": "x", "type": "Input", "params": {"shape": [4]}, "position": [0, 0]},
                {
                    "id": "hidden",
                    "type": "Dense",
                    "params": {"units": 16, "activation": "relu"},
                    "position": [0, 100],
                },
                {"id": "out", "type": "Dense", "params": out, "position": [0, 200]},
            ],
            "edges": [
                {"source": "x", "target": "hidden", "port": 0},
                {"source": "hidden", "target": "out", "port": 0},
            ],
        },
        "data": data or {"source": "builtin:iris", "validation_split": 0.2},
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": 0.01},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "batch_size": 24,
            "epochs": 2,
            "seed": 0,
            **(training or {}),
        },
    }


def train(project: dict, run_dir: Path, **kwargs) -> tuple[dict, list[dict]]:
    events: list[dict] = []
    final = run_training(project, run_dir, emit=events.append, **kwargs)
    return final, events


def tensorboard_scalars(folder: Path) -> dict[str, list[float]]:
    """tag -> values by step, read from the TensorBoard event files in ``folder``."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    found: dict[str, dict[int, float]] = {}
    for path in folder.iterdir():
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                found.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return {tag: [v for _, v in sorted(steps.items())] for tag, steps in found.items()}


def kinds(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


@pytest.fixture(scope="module")
def keras():
    import keras as k

    return k


def tiny_model(keras, optimizer):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


# ------------------------------------------------------------------- section problems


def test_training_problems_default_section_is_fine():
    from engine.model.project import DEFAULT_TRAINING

    assert training_problems(DEFAULT_TRAINING) == []
    assert training_problems(dense_project()["training"]) == []


@pytest.mark.parametrize(
    "section, words",
    [
        ({"optimizer": {"type": "Adamm"}}, ["Adamm", "SGD", "Lion"]),
        ({"optimizer": {"type": "SGD", "beta_1": 0.9}}, ["SGD", "beta_1", "momentum"]),
        ({"optimizer": {"type": "Adam", "learning_rate": -1}}, ["learning_rate", "-1", "> 0"]),
        ({"loss": "crossentropy"}, ["crossentropy", "sparse_categorical_crossentropy", "huber"]),
        (
            {"loss": {"type": "sparse_categorical_crossentropy", "label_smoothing": 0.1}},
            ["label_smoothing", "categorical_crossentropy"],
        ),
        ({"metrics": ["accuracy", "f1"]}, ["f1", "top_k", "rmse"]),
        ({"metrics": [{"type": "top_k", "k": 0}]}, ["k", "0"]),
        ({"batch_size": 0}, ["batch_size", "0"]),
        ({"epochs": 2.5}, ["epochs", "whole number", "2.5"]),
        ({"schedule": {"type": "warp"}}, ["warp", "cosine", "reduce_on_plateau"]),
        (
            {"schedule": {"type": "step", "boundaries_epochs": [2, 4], "values": [0.1, 0.01]}},
            ["values", "3 learning rates"],
        ),
        ({"early_stopping": {"patience": -2}}, ["patience", "-2"]),
        ({"precision": "float8"}, ["precision", "mixed_float16", "float8"]),
        ({"device": "tpu"}, ["device", "gpu:N", "tpu"]),
        ({"class_weight": {"a": 1}}, ["class_weight", "'a'"]),
        ({"batchsize": 3}, ["batchsize", "batch_size"]),
    ],
)
def test_training_problems_name_key_and_value(section, words):
    problems = training_problems(section)
    assert len(problems) == 1, problems
    for word in words:
        assert word in problems[0], (word, problems[0])


def test_tables_match_keras_signatures(keras):
    for name, params in OPTIMIZERS.items():
        accepted = inspect.signature(getattr(keras.optimizers, name)).parameters
        for p in ("learning_rate", "weight_decay", "clipnorm", "clipvalue", *params):
            assert p in accepted, (name, p)
    assert set(LOSSES) >= {"categorical_crossentropy", "binary_crossentropy", "huber"}
    assert {"accuracy", "top_k", "precision", "recall", "auc", "mae", "rmse"} <= set(METRICS)


# -------------------------------------------------------------- optimizers, schedules


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_builds_and_takes_a_step(keras, name):
    extra = {
        "SGD": {"momentum": 0.9, "nesterov": True},
        "RMSprop": {"centered": True},
        "AdamW": {"weight_decay": 0.01},
    }.get(name, {})
    section = {"optimizer": {"type": name, "learning_rate": 0.05, "clipnorm": 1.0, **extra}}
    optimizer = make_optimizer(section, steps_per_epoch=5, epochs=2)
    assert type(optimizer).__name__ == name
    model = tiny_model(keras, optimizer)
    before = [w.copy() for w in model.get_weights()]
    rng = np.random.default_rng(0)
    model.train_on_batch(rng.normal(size=(8, 4)).astype("float32"), rng.integers(0, 3, 8))
    assert int(optimizer.iterations) == 1
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))


def lr_at(schedule, step: int) -> float:
    return float(schedule(step)) if callable(schedule) else float(schedule)


@pytest.mark.parametrize(
    "schedule, checks",
    [
        ({"type": "constant"}, [(0, 0.1), (95, 0.1)]),
        (
            {"type": "step", "every_epochs": 2, "factor": 0.5},
            [(0, 0.1), (19, 0.1), (20, 0.05), (40, 0.025)],
        ),
        (
            {"type": "step", "boundaries_epochs": [1, 3], "values": [0.1, 0.01, 0.001]},
            [(5, 0.1), (15, 0.01), (35, 0.001)],
        ),
        (
            {"type": "exponential", "decay_rate": 0.5, "decay_steps": 10},
            [(0, 0.1), (10, 0.05), (5, 0.1 * 0.5**0.5)],
        ),
        (
            {"type": "polynomial", "end_learning_rate": 0.001},
            [(0, 0.1), (100, 0.001), (50, 0.0505)],
        ),
        (
            {"type": "cosine", "warmup_epochs": 1, "alpha": 0.1},
            [(0, 0.0), (5, 0.05), (10, 0.1), (100, 0.01)],
        ),
    ],
)
def test_schedule_follows_its_curve_in_steps(keras, schedule, checks):
    section = {"optimizer": {"type": "SGD", "learning_rate": 0.1}, "schedule": schedule}
    assert training_problems(section) == []
    lr = make_schedule(section, steps_per_epoch=10, epochs=10)
    for step, expected in checks:
        assert lr_at(lr, step) == pytest.approx(expected, rel=1e-4, abs=1e-7), (step, schedule)
    model = tiny_model(keras, make_optimizer(section, 10, 10))
    model.train_on_batch(np.ones((4, 4), "float32"), np.zeros(4))
    assert int(model.optimizer.iterations) == 1


def test_class_weight_balanced_gives_rare_classes_more_weight():
    y = np.array([0] * 8 + [1] * 2)
    weights = class_weights({"class_weight": "balanced"}, y)
    assert weights[1] == pytest.approx(4 * weights[0])
    assert weights[0] * 8 + weights[1] * 2 == pytest.approx(10)
    assert class_weights({"class_weight": {"1": 3}}, y) == {1: 3.0}
    assert class_weights({}, y) is None


def test_metrics_that_do_not_fit_the_task_are_left_out_with_a_warning(keras):
    from engine.train.config import make_metrics

    warnings: list[dict] = []
    section = {"metrics": ["accuracy", "mae", "precision", {"type": "top_k", "k": 3}]}
    regression = make_metrics(section, "mse", 0, warnings.append, "regression")
    assert [type(m).__name__ for m in regression] == ["MeanAbsoluteError"]
    sparse = make_metrics(
        section, "sparse_categorical_crossentropy", 10, warnings.append, "classification"
    )
    assert sparse[0] == "accuracy" and len(sparse) == 2
    assert type(sparse[1]).__name__ == "SparseTopKCategoricalAccuracy"
    onehot = make_metrics(
        section, "categorical_crossentropy", 10, warnings.append, "classification"
    )
    assert [getattr(m, "name", m) for m in onehot] == [
        "accuracy",
        "mae",
        "precision",
        "top_3_accuracy",
    ]
    left_out = " ".join(w["message"] for w in warnings)
    for word in ("accuracy", "precision", "top_k", "mae"):
        assert word in left_out
    assert training_problems({"early_stopping": True}) == []


def test_out_of_memory_is_reported_with_a_hint():
    from engine.train.fit import classify_exception

    class ResourceExhaustedError(Exception):
        pass

    for exc in (MemoryError(), ResourceExhaustedError("OOM when allocating tensor")):
        event = classify_exception(exc)
        assert event["kind"] == "oom" and "batch_size" in event["hint"]
    other = classify_exception(RuntimeError("boom"))
    assert other["kind"] == "internal" and "boom" in other["message"]
    assert "error.log" in other["hint"]


# ------------------------------------------------------------------------ whole runs


def test_run_writes_a_complete_run_directory(tmp_path, keras):
    project = dense_project(
        {
            "metrics": ["accuracy", {"type": "top_k", "k": 2}],
            "class_weight": "balanced",
            "batch_size": 30,
        },
        data={"source": "builtin:iris", "validation_split": 0.2, "test_split": 0.2},
    )
    run_dir = tmp_path / "run"
    final, events = train(project, run_dir)
    assert final["event"] == "done", final
    assert kinds(events)[0] == "started" and kinds(events)[-1] == "done"
    started = events[0]
    assert started["devices"] == ["CPU:0"] and started["samples"] == 90
    assert started["steps_per_epoch"] == 3 and started["total_params"] == 16 * 4 + 16 + 51
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert {"loss", "accuracy", "top_2_accuracy", "val_loss", "val_accuracy"} <= set(
        epochs[-1]["logs"]
    )

    for name in (
        "project.json",
        "model.keras",
        "history.json",
        "history.csv",
        "evaluation.json",
        "checkpoints/last.keras",
        "checkpoints/best.keras",
    ):
        assert (run_dir / name).is_file(), name
    assert tensorboard_scalars(run_dir / "logs" / "train")["epoch_loss"] == pytest.approx(
        final["history"]["loss"]
    )
    assert tensorboard_scalars(run_dir / "logs" / "validation")["epoch_accuracy"] == pytest.approx(
        final["history"]["val_accuracy"]
    )
    assert json.loads((run_dir / "project.json").read_text()) == project
    history = json.loads((run_dir / "history.json").read_text())
    assert history == final["history"] and len(history["loss"]) == 2
    rows = (run_dir / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,") and len(rows) == 3

    model = keras.models.load_model(run_dir / "model.keras")
    assert int(model.optimizer.iterations) == 2 * 3  # optimizer state came along
    assert model.predict(np.zeros((2, 4), "float32"), verbose=0).shape == (2, 3)

    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert evaluation["validation"]["samples"] == 30 and evaluation["test"]["samples"] == 30
    details = evaluation["details"]
    assert details["split"] == "test" and details["class_names"] == [
        "setosa",
        "versicolor",
        "virginica",
    ]
    assert np.array(details["confusion_matrix"]).sum() == 30
    assert [c["support"] for c in details["per_class"]] == np.array(
        details["confusion_matrix"]
    ).sum(1).tolist()
    assert details["accuracy"] == pytest.approx(evaluation["test"]["metrics"]["accuracy"], abs=1e-3)
    assert details["predictions"][0]["true"] in details["class_names"]


def test_checkpoints_hold_the_last_and_the_best_epoch(tmp_path, keras):
    from engine.train.callbacks import RunState, callback_types

    events: list[dict] = []
    run = RunState(
        run_dir=tmp_path,
        emit=events.append,
        controls=Controls(),
        steps=1,
        epochs=3,
        batch_size=1,
        monitor="val_loss",
        mode="min",
    )
    writer = callback_types()[1](run)
    model = tiny_model(keras, "sgd")
    writer.set_model(model)
    for epoch, val_loss in enumerate([0.5, 0.3, 0.4]):
        model.set_weights([np.full_like(w, epoch + 1) for w in model.get_weights()])
        writer.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
    assert not (tmp_path / "checkpoints").exists()  # fast epochs: written once, at the end
    writer.on_train_end()
    best = keras.models.load_model(tmp_path / "checkpoints" / "best.keras").get_weights()
    last = keras.models.load_model(tmp_path / "checkpoints" / "last.keras").get_weights()
    assert all((w == 2).all() for w in best) and all((w == 3).all() for w in last)
    assert all((w == 3).all() for w in model.get_weights())  # the model kept training's end
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 3 and state["best"] == pytest.approx(0.3)
    assert [e["path"].rsplit("/", 1)[-1] for e in events] == ["last.keras", "best.keras"]


def test_batch_events_are_throttled_and_stop_keeps_a_usable_model(tmp_path, keras):
    controls = Controls()
    events: list[dict] = []
    times: list[float] = []

    def emit(event):
        import time

        events.append(event)
        if event["event"] == "batch":
            times.append(time.monotonic())
        if event["event"] == "epoch" and event["epoch"] == 3:
            controls.stop.set()

    project = dense_project({"batch_size": 1, "epochs": 50})
    final = run_training(project, tmp_path / "run", emit=emit, controls=controls)
    assert final["event"] == "done" and final["stopped"] is True
    assert 3 <= final["epochs_done"] < 50
    assert (tmp_path / "run" / "model.keras").is_file()
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert model.predict(np.zeros((1, 4), "float32"), verbose=0).shape == (1, 3)
    # 120 steps an epoch, yet at most one batch event per 50 ms
    assert len(times) >= 2
    gaps = np.diff(times)
    assert gaps.min() >= 0.045
    batch = next(e for e in events if e["event"] == "batch")
    assert batch["steps"] == 120 and batch["samples_per_s"] > 0 and "loss" in batch["logs"]
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "stopped"


def test_pause_holds_the_run_until_resumed(tmp_path):
    controls = Controls()
    events: list[dict] = []
    paused_at = []

    def emit(event):
        events.append(event)
        if event["event"] == "batch" and not paused_at:
            paused_at.append(event)
            controls.pause.set()
            threading.Timer(0.5, controls.pause.clear).start()

    final = run_training(
        dense_project({"batch_size": 4}), tmp_path / "run", emit=emit, controls=controls
    )
    assert final["event"] == "done" and final["stopped"] is False
    order = kinds(events)
    p, r = order.index("paused"), order.index("resumed")
    assert p < r and "batch" not in order[p + 1 : r]
    assert final["epochs_done"] == 2


def test_early_stopping_stops_before_the_epoch_limit(tmp_path):
    project = dense_project(
        {"epochs": 20, "early_stopping": {"monitor": "val_loss", "patience": 1, "min_delta": 10.0}}
    )
    final, events = train(project, tmp_path / "run")
    assert final["event"] == "done"
    assert final["epochs_done"] == 2  # nothing improves by 10, so it stops after patience 1
    assert len(final["history"]["loss"]) == 2


def test_reduce_on_plateau_lowers_the_learning_rate(tmp_path):
    project = dense_project(
        {
            "epochs": 3,
            "schedule": {
                "type": "reduce_on_plateau",
                "factor": 0.5,
                "patience": 0,
                "min_delta": 10.0,
            },
        }
    )
    final, _ = train(project, tmp_path / "run")
    lrs = final["history"]["learning_rate"]
    assert lrs[0] == pytest.approx(0.01) and lrs[-1] < lrs[0]


def test_resume_continues_epochs_and_optimizer_state(tmp_path, keras):
    section = {
        "epochs": 2,
        "optimizer": {"type": "SGD", "learning_rate": 0.1, "momentum": 0.9},
        "schedule": {"type": "exponential", "decay_rate": 0.5, "decay_epochs": 1},
    }
    project = dense_project(section)
    run_dir = tmp_path / "run"
    first, _ = train(project, run_dir)
    assert first["event"] == "done" and first["epochs_done"] == 2

    again, events = train(project, run_dir, resume=True, epochs=2)
    assert again["event"] == "done", again
    assert events[0]["initial_epoch"] == 2 and events[0]["epochs"] == 4
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [3, 4]
    history = again["history"]
    assert len(history["loss"]) == 4 and history["loss"][:2] == first["history"]["loss"]
    model = keras.models.load_model(run_dir / "model.keras")
    steps = events[0]["steps_per_epoch"]
    assert int(model.optimizer.iterations) == 4 * steps
    # the schedule went on from where it was: lr after epoch 4 = 0.1 * 0.5 ** 4
    assert history["learning_rate"][-1] == pytest.approx(0.1 * 0.5**4, rel=1e-4)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1 * 0.5**4, rel=1e-4)


def test_same_seed_gives_identical_runs(tmp_path, keras):
    project = dense_project({"seed": 7, "epochs": 1})
    a, _ = train(project, tmp_path / "a")
    b, _ = train(project, tmp_path / "b")
    assert a["history"]["loss"] == b["history"]["loss"]
    wa = keras.models.load_model(tmp_path / "a" / "model.keras").get_weights()
    wb = keras.models.load_model(tmp_path / "b" / "model.keras").get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb))


def regression_csv(tmp_path: Path) -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = x @ np.array([1.0, -2.0, 0.5, 3.0]) + 1.0
    lines = ["a,b,c,d,target"] + [",".join(f"{v:.5f}" for v in (*row, t)) for row, t in zip(x, y)]
    path = tmp_path / "reg.csv"
    path.write_text("\n".join(lines) + "\n")
    return {"source": "csv", "path": str(path), "task": "regression", "validation_split": 0.2}


def test_regression_run_reports_mae_predictions_and_warnings(tmp_path):
    project = dense_project(
        {
            "loss": "huber",
            "metrics": ["mae", "rmse"],
            "epochs": 2,
            "early_stopping": {"monitor": "val_accuracy"},
        },
        data=regression_csv(tmp_path),
        output={"units": 1},
    )
    final, events = train(project, tmp_path / "run")
    assert final["event"] == "done", final
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert any("val_accuracy" in w and "not available" in w for w in warnings), warnings
    assert {"mae", "rmse", "val_mae", "val_rmse"} <= set(final["history"])
    details = final["evaluation"]["details"]
    assert details["samples"] == 40 and details["rmse"] >= details["mae"] > 0
    assert isinstance(details["predictions"][0]["predicted"], float)


def test_nan_loss_ends_the_run_with_a_nan_error(tmp_path):
    project = dense_project(
        {
            "loss": "mse",
            "metrics": [],
            "epochs": 3,
            "optimizer": {"type": "SGD", "learning_rate": 1e6},
        },
        data=regression_csv(tmp_path),
        output={"units": 1},
    )
    final, events = train(project, tmp_path / "run")
    assert final["event"] == "error" and final["kind"] == "nan", final
    assert "learning rate" in final["hint"] and "1e+06" in final["hint"]
    assert not (tmp_path / "run" / "model.keras").exists()
    logged = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").open()]
    assert logged[-1]["kind"] == "nan"


def test_bad_settings_fail_before_training(tmp_path):
    final, events = train(dense_project({"optimizer": {"type": "Adamm"}}), tmp_path / "r1")
    assert final["kind"] == "config" and "Adamm" in final["message"]
    assert kinds(events) == ["error"]

    # the data does not fit the model: 4 output units for 3 classes is fine, 2 inputs is not
    project = dense_project()
    project["graph"]["nodes"][0]["params"]["shape"] = [2]
    final, _ = train(project, tmp_path / "r2")
    assert final["kind"] == "data" and "(2,)" in final["message"] and "(4,)" in final["message"]

    # an existing run directory is never overwritten, nor touched
    done, _ = train(dense_project({"epochs": 1}), tmp_path / "r3")
    before = sorted(p.name for p in (tmp_path / "r3").iterdir())
    final, _ = train(dense_project({"epochs": 1}), tmp_path / "r3")
    assert final["kind"] == "config" and "already holds a run" in final["message"]
    assert sorted(p.name for p in (tmp_path / "r3").iterdir()) == before


def test_gpu_request_without_gpu_is_refused_clearly(tmp_path):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    final, _ = train(dense_project(), tmp_path / "run", device="gpu:0")
    assert final["kind"] == "config"
    assert "no GPU" in final["message"] and "cpu" in final["hint"]


def test_mixed_precision_trains_and_restores_the_policy(tmp_path, keras):
    final, _ = train(dense_project({"precision": "mixed_bfloat16", "epochs": 1}), tmp_path / "run")
    assert final["event"] == "done", final
    assert keras.mixed_precision.global_policy().name == "float32"
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert model.get_layer("hidden").dtype_policy.name == "mixed_bfloat16"


MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from engine.train.fit import run_training
    project = json.loads(open(sys.argv[1]).read())
    events = []
    final = run_training(project, sys.argv[2], device="all", emit=events.append)
    print(json.dumps({"final": final["event"], "devices": events[0].get("devices"),
                      "message": final.get("message"),
                      "per_call": events[0].get("steps_per_execution")}))
""")


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    spec = tmp_path / "project.json"
    spec.write_text(json.dumps(dense_project({"epochs": 1})))
    out = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(spec), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[2],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["final"] == "done", result
    assert len(result["devices"]) == 2
    assert result["per_call"] == 1  # "auto" under a strategy: one step per call, as before
    assert (tmp_path / "run" / "model.keras").is_file()


def test_training_section_accepts_a_cluster_and_checks_it():
    from engine.train.config import training_problems

    ok = {"cluster": {"workers": ["127.0.0.1:2222", "127.0.0.1:2223"], "global_batch_size": 64}}
    assert training_problems(ok) == []
    bad = training_problems({"cluster": {"workers": "nope"}})
    assert bad and any("nope" in m for m in bad)


def normalization_project() -> dict:
    """iris with a Rescaling (x2 + 5) and a Normalization given no mean or variance."""
    project = dense_project()
    graph = project["graph"]
    graph["nodes"][1:1] = [
        {
            "id": "shift",
            "type": "Rescaling",
            "params": {"scale": 2.0, "offset": 5.0},
            "position": [0, 40],
        },
        {"id": "norm", "type": "Normalization", "params": {}, "position": [0, 70]},
    ]
    graph["edges"] = [
        {"source": s, "target": t, "port": 0}
        for s, t in (("x", "shift"), ("shift", "norm"), ("norm", "hidden"), ("hidden", "out"))
    ]
    return project


def test_a_normalization_without_mean_learns_it_from_the_training_data(tmp_path):
    import keras

    from engine.train.fit import load_dataset

    project = normalization_project()
    final, events = train(project, tmp_path / "run")
    assert final["event"] == "done", final
    started = next(e for e in events if e["event"] == "started")
    assert started["notes"] == [
        "Normalization 'norm' took its mean and variance from the training data"
    ]
    x_train = load_dataset(project, None).x_train
    layer = keras.models.load_model(tmp_path / "run" / "model.keras").get_layer("norm")
    np.testing.assert_allclose(np.ravel(layer.mean), (x_train * 2 + 5).mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(np.ravel(layer.variance), (x_train * 2).var(axis=0), rtol=1e-3)


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"seed": 2**32}, "seed must be a whole number from 0 to 4294967295"),
        (
            {"optimizer": {"type": "Adam", "clipnorm": 1.0, "clipvalue": 1.0}},
            "give only one of clipnorm, clipvalue",
        ),
        ({"optimizer": {"type": "Lion", "beta_1": 0}}, "Lion: beta_1 must be above 0"),
        ({"schedule": {"type": "step", "values": [0.1, 0.01]}}, "values need boundaries_epochs"),
        (
            {"schedule": {"type": "step", "boundaries_epochs": [], "values": [0.1]}},
            "boundaries must be an increasing list",
        ),
        ({"class_weight": {"²": 1.0}}, "class_weight keys must be class numbers"),
        ({"batch_size": 2**40}, "batch_size must be a whole number >= 1 and <= 2,147,483,647"),
        ({"steps_per_execution": 2**31}, 'steps_per_execution must be "auto" or a whole number'),
        (
            {"steps_per_execution": "fast"},
            "steps_per_execution must be \"auto\" or a whole number from 1 to 2,147,483,647; got 'fast'",
        ),
        ({"steps_per_execution": 0}, "got 0"),
    ],
)
def test_settings_keras_would_refuse_mid_run_are_refused_up_front(section, words):
    assert any(words in p for p in training_problems(section)), training_problems(section)


def test_settings_that_mean_nothing_here_are_warned_about_and_the_run_goes_on(tmp_path):
    project = dense_project(
        {
            "optimizer": {"type": "SGD", "momentum": 0},  # JSON's 0 for Keras's float
            "metrics": ["accuracy", {"type": "top_k", "k": 5}, "precision"],
            "class_weight": {"0": 1.0, "7": 3.0},
            "schedule": "reduce_on_plateau",
        }
    )
    final, events = train(project, tmp_path / "run")
    assert final["event"] == "done", final
    warnings = " | ".join(e["message"] for e in events if e["event"] == "warning")
    assert "top_k was left out: with k=5 and 3 classes it is always 1" in warnings
    assert "metric precision needs one-hot labels" in warnings
    assert "class_weight names class 7, but the data has classes 0-2" in warnings
    assert set(final["history"]) >= {"loss", "accuracy", "val_loss"}
    assert not any(k.startswith(("top_", "precision")) for k in final["history"])


def test_resuming_past_a_cosine_schedule_says_the_extra_epochs_train_at_its_end(tmp_path):
    project = dense_project({"schedule": {"type": "cosine"}, "epochs": 2})
    final, _ = train(project, tmp_path / "run")
    assert final["event"] == "done"
    final, events = train(project, tmp_path / "run", resume=True, epochs=2)
    assert final["event"] == "done", final
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert any(
        "cosine learning-rate schedule was planned for 2 epochs; epochs 3-4 train at "
        "its final rate" in w
        for w in warnings
    ), warnings


def test_precision_on_logits_cuts_at_probability_one_half():
    import keras

    from engine.train.config import make_metrics

    section = {
        "loss": {"type": "binary_crossentropy", "from_logits": True},
        "metrics": ["precision", "auc"],
    }
    precision, auc = make_metrics(section, "binary_crossentropy", 2)
    precision.update_state([1.0, 0.0, 1.0], [0.3, -0.2, -0.1])  # logits: yes, no, no
    assert float(precision.result()) == 1.0  # a 0.5 cut-off on logits would give 0
    assert isinstance(auc, keras.metrics.AUC) and auc._from_logits
