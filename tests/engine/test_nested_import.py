"""Nested models (a model used as a layer) import as an equivalent flat graph (issue 16).

The nested model's layers become nodes of the outer graph, ids prefixed with its name
and ``__``, with the same weights; a nested model called twice (shared) is refused.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.analysis.shapes import ShapeInference
from engine.build.builder import build_model
from engine.build.weights import load_start_weights
from engine.codegen.script import model_code
from engine.io.importing.read import ModelImportError
from engine.io.importing.rebuild import import_model_with_notes

keras = pytest.importorskip("keras")
layers = keras.layers


def round_trip(model, tmp_path, fmt="keras"):
    """Save, import with weights, rebuild: (project, notes, rebuilt model)."""
    path = tmp_path / f"m.{fmt}"
    model.save(path)
    project, notes = import_model_with_notes(path, weights_out=tmp_path / "m.weights.h5")
    project.path = tmp_path / "m.json"
    rebuilt = build_model(project)
    load_start_weights(rebuilt, project)
    return project, notes, rebuilt


def assert_same(model, rebuilt, project):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((3, *t.shape[1:])).astype("float32") for t in model.inputs]
    xs = xs[0] if len(xs) == 1 else xs
    np.testing.assert_allclose(np.asarray(rebuilt(xs)), np.asarray(model(xs)), atol=1e-5)
    assert rebuilt.count_params() == model.count_params()
    totals = ShapeInference(project.graph).totals()  # what `validate` reports
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (totals.total, totals.trainable) == (model.count_params(), trainable)
    # the generated script builds the same model
    scope: dict = {"keras": keras, "layers": layers}
    exec(model_code(project.graph, project.name), scope)
    again = scope["build_model"]()
    again.set_weights(rebuilt.get_weights())
    np.testing.assert_allclose(np.asarray(again(xs)), np.asarray(model(xs)), atol=1e-5)


def convnext_like_block(channels, name):
    """A ConvNeXt/ViT-style inner Sequential: depthwise conv, norm, MLP."""
    return keras.Sequential(
        [
            keras.Input((8, 8, channels)),
            layers.DepthwiseConv2D(3, padding="same", name="dw"),
            layers.LayerNormalization(epsilon=1e-6, name="norm"),
            layers.Dense(2 * channels, activation="gelu", name="pw1"),
            layers.Dense(channels, name="pw2"),
        ],
        name=name,
    )


def test_sequential_inside_functional(tmp_path):
    x = keras.Input((8, 8, 3), name="image")
    h = layers.Conv2D(4, 1, name="stem")(x)
    h = layers.Add(name="residual")([h, convnext_like_block(4, "block1")(h)])
    out = layers.Dense(2, name="head")(layers.GlobalAveragePooling2D(name="gap")(h))
    model = keras.Model(x, out, name="convnext_like")
    project, notes, rebuilt = round_trip(model, tmp_path)
    assert list(project.graph.nodes) == [
        "image",
        "stem",
        "block1__dw",
        "block1__norm",
        "block1__pw1",
        "block1__pw2",
        "residual",
        "gap",
        "head",
    ]
    assert any("'block1' (Sequential): a nested model" in n for n in notes)
    assert_same(model, rebuilt, project)


def test_functional_inside_functional_with_two_inputs(tmp_path):
    a = keras.Input((5,), name="a")
    b = keras.Input((3,), name="b")
    inner_out = layers.Dense(4, name="mix")(
        layers.Concatenate(name="cat")([layers.Dense(2, name="da")(a), b])
    )
    inner = keras.Model([a, b], inner_out, name="encoder")
    x = keras.Input((5,), name="x")
    y = keras.Input((3,), name="y")
    out = layers.Dense(1, name="head")(inner([x, y]))
    model = keras.Model([x, y], out, name="outer")
    project, _notes, rebuilt = round_trip(model, tmp_path)
    assert {"encoder__da", "encoder__cat", "encoder__mix"} <= set(project.graph.nodes)
    assert_same(model, rebuilt, project)


def test_nested_twice_prefixes_both_names_and_keeps_frozen_weights(tmp_path):
    core = keras.Sequential(
        [keras.Input((6,)), layers.Dense(5, name="fc"), layers.BatchNormalization(name="bn")],
        name="core",
    )
    x = keras.Input((6,), name="mid_in")
    middle = keras.Model(x, layers.Dense(4, name="proj")(core(x)), name="middle")
    middle.trainable = False  # a frozen backbone, as in transfer learning
    inp = keras.Input((6,), name="inp")
    model = keras.Model(inp, layers.Dense(2, name="head")(middle(inp)), name="outer")
    # non-trivial batch-norm statistics, so copying them matters
    model.get_layer("middle").get_layer("core").get_layer("bn").moving_mean.assign(np.ones(5))
    project, _notes, rebuilt = round_trip(model, tmp_path, fmt="h5")
    assert {"middle__core__fc", "middle__core__bn", "middle__proj"} <= set(project.graph.nodes)
    assert project.graph.nodes["middle__core__fc"].trainable is False
    assert project.graph.nodes["head"].trainable is True
    assert_same(model, rebuilt, project)


def test_sequential_holding_a_sequential(tmp_path):
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(3, name="d1")], name="inner")
    model = keras.Sequential([keras.Input((4,)), inner, layers.Dense(2, name="d2")], name="seq")
    project, _notes, rebuilt = round_trip(model, tmp_path)
    assert project.name == "seq"
    assert [n for n in project.graph.nodes if n != next(iter(project.graph.nodes))] == [
        "inner__d1",
        "d2",
    ]
    assert_same(model, rebuilt, project)


def test_shared_nested_model_is_refused_naming_it(tmp_path):
    """The Siamese network: one embedding model called on both images."""
    embedding = keras.Sequential([keras.Input((6,)), layers.Dense(4, name="fc")], name="embedding")
    left = keras.Input((6,), name="left")
    right = keras.Input((6,), name="right")
    distance = layers.Subtract(name="diff")([embedding(left), embedding(right)])
    model = keras.Model([left, right], layers.Dense(1, name="out")(distance), name="siamese")
    model.save(tmp_path / "siamese.keras")
    with pytest.raises(ModelImportError) as err:
        import_model_with_notes(tmp_path / "siamese.keras")
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'siamese.keras'}: model 'embedding' (Sequential)")
    assert "model 'embedding' (Sequential) is a nested model called 2 times" in text
    assert "its own weights" in text


def test_unknown_layer_inside_a_nested_model_is_named(tmp_path):
    inner = keras.Sequential(
        [keras.Input((4,)), layers.Dense(3, name="fc"), layers.Lambda(lambda t: t * 2, name="x2")],
        name="inner",
    )
    x = keras.Input((4,))
    model = keras.Model(x, inner(x), name="outer")
    model.save(tmp_path / "lam.keras")
    with pytest.raises(ModelImportError, match=r"'x2' \(Lambda\): Lambda layers hold Python"):
        import_model_with_notes(tmp_path / "lam.keras")


def test_frozen_base_called_with_training_false_imports(tmp_path):
    """Transfer learning as keras.io writes it: base.trainable = False;
    x = base(inputs, training=False)."""
    base = keras.Sequential(
        [keras.Input((6,)), layers.Dense(5, name="fc"), layers.BatchNormalization(name="bn")],
        name="base",
    )
    base.trainable = False
    inp = keras.Input((6,), name="inp")
    model = keras.Model(inp, layers.Dense(2, name="head")(base(inp, training=False)), name="tl")
    project, _notes, rebuilt = round_trip(model, tmp_path)
    assert project.graph.nodes["base__bn"].trainable is False
    assert_same(model, rebuilt, project)


def test_trainable_base_called_with_training_false_is_refused(tmp_path):
    base = keras.Sequential(
        [keras.Input((6,)), layers.Dense(5, name="fc"), layers.BatchNormalization(name="bn")],
        name="base",
    )
    inp = keras.Input((6,), name="inp")
    model = keras.Model(inp, layers.Dense(2, name="head")(base(inp, training=False)), name="tl")
    with pytest.raises(ModelImportError, match=r"'base' \(Sequential\) is called with training"):
        import_model_with_notes(model)
