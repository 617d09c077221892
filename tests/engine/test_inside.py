"""See inside the model (issue 19): activations, filters, Grad-CAM and decision
boundaries of a trained model (engine/train/inside.py).

Models are tiny: a conv net on 16x16 noise images where a bright bar marks class 1,
an xor MLP trained through a real run directory. TensorFlow starts once.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.train.fit import run_training
from engine.train.inside import (
    MAX_MAPS,
    MAX_SIDE,
    MAX_VALUES,
    InsideError,
    activations,
    decision_boundary,
    downsample,
    filters,
    grad_cam,
    open_run,
)

SIDE = 16


def bar_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise images; class 1 has a bright 2-pixel horizontal bar at a random row."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.5, (n, SIDE, SIDE, 1)).astype("float32")
    y = np.arange(n) % 2
    rows = rng.integers(1, SIDE - 3, n)
    for i in np.flatnonzero(y == 1):
        x[i, rows[i] : rows[i] + 2, 2 : SIDE - 2, 0] = 1.0
    return x, y, rows


@pytest.fixture(scope="module")
def bar_model():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIDE, SIDE, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.GlobalMaxPooling2D(name="pool")(h)
    out = keras.layers.Dense(2, activation="softmax", name="out")(h)
    model = keras.Model(inputs, out)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    x, y, _ = bar_images(400)
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    return model


def test_activations_equal_a_keras_sub_models_outputs(bar_model):
    import keras

    x, _, _ = bar_images(4, seed=1)
    sample = x[1:2]
    rows = activations(bar_model, sample)
    assert [r["name"] for r in rows] == [layer.name for layer in bar_model.layers]
    for row in rows[1:]:
        layer = bar_model.get_layer(row["name"])
        expected = np.asarray(keras.Model(bar_model.inputs[0], layer.output)(sample))[0]
        assert row["output_shape"] == list(expected.shape)
        np.testing.assert_allclose(row["values"], downsample(expected), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(row["mean"], expected.mean(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(row["std"], expected.std(), rtol=1e-5, atol=1e-6)
        assert row["zero_fraction"] == pytest.approx((expected == 0).mean())
    conv = rows[1]
    assert conv["kind"] == "maps" and conv["values"].shape == (8, SIDE, SIDE)
    # without downsampling the maps are the channels themselves
    expected = np.asarray(keras.Model(bar_model.inputs[0], bar_model.layers[1].output)(sample))[0]
    np.testing.assert_allclose(conv["values"][3], expected[:, :, 3], rtol=1e-5, atol=1e-6)
    assert rows[-1]["kind"] == "vector" and rows[-1]["values"].shape == (2,)


def test_large_outputs_are_downsampled_for_transport():
    maps = downsample(np.ones((200, 130, 40)))
    assert maps.shape == (MAX_MAPS, MAX_SIDE, MAX_SIDE) and np.allclose(maps, 1)
    assert downsample(np.arange(5000.0)).shape == (MAX_VALUES,)
    assert downsample(np.arange(5000.0)).mean() == pytest.approx(2499.5, rel=1e-3)
    assert downsample(np.ones((300, 7))).shape == (MAX_SIDE, 7)


def test_filters_of_the_first_conv_are_normalised_images(bar_model):
    name, images = filters(bar_model)
    assert name == "conv1" and images.shape == (8, 3, 3)
    assert images.min() == 0.0 and images.max() == pytest.approx(1.0)


def test_grad_cam_peaks_on_the_bar(bar_model):
    x, y, rows = bar_images(40, seed=2)
    hits = 0
    checked = 0
    for i in np.flatnonzero(y == 1)[:10]:
        cam = grad_cam(bar_model, x[i : i + 1], class_index=1)
        assert cam["layer"] == "conv2" and cam["heat"].shape == (SIDE, SIDE)
        peak_row, _ = np.unravel_index(np.argmax(cam["heat"]), cam["heat"].shape)
        checked += 1
        hits += rows[i] - 1 <= peak_row <= rows[i] + 2
    assert hits >= 0.8 * checked, (hits, checked)


def test_grad_cam_and_filters_say_none_without_a_convolution():
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert grad_cam(model, np.zeros((1, 4), "float32")) is None
    assert filters(model) is None


def xor_project(epochs: int = 40) -> dict:
    return {
        "format": "layerlab",
        "version": 1,
        "name": "xor",
        "graph": {
            "nodes": [
                {"id": "input", "type": "Input", "params": {"shape": [2]}},
                {"id": "hidden", "type": "Dense", "params": {"units": 16, "activation": "tanh"}},
                {"id": "output", "type": "Dense", "params": {"units": 2, "activation": "softmax"}},
            ],
            "edges": [
                {"source": "input", "target": "hidden", "port": 0},
                {"source": "hidden", "target": "output", "port": 0},
            ],
        },
        "data": {"source": "builtin:xor", "samples": 400, "validation_split": 0.2, "seed": 0},
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": 0.05},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "batch_size": 32,
            "epochs": epochs,
            "seed": 0,
            "tensorboard": False,
        },
    }


@pytest.fixture(scope="module")
def xor_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("xor") / "run"
    final = run_training(xor_project(), run_dir)
    assert final["event"] == "done", final
    return run_dir


def test_decision_boundary_of_a_trained_xor_model_classifies_the_quadrants(xor_run):
    run = open_run(xor_run)
    points, _ = run.plane()
    field = decision_boundary(run.model, points, grid=64)
    assert field["classes"].shape == (64, 64)
    for qx, qy in ((0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6)):
        px, py = run.data.transform(np.array([[qx, qy]]))[0]  # raw -> the model's plane
        col = int(np.argmin(abs(field["x"] - px)))
        row = int(np.argmin(abs(field["y"] - py)))
        assert field["classes"][row, col] == int(qx * qy < 0), (qx, qy)
    assert decision_boundary(run.model, np.zeros((5, 3))) is None


def test_a_run_without_a_model_is_refused_by_name(tmp_path):
    with pytest.raises(InsideError, match="no such run directory"):
        open_run(tmp_path / "nothing")
    (tmp_path / "run").mkdir()
    with pytest.raises(InsideError, match="model.keras: not found"):
        open_run(tmp_path / "run")


def test_a_sample_out_of_range_is_refused_by_name(xor_run):
    run = open_run(xor_run)
    with pytest.raises(InsideError, match="--sample 999 is out of range: the validation split"):
        run.sample(999)
    assert run.sample(0).shape == (1, 2)
