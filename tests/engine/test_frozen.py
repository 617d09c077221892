"""Frozen layers (issue 14): the node's "trainable" key, from a .keras file to training.

One tiny "pretrained" model (Input(4) -> Dense(8) -> Dense(8) -> Dense(3) on iris) is
saved by the test with two layers frozen; it is imported, validated, trained for two
epochs, and written as a script, and each step must keep the freeze.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.analysis.validation import validate
from engine.build.builder import build_model
from engine.codegen.script import generate
from engine.io.importing.rebuild import import_model
from engine.model.commands import SetTrainable, UndoStack
from engine.model.graph import Graph, Node
from engine.model.project import Project, ProjectError, dumps, load_project, save_project
from engine.train.fit import run_training

FROZEN = ("base_1", "base_2")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> tuple[Path, dict[str, list[np.ndarray]], int, int]:
    """The source .keras file, its weights by layer, and Keras's trainable/non-trainable split."""
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,), name="features")
    x = keras.layers.Dense(8, activation="relu", name="base_1")(inputs)
    x = keras.layers.Dense(8, activation="relu", name="base_2")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs, name="tiny_pretrained")
    for name in FROZEN:
        model.get_layer(name).trainable = False
    path = tmp_path_factory.mktemp("src") / "pretrained.keras"
    model.save(path)
    weights = {layer.name: layer.get_weights() for layer in model.layers}
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert trainable + non_trainable == model.count_params()
    return path, weights, trainable, non_trainable


def imported(pretrained, folder: Path) -> Project:
    path, *_ = pretrained
    project = import_model(path, weights_out=folder / "tiny.weights.h5")
    project.data = {"source": "builtin:iris", "validation_split": 0.2}
    project.training.update(
        {"epochs": 2, "batch_size": 16, "optimizer": {"type": "Adam", "learning_rate": 0.05}}
    )
    save_project(project, folder / "tiny.json")
    return project


