"""Try it and the live decision boundary (issue 19): the engine service's ``try_it``
request answers what ``model.predict`` answers on the same preprocessed input, and a
run on two-feature data sends ``boundary`` events whose last field is right.

Runs are tiny (digits: a small dense net, 1 epoch; iris, 1 epoch; xor, 30 epochs of
400 points). TensorFlow starts once.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.service.handlers import Engine
from engine.train.boundary import GRID, boundary_callback, decode
from engine.train.fit import run_training
from engine.train.inside import InsideError, open_run, try_image, try_inputs, try_predict
from tests.engine.test_inside import xor_project


def project(source: dict, shape: list[int], units: int, epochs: int = 1) -> dict:
    nodes = [{"id": "input", "type": "Input", "params": {"shape": shape}}]
    edges = []
    last = "input"
    if len(shape) > 1:
        nodes.append({"id": "flat", "type": "Flatten", "params": {}})
        edges.append({"source": last, "target": "flat", "port": 0})
        last = "flat"
    nodes += [
        {"id": "hidden", "type": "Dense", "params": {"units": 16, "activation": "relu"}},
        {"id": "output", "type": "Dense", "params": {"units": units, "activation": "softmax"}},
    ]
    edges += [
        {"source": last, "target": "hidden", "port": 0},
        {"source": "hidden", "target": "output", "port": 0},
    ]
    return {
        "format": "layerlab",
        "version": 1,
        "name": "try",
        "graph": {"nodes": nodes, "edges": edges},
        "data": {**source, "validation_split": 0.2, "seed": 0},
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": 0.01},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "batch_size": 64,
            "epochs": epochs,
            "seed": 0,
            "tensorboard": False,
            "health": False,
        },
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("try")
    out = {}
    for name, source, shape, units in (
        ("digits", {"source": "builtin:digits"}, [8, 8, 1], 10),
        ("iris", {"source": "builtin:iris"}, [4], 3),
    ):
        final = run_training(project(source, shape, units), root / name)
        assert final["event"] == "done", final
        out[name] = root / name
    return out


def test_a_drawn_digit_is_answered_as_model_predict_answers_it(runs):
    engine = Engine()
    drawn = np.zeros((8, 8), np.float32)
    drawn[1:7, 3:5] = 1.0  # a "1", ink high as the digits source scales it (0..1)
    answer = engine.answer("try_it", {"run_dir": str(runs["digits"]), "x": drawn.tolist()})
    assert answer["kind"] == "draw" and answer["shape"] == [8, 8, 1]
    assert answer["class_names"] == [str(i) for i in range(10)]
    run = open_run(runs["digits"])
    expected = run.model.predict(drawn.reshape(1, 8, 8, 1), verbose=0)[0]
    np.testing.assert_allclose(answer["probabilities"], expected, rtol=1e-4, atol=1e-6)
    assert abs(sum(answer["probabilities"]) - 1) < 1e-4
    # the model is loaded once: the second stroke reuses it
    kept = engine._runs[str(runs["digits"])][1]
    engine.answer("try_it", {"run_dir": str(runs["digits"]), "x": drawn.tolist()})
    assert engine._runs[str(runs["digits"])][1] is kept


def test_typed_features_are_standardised_as_in_training(runs):
    engine = Engine()
    info = engine.answer("try_it", {"run_dir": str(runs["iris"])})
    assert info["kind"] == "table" and len(info["feature_names"]) == 4
    assert "petal length (cm)" in info["feature_names"]
    typed = info["sample"]  # the first validation sample, raw (as a user types it)
    assert 0 < typed[0] < 10  # centimetres, not standardised
    answer = engine.answer("try_it", {"run_dir": str(runs["iris"]), "x": typed})
    run = open_run(runs["iris"])
    x = run.data.transform(np.array([typed], np.float32))
    expected = run.model.predict(x, verbose=0)[0]
    np.testing.assert_allclose(answer["probabilities"], expected, rtol=1e-4, atol=1e-6)
    assert answer["class_names"] == ["setosa", "versicolor", "virginica"]


def test_a_dropped_image_file_is_scaled_like_the_training_images(runs, tmp_path):
    from engine.cli.inspect import png

    picture = np.zeros((32, 32, 3), np.uint8)
    picture[4:28, 12:20] = 255
    path = tmp_path / "one.png"
    path.write_bytes(png(picture))
    run = open_run(runs["digits"])
    raw = try_image(run, path)
    assert raw.shape == (8, 8, 1) and 0 <= raw.min() and raw.max() <= 1 and raw.max() > 0.8
    answer = Engine().answer("try_it", {"run_dir": str(runs["digits"]), "image": str(path)})
    expected = run.model.predict(raw[None], verbose=0)[0]
    np.testing.assert_allclose(answer["probabilities"], expected, rtol=1e-4, atol=1e-6)
    assert np.shape(answer["raw"]) == (8, 8, 1)


def test_bad_try_it_input_is_said_plainly(runs, tmp_path):
    run = open_run(runs["iris"])
    with pytest.raises(InsideError, match="the input has 3 values; the model takes 4"):
        try_predict(run, [1, 2, 3])
    with pytest.raises(InsideError, match="must be a number"):
        try_predict(run, [1, 2, float("nan"), 3])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(Exception, match="bad.png"):
        try_image(open_run(runs["digits"]), bad)
    assert try_inputs(run)["kind"] == "table"


def test_a_run_on_xor_sends_boundary_fields_that_classify_the_quadrants(tmp_path):
    events: list[dict] = []
    final = run_training(xor_project(30), tmp_path / "xor", emit=events.append)
    assert final["event"] == "done", final
    fields = [e for e in events if e["event"] == "boundary"]
    assert len(fields) >= 10  # at least most epochs (the cost is bounded)
    assert fields[-1]["epoch"] == 30 and fields[-1]["step"] is None
    assert "points" in fields[0] and "points" not in fields[-1]
    assert len(json.dumps(fields[-1])) < 8000  # small enough for every epoch
    last = fields[-1]
    classes = decode(last["classes"], GRID)
    xs = np.linspace(*last["x"], GRID)
    ys = np.linspace(*last["y"], GRID)
    run = open_run(tmp_path / "xor")
    for qx, qy in ((0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6)):
        px, py = run.data.transform(np.array([[qx, qy]]))[0]
        row, col = int(np.argmin(abs(ys - py))), int(np.argmin(abs(xs - px)))
        assert classes[row, col] == int(qx * qy < 0), (qx, qy)
    # boundary fields are not written to events.jsonl
    logged = (tmp_path / "xor" / "events.jsonl").read_text()
    assert '"boundary"' not in logged


def test_no_boundary_for_inputs_other_than_two_features():
    assert boundary_callback(lambda e: None, np.zeros((5, 3)), np.zeros(5, int)) is None
    assert boundary_callback(lambda e: None, np.zeros((5, 2)), np.zeros(5, np.float32)) is None


def test_the_drawing_ink_matches_the_training_data(runs, tmp_path):
    from engine.data.dataset import load_data

    assert try_inputs(open_run(runs["digits"]))["ink"] == "light"  # white ink on black
    digits = load_data({"source": "builtin:digits"})
    x = 1.0 - np.asarray(digits.x[:300], np.float32)  # dark digits on white paper
    np.savez(tmp_path / "inverted.npz", x=x, y=digits.y[:300])
    source = {"source": "npz", "path": str(tmp_path / "inverted.npz")}
    final = run_training(project(source, [8, 8, 1], 10), tmp_path / "run")
    assert final["event"] == "done", final
    info = try_inputs(open_run(tmp_path / "run"))
    assert info["kind"] == "draw" and info["ink"] == "dark"
