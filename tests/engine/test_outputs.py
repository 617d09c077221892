"""A classifier's output layer against its cross-entropy loss (engine/train/outputs.py):
a Dense layer without softmax trains to a flat ln(classes) loss, which Keras does not
say; LayerLab says it, in the window (with a fix) and at a run's start."""

from __future__ import annotations

import pytest

from engine.model.project import Project
from engine.train.outputs import output_activation_problem
from tests.engine.test_training import dense_project, train


def problem(output: dict, loss: object = "sparse_categorical_crossentropy", k: int = 3, **kw):
    project = dense_project(training={"loss": loss}, output=output)
    graph = Project.from_dict(project).graph
    return output_activation_problem(
        graph, project["training"], kw.get("task", "classification"), k
    )


def test_a_linear_output_before_cross_entropy_is_found_with_its_fix():
    found = problem({"units": 3})
    assert found.node == "out" and found.activation == "softmax"
    assert "'out' has no softmax" in found.message
    assert "sparse_categorical_crossentropy expects probabilities" in found.message
    binary = problem({"units": 1, "activation": "relu"}, "binary_crossentropy", k=2)
    assert binary.activation == "sigmoid" and "has no sigmoid" in binary.message


@pytest.mark.parametrize(
    ("output", "loss", "task"),
    [
        (
            {"units": 3, "activation": "softmax"},
            "sparse_categorical_crossentropy",
            "classification",
        ),
        (
            {"units": 3},
            {"type": "sparse_categorical_crossentropy", "from_logits": True},
            "classification",
        ),
        ({"units": 3}, "mse", "regression"),
        ({"units": 1, "activation": "sigmoid"}, "binary_crossentropy", "classification"),
    ],
)
def test_outputs_that_suit_their_loss_are_left_alone(output, loss, task):
    assert problem(output, loss, task=task) is None


def test_a_softmax_before_a_loss_that_takes_logits_is_found_without_a_fix():
    loss = {"type": "sparse_categorical_crossentropy", "from_logits": True}
    found = problem({"units": 3, "activation": "softmax"}, loss)
    assert found.activation is None and "squashed twice" in found.message


def test_a_regression_ending_in_softmax_is_found_with_its_fix():
    found = problem({"units": 1, "activation": "softmax"}, "mse", task="regression")
    assert found.node == "out" and found.activation == "linear"
    assert "regression" in found.message and "always 1" in found.message
    assert problem({"units": 1, "activation": "sigmoid"}, "mse", task="regression") is None
    project = dense_project(output={"units": 1})  # a Softmax layer after it: no param to set
    project["graph"]["nodes"].append({"id": "sm", "type": "Softmax", "params": {}})
    project["graph"]["edges"].append({"source": "out", "target": "sm", "port": 0})
    graph = Project.from_dict(project).graph
    found = output_activation_problem(graph, {"loss": "mse"}, "regression", None)
    assert found.node == "sm" and found.activation is None


def test_layers_that_do_not_say_their_activation_are_not_guessed():
    project = dense_project(output={"units": 3})
    nodes, edges = project["graph"]["nodes"], project["graph"]["edges"]
    for kind, params in (
        ("Softmax", {}),
        ("Activation", {"activation": "softmax"}),
        ("Dropout", {"rate": 0.1}),
    ):
        nodes[3:] = [{"id": "last", "type": kind, "params": params, "position": [0, 300]}]
        edges[2:] = [{"source": "out", "target": "last", "port": 0}]
        graph = Project.from_dict(project).graph
        assert output_activation_problem(graph, project["training"], "classification", 3) is None


def test_a_run_with_a_linear_output_warns_at_its_start(tmp_path):
    final, events = train(
        dense_project(output={"units": 3}, training={"epochs": 1}), tmp_path / "run"
    )
    assert final["event"] == "done"
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert any("'out' has no softmax" in w for w in warnings), warnings
    _, events = train(dense_project(training={"epochs": 1}), tmp_path / "fine")
    assert not any("softmax" in e.get("message", "") for e in events if e["event"] == "warning")
