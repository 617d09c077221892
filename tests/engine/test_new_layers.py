"""The layer types added for issue 16: activation layers, the 3-D family, Conv1DTranspose,
SpatialDropout3D, and ``groups`` on convolutions.

Each one is checked the way a user meets it: validate gives Keras's exact shape and
parameter count, the importer turns a Keras model using it into a project that builds
the same layer (same config, same weights, same predictions), and the generated script
builds the same model again.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from engine.analysis.validation import validate
from engine.build.builder import build_model
from engine.build.weights import load_start_weights
from engine.catalog.checks import caption, check_params
from engine.catalog.table import CATALOG
from engine.codegen.script import model_code
from engine.io.importing.rebuild import import_model
from engine.model.graph import Edge, Graph, Node
from engine.model.project import Project

keras = pytest.importorskip("keras")

NEW_TYPES = (
    "LeakyReLU",
    "PReLU",
    "ELU",
    "Softmax",
    "Conv3D",
    "Conv3DTranspose",
    "Conv1DTranspose",
    "MaxPooling3D",
    "AveragePooling3D",
    "GlobalMaxPooling3D",
    "GlobalAveragePooling3D",
    "UpSampling3D",
    "ZeroPadding3D",
    "Cropping3D",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "ConvLSTM2D",
)

#: (layer type, Keras constructor arguments as a user writes them, input shape).
CASES: list[tuple[str, dict[str, Any], tuple[int, ...]]] = [
    ("LeakyReLU", {"negative_slope": 0.1}, (5,)),
    ("LeakyReLU", {}, (4, 3)),
    ("PReLU", {}, (4, 4, 3)),
    ("PReLU", {"shared_axes": [1, 2]}, (4, 4, 3)),
    ("ELU", {"alpha": 0.5}, (6,)),
    ("Softmax", {"axis": 1}, (3, 4)),
    ("Conv3D", {"filters": 4, "kernel_size": 3}, (5, 5, 5, 2)),
    ("Conv3D", {"filters": 4, "kernel_size": 2, "strides": 2, "padding": "same"}, (5, 6, 7, 2)),
    ("Conv3D", {"filters": 6, "kernel_size": 1, "groups": 2, "activation": "relu"}, (3, 3, 3, 4)),
    ("Conv3DTranspose", {"filters": 3, "kernel_size": 2, "strides": 2}, (3, 3, 3, 2)),
    (
        "Conv3DTranspose",
        {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 1, "use_bias": False},
        (2, 3, 4, 2),
    ),
    ("Conv1DTranspose", {"filters": 4, "kernel_size": 3, "strides": 2}, (7, 3)),
    (
        "Conv1DTranspose",
        {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 1},
        (7, 3),
    ),
    ("MaxPooling3D", {}, (4, 4, 4, 2)),
    ("MaxPooling3D", {"pool_size": (3, 2, 2), "strides": 1, "padding": "same"}, (4, 5, 6, 2)),
    ("AveragePooling3D", {"pool_size": 2}, (4, 4, 5, 2)),
    ("AveragePooling3D", {"pool_size": (1, 2, 2), "strides": (1, 1, 2)}, (3, 4, 6, 2)),
    ("GlobalMaxPooling3D", {}, (3, 4, 5, 2)),
    ("GlobalMaxPooling3D", {"keepdims": True}, (3, 4, 5, 2)),
    ("GlobalAveragePooling3D", {}, (3, 4, 5, 2)),
    ("UpSampling3D", {}, (2, 3, 4, 2)),
    ("UpSampling3D", {"size": (1, 2, 3)}, (2, 3, 4, 2)),
    ("ZeroPadding3D", {}, (2, 3, 4, 2)),
    ("ZeroPadding3D", {"padding": ((1, 0), (0, 2), (1, 1))}, (2, 3, 4, 2)),
    ("Cropping3D", {}, (4, 5, 6, 2)),
    ("Cropping3D", {"cropping": ((1, 0), (0, 2), (1, 1))}, (4, 5, 6, 2)),
    ("SpatialDropout1D", {"rate": 0.2}, (6, 3)),
    ("SpatialDropout2D", {"rate": 0.3}, (4, 4, 3)),
    ("SpatialDropout3D", {"rate": 0.25}, (3, 4, 4, 3)),
    ("ConvLSTM2D", {"filters": 3, "kernel_size": 3}, (4, 5, 5, 2)),
    (
        "ConvLSTM2D",
        {"filters": 2, "kernel_size": (3, 1), "padding": "same", "return_sequences": True},
        (3, 4, 4, 2),
    ),
    ("Conv1D", {"filters": 6, "kernel_size": 3, "groups": 3}, (8, 6)),
    ("Conv2D", {"filters": 8, "kernel_size": 3, "groups": 4, "padding": "same"}, (5, 5, 4)),
]
CASE_IDS = [f"{t}-{i}" for i, (t, _k, _s) in enumerate(CASES)]


def keras_model(layer_type: str, kwargs: dict[str, Any], shape: tuple[int, ...]):
    x = keras.Input(shape, name="x")
    layer = getattr(keras.layers, layer_type)(name="probe", **kwargs)
    return keras.Model(x, layer(x), name="probe_model")


def project_of(layer_type: str, params: dict[str, Any], shape: tuple[int, ...]) -> Project:
    graph = Graph()
    graph.add_node(Node("x", "Input", {"shape": list(shape)}))
    graph.add_node(Node("probe", layer_type, params))
    graph.connect(Edge("x", "probe", 0))
    return Project(name="probe_model", graph=graph)


def as_catalog(value: Any) -> Any:
    """A Keras argument in project-file form (tuples as lists)."""
    if isinstance(value, (tuple, list)):
        return [as_catalog(v) for v in value]
    return value


def config_of(layer) -> dict[str, Any]:
    config = layer.get_config()
    config.pop("name", None)
    return config


def sample(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((3, *shape)).astype("float32")


# ----------------------------------------------------------------- the catalog
def test_every_new_type_is_in_the_catalog_with_a_palette_group():
    missing = [t for t in NEW_TYPES if t not in CATALOG]
    assert not missing, f"not in the catalog: {missing}"
    groups = {t: CATALOG[t].category for t in NEW_TYPES}
    for t in ("LeakyReLU", "PReLU", "ELU", "Softmax"):
        assert groups[t] == "Core", t
    for t in ("Conv3D", "Conv3DTranspose", "Conv1DTranspose", "UpSampling3D", "ZeroPadding3D"):
        assert groups[t] == "Convolution", t
    for t in ("MaxPooling3D", "AveragePooling3D", "GlobalMaxPooling3D", "GlobalAveragePooling3D"):
        assert groups[t] == "Pooling", t
    assert groups["SpatialDropout3D"] == "Regularization"
    assert groups["ConvLSTM2D"] == "Recurrent"
    for t in NEW_TYPES:
        # ConvLSTM2D also takes its initial state h, c on inputs 1-2
        want = (1, 3) if t == "ConvLSTM2D" else (1, 1)
        assert (CATALOG[t].min_inputs, CATALOG[t].max_inputs) == want, t
    for t in ("Conv1D", "Conv2D", "Conv3D"):
        assert CATALOG[t].param("groups").default == 1


def test_new_types_have_readable_captions():
    assert caption("LeakyReLU", {}) == "slope 0.3"
    assert caption("ELU", {"alpha": 0.5}) == "alpha 0.5"
    assert caption("Softmax", {}) == "axis -1"
    assert caption("PReLU", {"shared_axes": [1, 2]}) == "shared axes 1,2"
    assert caption("Conv3D", {"filters": 8, "kernel_size": 3}) == "8 filters 3x3x3"
    assert caption("MaxPooling3D", {}) == "2x2x2"
    assert caption("UpSampling3D", {"size": [1, 2, 2]}) == "up 1x2x2"
    assert caption("ZeroPadding3D", {}) == "pad 1,1,1"
    assert caption("SpatialDropout3D", {"rate": 0.2}) == "rate 0.2"
    assert caption("ConvLSTM2D", {"filters": 8, "kernel_size": 3}) == "8 filters 3x3"


def test_groups_must_divide_filters_said_before_keras_is_asked():
    assert check_params("Conv2D", {"filters": 8, "groups": 4}) == []
    assert check_params("Conv3D", {"filters": 6, "groups": 4}) == [
        "filters must be a multiple of groups; got filters=6, groups=4"
    ]


def test_groups_that_do_not_divide_the_input_channels_are_a_named_problem():
    report = validate(
        project_of("Conv2D", {"filters": 4, "kernel_size": 1, "groups": 2}, (5, 5, 3))
    )
    assert not report.valid
    [problem] = report.errors
    assert problem.node == "probe"
    assert problem.message == (
        "Conv2D 'probe': The number of input channels must be evenly divisible by the number "
        "of groups. Received groups=2, but the input has 3 channels (full input shape is "
        "(None, 5, 5, 3))"
    )
    report = validate(
        project_of("Conv2D", {"filters": 6, "kernel_size": 1, "groups": 4}, (5, 5, 8))
    )
    assert [p.message for p in report.errors] == [
        "Conv2D 'probe': filters must be a multiple of groups; got filters=6, groups=4"
    ]


# --------------------------------------------------- shapes, import, codegen
@pytest.mark.parametrize(("layer_type", "kwargs", "shape"), CASES, ids=CASE_IDS)
def test_validate_gives_keras_shapes_and_counts(layer_type, kwargs, shape):
    model = keras_model(layer_type, kwargs, shape)
    params = {k: as_catalog(v) for k, v in kwargs.items()}
    report = validate(project_of(layer_type, params, shape))
    assert report.valid, [p.message for p in report.problems]
    info = {i.id: i for i in report.layers}["probe"]
    layer = model.get_layer("probe")
    assert tuple(info.output_shape) == tuple(model.outputs[0].shape)
    assert info.params == layer.count_params()
    assert report.total_params == model.count_params()
    assert report.trainable_params == sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


@pytest.mark.parametrize(("layer_type", "kwargs", "shape"), CASES, ids=CASE_IDS)
def test_import_round_trips_config_weights_and_predictions(tmp_path, layer_type, kwargs, shape):
    model = keras_model(layer_type, kwargs, shape)
    for w in model.weights:  # non-trivial weights (PReLU's slopes start at zero)
        w.assign(np.random.default_rng(1).standard_normal(w.shape).astype("float32"))
    project = import_model(model, weights_out=tmp_path / "m.weights.h5")
    assert [n.type for n in project.graph.nodes.values()] == ["Input", layer_type]
    project.path = tmp_path / "m.json"
    rebuilt = build_model(project)
    source, again = model.get_layer("probe"), rebuilt.get_layer("probe")
    assert type(again) is type(source)
    assert config_of(again) == config_of(source)
    assert rebuilt.count_params() == model.count_params()
    load_start_weights(rebuilt, project)
    xs = sample(shape)
    np.testing.assert_allclose(np.asarray(rebuilt(xs)), np.asarray(model(xs)), atol=1e-5)

    namespace: dict[str, Any] = {"keras": keras, "layers": keras.layers}
    exec(model_code(project.graph, project.name), namespace)  # the generated build_model()
    scripted = namespace["build_model"]()
    assert config_of(scripted.get_layer("probe")) == config_of(source)
    assert scripted.count_params() == model.count_params()


def test_docs_name_every_keras_layer_the_catalog_leaves_out():
    import inspect
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "layers.md").read_text()
    listed = set(re.findall(r"`(\w+)`", text))
    out = [
        name
        for name in dir(keras.layers)
        if inspect.isclass(getattr(keras.layers, name))
        and issubclass(getattr(keras.layers, name), keras.layers.Layer)
        and name not in CATALOG
    ]
    assert out, "the audit found nothing left out"
    missing = [name for name in out if name not in listed]
    assert not missing, f"docs/layers.md does not say why these are left out: {missing}"
    stale = [t for t in NEW_TYPES if f"`{t}`:" in text]
    assert not stale, f"docs/layers.md still lists catalog types as left out: {stale}"
