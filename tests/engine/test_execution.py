"""``"steps_per_execution": "auto"``: the N picked from a model's size, and runs that
step N at a time still report, stop and count like one at a time."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.train.callbacks import Controls
from engine.train.execution import (
    MAX_STEPS,
    TARGET_MS,
    auto_steps_per_execution,
    per_call_text,
    step_cost,
    steps_per_execution,
)
from engine.train.fit import run_training
from tests.engine.test_training import dense_project


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def small_cnn(keras):
    """The CNN of bench/gui_training.py: 28x28x1 -> two small convs -> Dense(32) -> 10."""
    layers = keras.layers
    x = inputs = keras.Input((28, 28, 1))
    x = layers.MaxPooling2D(2)(layers.Conv2D(8, 3, activation="relu")(x))
    x = layers.MaxPooling2D(2)(layers.Conv2D(16, 3, activation="relu")(x))
    x = layers.Dense(32, activation="relu")(layers.Flatten()(x))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def resnet_stem(keras):
    """The first stages of a ResNet at 224x224: a 7x7 stem and residual 3x3 blocks."""
    layers = keras.layers
    inputs = keras.Input((224, 224, 3))
    x = layers.Conv2D(64, 7, strides=2, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    for _ in range(2):
        y = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
        y = layers.BatchNormalization()(layers.Conv2D(64, 3, padding="same")(y))
        x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(1000, activation="softmax")(x))


def lstm(keras, timesteps):
    inputs = keras.Input((timesteps, 8))
    x = keras.layers.LSTM(32)(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def auto(model, batch_size=32, steps_per_epoch=1000, sample_shape=()):
    return steps_per_execution(
        "auto", model, batch_size, steps_per_epoch, distributed=False, sample_shape=sample_shape
    )


def test_a_small_cnn_runs_many_steps_per_call_a_resnet_one(keras):
    cnn = auto(small_cnn(keras))
    assert 8 <= cnn <= MAX_STEPS, cnn  # measured: 16 steps per call train ~30 % faster
    assert auto(resnet_stem(keras)) == 1
    # a bigger batch is more work per step: fewer steps per call
    assert auto(small_cnn(keras), batch_size=256) < cnn


def test_long_sequences_make_few_steps_per_call(keras):
    short, long = auto(lstm(keras, 10)), auto(lstm(keras, 400))
    assert long == 1 and short > 1
    assert auto(lstm(keras, 50)) <= 8  # measured here: ~5-6 ms a step at batch 32
    # sequences of any length (the adding preset): the data says how long they are
    open_ended = lstm(keras, None)
    assert auto(open_ended, sample_shape=(400, 8)) == 1
    assert auto(open_ended, sample_shape=(10, 8)) == short


def test_models_inside_the_model_count(keras):
    inner = small_cnn(keras)
    inputs = keras.Input((28, 28, 1))
    outer = keras.Model(inputs, keras.layers.Dense(3)(inner(inputs)))
    assert step_cost(outer).macs > step_cost(inner).macs > 0
    assert step_cost(outer).layers == step_cost(inner).layers + 1


def test_n_is_capped_by_the_epoch_and_the_maximum():
    assert auto_steps_per_execution(0.01, steps_per_epoch=5) == 5
    assert auto_steps_per_execution(0.01, steps_per_epoch=10_000) == MAX_STEPS
    assert auto_steps_per_execution(TARGET_MS * 3, steps_per_epoch=100) == 1
    assert auto_steps_per_execution(float("nan"), steps_per_epoch=100) == 1


def test_a_number_is_kept_and_a_strategy_steps_one_at_a_time(keras):
    model = small_cnn(keras)
    assert steps_per_execution(4, model, 32, 100, distributed=False) == 4
    assert steps_per_execution(4, model, 32, 100, distributed=True) == 4
    assert steps_per_execution("auto", model, 32, 100, distributed=True) == 1
    assert steps_per_execution(None, model, 32, 100, distributed=False) > 1

    class Unreadable:  # a model the estimate cannot read trains one step per call
        @property
        def layers(self):
            raise RuntimeError("no layers here")

    assert steps_per_execution("auto", Unreadable(), 32, 100, distributed=False) == 1


def test_the_log_says_which_n_auto_chose():
    assert per_call_text({"steps_per_execution": 16, "steps_per_execution_auto": True}) == (
        "auto: 16 steps per call"
    )
    assert per_call_text({"steps_per_execution": 1, "steps_per_execution_auto": True}) == (
        "auto: 1 step per call"
    )
    assert per_call_text({"steps_per_execution": 4}) == "4 steps per call"
    assert per_call_text({"steps_per_execution": 1}) == ""


def test_a_run_with_auto_counts_every_step_and_still_stops(tmp_path):
    """120 training rows, batch 1: 120 steps an epoch, N = 32 calls end at steps 32, 64,
    96 and 120. Progress and samples/s count steps, not calls; a stop asked during
    epoch 2 ends the run at the next call."""
    controls = Controls()
    events: list[dict] = []

    def emit(event):
        events.append(event)
        if event["event"] == "batch" and event["epoch"] == 2:
            controls.stop.set()  # seen when the next call begins

    final = run_training(
        dense_project(training={"batch_size": 1, "epochs": 40}),
        tmp_path / "run",
        emit=emit,
        controls=controls,
    )
    assert final["event"] == "done" and final["stopped"] is True, final
    assert 1 <= final["epochs_done"] <= 2
    started = next(e for e in events if e["event"] == "started")
    assert started["steps_per_execution"] == MAX_STEPS
    assert started["steps_per_execution_auto"] is True
    logged = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").open()]
    assert logged[0]["event"] == "started" and logged[0]["steps_per_execution"] == MAX_STEPS
    batches = [e for e in events if e["event"] == "batch"]
    assert batches and {b["step"] for b in batches} <= {32, 64, 96, 120}
    assert all(b["steps"] == 120 for b in batches)
    # samples/s as the batch events say it, against 120 samples over each epoch's time
    epochs = [e for e in events if e["event"] == "epoch" and not e.get("partial")]
    per_epoch = np.median([120 / e["time_s"] for e in epochs])
    said = np.median([b["samples_per_s"] for b in batches[1:] or batches])
    assert per_epoch / 3 < said < per_epoch * 3, (said, per_epoch)
