"""Training health (issue 19): weight histograms, gradient norms, dead ReLU units and
their warnings, written per epoch to ``health.jsonl`` and sent as ``health`` events.

The presets residual-mlp and plain-deep-mlp (31 Dense layers) train 2 epochs on a
slice of digits; the broken one has its hidden activations switched to sigmoid.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from engine.model.project import load_project
from engine.train.config import training_problems
from engine.train.fit import run_training
from engine.train.health import BINS, HEALTH_FILE, health_warnings, histogram, read_health
from presets import presets_dir


def preset(name: str, epochs: int = 2) -> dict:
    project = load_project(presets_dir() / f"{name}.json").to_dict()
    project["training"].update(epochs=epochs, batch_size=64)
    return project


def train(project: dict, run_dir) -> list[dict]:
    events: list[dict] = []
    final = run_training(project, run_dir, emit=events.append)
    assert final["event"] == "done", final
    return events


def sigmoid_everywhere(project: dict) -> dict:
    project = copy.deepcopy(project)
    for node in project["graph"]["nodes"]:
        if node["type"] == "Dense" and node["params"].get("activation") == "relu":
            node["params"]["activation"] = "sigmoid"
    return project


def test_the_health_option_is_checked():
    assert training_problems({"health": False}) == []
    assert training_problems({"health": "yes"}) == ["health must be true or false; got 'yes'"]


def test_histogram_has_fixed_bins():
    h = histogram(np.arange(100.0))
    assert len(h["counts"]) == BINS and sum(h["counts"]) == 100
    assert (h["lo"], h["hi"]) == (0.0, 99.0)
    assert sum(histogram(np.zeros(0))["counts"]) == 0


def probe_preset(project: dict, run_dir) -> list[dict]:
    """Two epochs of a preset's model on 256 digits with the health probe (no run).

    Eagerly: tracing the train step of a 31-layer model costs more than its 8 steps."""
    import keras

    from engine.data.dataset import load_data
    from engine.train.fit import build_snapshot_model
    from engine.train.health import health_callback

    keras.utils.set_random_seed(0)
    ds = load_data(project["data"], None, (8, 8, 1))
    x, y = ds.x_train[:256], ds.y_train[:256]
    model = build_snapshot_model(project)
    model.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    run_dir.mkdir()
    events: list[dict] = []
    probe = health_callback(run_dir, events.append, x, y, model.loss)
    model.fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=[probe])
    return events


@pytest.fixture(scope="module")
def deep_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("health")
    plain = sigmoid_everywhere(preset("plain-deep-mlp"))
    residual = preset("residual-mlp")
    return {
        "plain": (root / "plain", probe_preset(plain, root / "plain")),
        "residual": (root / "residual", probe_preset(residual, root / "residual")),
    }


def test_vanishing_gradients_are_named_on_a_deep_sigmoid_mlp_not_on_the_residual_one(
    deep_runs,
):
    plain_dir, plain_events = deep_runs["plain"]
    residual_dir, residual_events = deep_runs["residual"]
    plain = read_health(plain_dir)
    residual = read_health(residual_dir)
    assert [r["epoch"] for r in plain][-1] == 2 and residual[-1]["epoch"] == 2
    words = " ".join(plain[-1]["warnings"])
    assert "vanishing gradients" in words and "residual connections" in words, words
    assert not any("vanishing" in w for r in residual for w in r["warnings"])
    # the same records reach the window as events (without the histograms)
    sent = [e for e in plain_events if e["event"] == "health"]
    assert sent and "vanishing gradients" in " ".join(sent[-1]["warnings"])
    assert "weight_hist" not in sent[-1]["layers"][0]


def test_every_layer_with_weights_has_a_histogram_and_a_gradient_norm(deep_runs):
    run_dir, _ = deep_runs["residual"]
    lines = (run_dir / HEALTH_FILE).read_text().splitlines()
    last = json.loads(lines[-1])
    dense = [r for r in last["layers"] if r["weight_hist"] is not None]
    assert len(dense) == 32  # stem, 30 block layers, output
    for row in dense:
        assert len(row["weight_hist"]["counts"]) == BINS
        assert row["gradient_norm"] is not None and row["gradient_norm"] > 0
        assert row["weight_norm"] > 0
    relu = [r for r in last["layers"] if r["dead_fraction"] is not None]
    assert any(r["name"] == "block1_relu" for r in relu)  # an Activation layer counts too
    assert all(0.0 <= r["dead_fraction"] <= 1.0 for r in relu)


def test_dead_relu_units_are_counted_and_warned_about(tmp_path):
    import keras

    from engine.train.health import health_callback

    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    alive = keras.layers.Dense(16, activation="relu", name="alive")(inputs)
    both = keras.layers.Concatenate()([hidden, alive])
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="out")(both))
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.get_layer("hidden").bias.assign(np.full(16, -100.0, "float32"))  # broken start
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 2, 64)
    events: list[dict] = []
    probe = health_callback(tmp_path, events.append, x, y, model.loss)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[probe])
    last = read_health(tmp_path)[-1]
    rows = {r["name"]: r for r in last["layers"]}
    assert rows["hidden"]["dead_fraction"] == 1.0
    assert rows["alive"]["dead_fraction"] < 0.5
    assert rows["out"]["dead_fraction"] is None
    assert any("dying ReLU" in w and "hidden" in w for w in last["warnings"])
    assert not any("alive" in w for w in last["warnings"])
    assert events[-1]["event"] == "health"


@pytest.mark.parametrize("on", [True, False])
def test_a_run_writes_health_unless_turned_off(tmp_path, on):
    project = preset("mlp", epochs=2)
    project["training"].update(health=on, tensorboard=False)
    events = train(project, tmp_path / "run")
    assert (tmp_path / "run" / HEALTH_FILE).exists() is on
    sent = [e for e in events if e["event"] == "health"]
    if on:  # the last epoch is always probed (others while the cost stays within 5 %)
        assert sent[-1]["epoch"] == 2
        assert read_health(tmp_path / "run")[-1]["epoch"] == 2
    else:
        assert sent == []


def test_the_first_epoch_is_probed_when_the_whole_run_can_afford_it(tmp_path):
    """A long run of short epochs shows health from its first epoch: the probe is
    taken when it fits in the budget of the whole run, not only of the epochs so far."""
    import keras

    from engine.train.health import MAX_SHARE, health_callback

    x, y = np.zeros((8, 4), "float32"), np.zeros(8, "int64")
    probe = health_callback(tmp_path, lambda e: None, x, y, keras.losses.get("mse"))
    probe.trained, probe.probe_time = 1.0, 0.5  # a 1 s first epoch, a 0.5 s probe
    probe.params = {"epochs": int(0.5 / (MAX_SHARE * 1.0)) + 1}  # 13 epochs: affordable
    assert probe._first_affordable(0)
    probe.params = {"epochs": 2}  # 2 s of training cannot pay 0.5 s
    assert not probe._first_affordable(0)
    probe.params, probe.probed = {"epochs": 100}, 0  # only the first epoch jumps the queue
    assert not probe._first_affordable(1)


def test_warnings_in_plain_words():
    rows = [
        {"name": f"d{i}", "gradient_norm": g, "dead_fraction": None}
        for i, g in enumerate([1e-7, 1e-6, 1e-3, 1e-2])
    ]
    (warning,) = health_warnings(rows)
    assert warning.startswith("gradients in the first layers are 10,000x smaller than in the last")
    rows = [{"name": f"d{i}", "gradient_norm": 1.0, "dead_fraction": None} for i in range(4)]
    assert health_warnings(rows) == []


def test_a_failing_probe_never_ends_the_run(tmp_path):
    import keras

    from engine.train.health import health_callback

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.zeros((8, 4), "float32"), np.zeros(8, int)
    events: list[dict] = []

    def broken_loss(y_true, y_pred):
        raise RuntimeError("no loss today")

    probe = health_callback(tmp_path, events.append, x, y, broken_loss)
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[probe])
    assert len(history.history["loss"]) == 2
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert warnings == [
        "training health is not collected: the probe failed (RuntimeError: no loss today)"
    ]