def test_import_keeps_trainable_and_validate_counts_match_keras(pretrained, tmp_path, capsys):
    _path, _weights, trainable, non_trainable = pretrained
    project = imported(pretrained, tmp_path)
    frozen = {n.id for n in project.graph.nodes.values() if not n.trainable}
    assert frozen == set(FROZEN)
    saved = json.loads((tmp_path / "tiny.json").read_text())
    by_id = {n["id"]: n for n in saved["graph"]["nodes"]}
    assert by_id["base_1"]["trainable"] is False and by_id["base_2"]["trainable"] is False
    assert "trainable" not in by_id["head"]  # written only when false

    report = validate(project)
    assert report.valid
    assert (report.trainable_params, report.non_trainable_params) == (trainable, non_trainable)
    layers = {d["id"]: d for d in report.to_dict()["layers"]}
    assert layers["base_1"]["trainable"] is False
    assert layers["base_1"]["trainable_params"] == 0
    assert layers["base_1"]["non_trainable_params"] == 4 * 8 + 8
    assert layers["head"]["trainable"] is True and layers["head"]["trainable_params"] == 8 * 3 + 3

    # The command line says the same, in text and in JSON.
    from engine.cli.main import main

    assert main(["validate", str(tmp_path / "tiny.json"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["trainable_params"], d["non_trainable_params"]) == (trainable, non_trainable)
    assert main(["validate", str(tmp_path / "tiny.json")]) == 0
    text = capsys.readouterr().out
    assert f"Trainable params: {trainable:,}" in text
    assert f"Non-trainable params: {non_trainable:,}" in text
    assert "base_1 (Dense) frozen" in text and "head (Dense) frozen" not in text


def test_built_model_is_frozen_where_the_project_says(pretrained, tmp_path):
    project = imported(pretrained, tmp_path)
    model = build_model(project)
    assert {layer.name: layer.trainable for layer in model.layers if layer.weights} == {
        "base_1": False,
        "base_2": False,
        "head": True,
    }


def test_training_leaves_frozen_weights_bitwise_equal(pretrained, tmp_path):
    import keras

    _path, weights, *_ = pretrained
    project = imported(pretrained, tmp_path)
    final = run_training(project.to_dict(), tmp_path / "run", base_dir=tmp_path)
    assert final["event"] == "done", final
    trained = keras.models.load_model(tmp_path / "run" / "model.keras")
    for name in FROZEN:
        for before, after in zip(weights[name], trained.get_layer(name).get_weights(), strict=True):
            assert np.array_equal(before, after), f"{name} changed in training"
    head_before, head_after = weights["head"], trained.get_layer("head").get_weights()
    assert not np.array_equal(head_before[0], head_after[0]), "the trainable head did not learn"


def test_generated_script_keeps_the_freeze(pretrained, tmp_path):
    project = imported(pretrained, tmp_path)
    script = tmp_path / "train_tiny.py"
    script.write_text(generate(project))
    # the script run as a module in this process (its main() does not run): no second
    # TensorFlow start; test_codegen runs a generated script end to end in a subprocess
    namespace = {"__name__": "train_tiny", "__file__": str(script)}
    exec(compile(script.read_text(), str(script), "exec"), namespace)
    model = namespace["build_model"]()
    assert {layer.name: layer.trainable for layer in model.layers if layer.weights} == {
        "base_1": False,
        "base_2": False,
        "head": True,
    }
    assert [len(model.trainable_weights), len(model.non_trainable_weights)] == [2, 4]


# ----------------------------------------------------------------- the project file


def small_graph() -> Graph:
    g = Graph()
    g.nodes["x"] = Node("x", "Input", {"shape": [4]})
    g.nodes["a"] = Node("a", "Dense", {"units": 5})
    g.nodes["b"] = Node("b", "BatchNormalization", {})
    g.nodes["c"] = Node("c", "Dense", {"units": 2})
    from engine.model.graph import Edge

    g.edges = [Edge("x", "a"), Edge("a", "b"), Edge("b", "c")]
    return g


def test_project_round_trips_the_key(tmp_path):
    project = Project(name="frozen", graph=small_graph())
    project.graph.nodes["a"].trainable = False
    save_project(project, tmp_path / "p.json")
    again = load_project(tmp_path / "p.json")
    assert [n.trainable for n in again.graph.nodes.values()] == [True, False, True, True]
    assert dumps(again) == dumps(project)
    assert '"trainable": false' in (tmp_path / "p.json").read_text()
    assert (tmp_path / "p.json").read_text().count("trainable") == 1


@pytest.mark.parametrize("value", ["false", 0, None, [False]])
def test_a_non_bool_trainable_is_refused_by_name(tmp_path, value):
    d = Project(name="bad", graph=small_graph()).to_dict()
    d["graph"]["nodes"][1]["trainable"] = value
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(ProjectError) as err:
        load_project(tmp_path / "bad.json")
    msg = str(err.value)
    assert "bad.json" in msg and "node 'a'" in msg and '"trainable"' in msg
    assert repr(value) in msg


def test_set_trainable_is_one_undo_step_for_many_nodes():
    project = Project(graph=small_graph())
    stack = UndoStack(project)
    seen: list[str] = []
    project.graph.events.params_changed.connect(seen.append)
    stack.push(SetTrainable(["a", "b"], False))
    assert stack.undo_text == "Freeze 2 layers"
    assert project.graph.frozen_ids() == ["a", "b"]
    assert set(seen) == {"a", "b"}
    stack.undo()
    assert project.graph.frozen_ids() == []
    stack.redo()
    assert project.graph.frozen_ids() == ["a", "b"]
    stack.push(SetTrainable("a", True))
    assert stack.undo_text == "Unfreeze 'a'"
    assert project.graph.frozen_ids() == ["b"]
    stack.undo()
    assert project.graph.frozen_ids() == ["a", "b"]


def test_upstream_is_the_node_and_its_ancestors():
    g = small_graph()
    assert g.upstream(["b"]) == {"x", "a", "b"}
    assert g.upstream(["x"]) == {"x"}


def test_shape_inference_follows_a_freeze_incrementally():
    from engine.analysis.shapes import ShapeInference

    g = small_graph()
    inference = ShapeInference(g)
    before = inference.totals()
    g.set_trainable("a", False)
    g.set_trainable("b", False)
    inference.update(["a", "b"])
    after = inference.totals()
    assert after.total == before.total
    # a: 4*5+5 weights; b: gamma and beta become non-trainable too (moving stats already were).
    assert after.trainable == before.trainable - 25 - 10
    assert inference.info["a"].frozen and not inference.info["c"].frozen


def test_a_frozen_batch_normalization_keeps_its_statistics_in_training():
    """Keras 3's rule, which the inspector states: a frozen BatchNormalization runs in
    inference mode, so fitting leaves its moving mean and variance as they were."""
    project = Project(name="bn", graph=small_graph())
    project.graph.nodes["b"].trainable = False
    model = build_model(project)
    model.compile(optimizer="sgd", loss="mse")
    norm = model.get_layer("b")
    before = [w.copy() for w in norm.get_weights()]
    x = np.random.default_rng(0).normal(3.0, 2.0, (64, 4)).astype("float32")
    model.fit(x, np.zeros((64, 2), "float32"), epochs=1, batch_size=16, verbose=0)
    for a, b in zip(before, norm.get_weights(), strict=True):
        assert np.array_equal(a, b)
