"""keras.applications networks with layers Keras keeps private import BY NAME as a
Backbone node and their top (ConvNeXtTiny, InceptionResNetV2), with the source's
counts and predictions; a nested model holding keras.ops operations flattens (issue 16).
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.analysis.shapes import ShapeInference
from engine.build.builder import build_model
from engine.build.weights import load_start_weights
from engine.io.expand import ExpandError, expand_backbone
from engine.io.importing.read import application_model
from engine.io.importing.rebuild import import_application_with_notes, import_model_with_notes
from engine.model.graph import Edge, Graph, Node

keras = pytest.importorskip("keras")
layers = keras.layers


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_nested_model_with_keras_operations_flattens_with_its_weights(tmp_path):
    # today's main: AttributeError: 'Add' object has no attribute 'set_weights'
    x = keras.Input((4,))
    inner = keras.Model(x, layers.Dense(4, name="d")(x) + x, name="block")  # an Add operation
    inp = keras.Input((4,), name="inp")
    model = keras.Model(inp, layers.Dense(2, name="out")(inner(inp)), name="outer")
    model.save(tmp_path / "m.keras")
    project, notes = import_model_with_notes(
        tmp_path / "m.keras", weights_out=tmp_path / "m.weights.h5"
    )
    project.path = tmp_path / "m.json"
    rebuilt = build_model(project)
    load_start_weights(rebuilt, project)
    xs = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(rebuilt(xs)), np.asarray(model(xs)), atol=1e-5)
    assert "Operation" in {n.type for n in project.graph.nodes.values()}
    assert any("'block'" in n for n in notes)


@pytest.mark.parametrize(
    ("app", "size", "private"),
    [("ConvNeXtTiny", 32, "LayerScale"), ("InceptionResNetV2", 75, "CustomScaleLayer")],
)
def test_application_with_private_layers_imports_by_name_as_a_backbone(
    tmp_path, app, size, private
):
    # today's main: ConvNeXtTiny crashes (AttributeError), InceptionResNetV2 is refused
    shape = (size, size, 3)
    source = application_model(app, shape, classes=5)
    source.save_weights(tmp_path / "source.weights.h5")
    project, notes = import_application_with_notes(
        app,
        shape,
        classes=5,
        weights=tmp_path / "source.weights.h5",
        weights_out=tmp_path / "p.weights.h5",
    )
    types = [n.type for n in project.graph.nodes.values()]
    assert types == ["Input", "Backbone", "Dense"]
    backbone = project.graph.nodes["backbone"]
    assert backbone.params == {"application": app, "weights": None, "pooling": "avg"}
    assert any(
        f"{app} holds layers private to keras.applications ({private}" in n
        and "one Backbone node" in n
        for n in notes
    )
    totals = ShapeInference(project.graph).totals()  # what `validate` reports
    assert (totals.total, totals.trainable) == (source.count_params(), _trainable(source))
    project.path = tmp_path / "p.json"
    rebuilt = build_model(project)
    load_start_weights(rebuilt, project)
    assert rebuilt.count_params() == source.count_params()
    assert _trainable(rebuilt) == _trainable(source)
    xs = np.random.default_rng(0).uniform(0, 255, (2, *shape)).astype("float32")
    np.testing.assert_allclose(np.asarray(rebuilt(xs)), np.asarray(source(xs)), atol=1e-5)


def test_expanding_a_convnext_backbone_is_a_clear_refusal():
    # today's main: the importer's AttributeError became the message
    graph = Graph()
    graph.nodes["image"] = Node("image", "Input", {"shape": [32, 32, 3]})
    graph.nodes["base"] = Node("base", "Backbone", {"application": "ConvNeXtTiny", "weights": None})
    graph.edges.append(Edge("image", "base", 0))
    with pytest.raises(ExpandError) as err:
        expand_backbone(graph, "base", (32, 32, 3))
    message = str(err.value)
    assert "LayerScale" in message
    assert "set_weights" not in message
