"""Backbone (a keras.applications network as one node) and BackbonePreprocessing.

Tests never download: weights are None, or a file the test writes itself. Cheap on
purpose: one TensorFlow start, 32x32 inputs (75x75 for InceptionResNetV2).
"""

from __future__ import annotations

import contextlib
import inspect
import urllib.error

import numpy as np
import pytest

from engine.analysis.shapes import ShapeInference
from engine.build.backbone import OFFLINE_ENV
from engine.build.builder import build_model
from engine.build.errors import BuildError
from engine.catalog.backbones import BACKBONES, PREPROCESS_MODES
from engine.codegen.script import model_code
from engine.model.graph import Edge, Graph, Node
from engine.model.project import Project, load_project, save_project

keras = pytest.importorskip("keras")


def backbone_graph(
    app: str = "MobileNetV3Small",
    size: int = 32,
    *,
    weights=None,
    frozen: bool = False,
    mode: str | None = None,
    head: bool = False,
    **extra,
) -> Graph:
    g = Graph()
    g.add_node(Node("image", "Input", {"shape": [size, size, 3]}))
    last = "image"
    if mode is not None:
        g.add_node(Node("prep", "BackbonePreprocessing", {"mode": mode}))
        g.connect(Edge(last, "prep"))
        last = "prep"
    g.add_node(Node("backbone", "Backbone", {"application": app, "weights": weights, **extra}))
    g.connect(Edge(last, "backbone"))
    if frozen:
        g.set_trainable("backbone", False)
    if head:
        g.add_node(Node("pool", "GlobalAveragePooling2D", {}))
        g.add_node(Node("probs", "Dense", {"units": 3, "activation": "softmax"}))
        g.connect(Edge("backbone", "pool"))
        g.connect(Edge("pool", "probs"))
    return g


@contextlib.contextmanager
def deferred():
    """Variables with shapes, no values, forgotten afterwards (as shape inference does)."""
    from keras.src.backend.common import global_state

    before = list(global_state.get_global_attribute("uninitialized_variables") or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        global_state.set_global_attribute("uninitialized_variables", before)


def same_weights(a, b) -> bool:
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb))


def project_of(graph: Graph, name: str = "transfer") -> Project:
    p = Project(name=name)
    p.graph = graph
    return p


# ------------------------------------------------------- the list is Keras's list
def test_backbone_list_is_every_keras_application():
    offered = {
        n
        for n in dir(keras.applications)
        if n[0].isupper() and callable(getattr(keras.applications, n))
    }
    assert set(BACKBONES) == offered
    for name, b in BACKBONES.items():
        fn = getattr(keras.applications, name)
        assert fn.__module__.endswith("." + b.module), name
        params = inspect.signature(fn).parameters
        takes = {p for p in ("alpha", "minimalistic", "include_preprocessing") if p in params}
        assert set(b.extra) == takes, name


@pytest.mark.parametrize("module", sorted({b.module for b in BACKBONES.values()}))
def test_backbone_preprocess_mode_is_what_preprocess_input_does(module):
    from keras.src.applications import imagenet_utils

    mode = {b.preprocess for b in BACKBONES.values() if b.module == module}
    assert len(mode) == 1 and mode <= set(PREPROCESS_MODES)
    (mode,) = mode
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    got = getattr(keras.applications, module).preprocess_input(x.copy())
    want = x if mode == "none" else imagenet_utils.preprocess_input(x.copy(), mode=mode)
    np.testing.assert_allclose(got, want, rtol=1e-6)


# ------------------------------------------------ counts come from Keras itself
@pytest.mark.parametrize(
    ("app", "size"),
    [
        ("MobileNetV3Small", 32),
        ("ConvNeXtTiny", 32),
        ("InceptionResNetV2", 75),
        ("EfficientNetV2B0", 32),
        ("ResNet50V2", 32),
    ],
)
def test_backbone_validates_with_keras_applications_parameter_counts(app, size):
    with deferred():  # counts need no random numbers
        ref = getattr(keras.applications, app)(
            include_top=False, weights=None, input_shape=(size, size, 3)
        )
        total = ref.count_params()
        trainable = sum(int(np.prod(w.shape)) for w in ref.trainable_weights)
        out = tuple(ref.output.shape)
    graph = backbone_graph(app, size)
    si = ShapeInference(graph)
    assert not si.problems
    info = si.info["backbone"]
    assert (info.params, info.trainable, info.output_shape) == (total, trainable, out)
    graph.set_trainable("backbone", False)
    si.update(["backbone"])
    info = si.info["backbone"]
    assert (info.params, info.trainable, info.non_trainable) == (total, 0, total)
    assert si.totals() == (total, 0, total)


def test_backbone_refuses_a_param_its_application_does_not_take_and_a_tiny_input():
    si = ShapeInference(backbone_graph("ResNet50", alpha=0.5))
    assert "ResNet50 has no alpha" in si.problems[0].message
    assert "Backbone 'backbone'" in si.problems[0].message
    si = ShapeInference(backbone_graph("MobileNetV2", 16))
    assert si.problems and "Backbone 'backbone'" in si.problems[0].message
    assert "32" in si.problems[0].message  # Keras says how small it may be


def test_backbone_alpha_and_pooling_reach_keras():
    si = ShapeInference(backbone_graph("MobileNetV2", alpha=0.35, pooling="avg"))
    with deferred():
        ref = keras.applications.MobileNetV2(
            include_top=False, weights=None, input_shape=(32, 32, 3), alpha=0.35, pooling="avg"
        )
    assert si.info["backbone"].params == ref.count_params()
    assert si.info["backbone"].output_shape == (None, 1280)


# ------------------------------------------------------------ the built model
def test_builder_nests_the_network_named_after_the_node_and_honours_the_freeze():
    model = build_model(backbone_graph(frozen=True, mode="tf", head=True))
    base = model.get_layer("backbone")
    assert isinstance(base, keras.Model) and base.name == "backbone"
    assert base.trainable is False and not base.trainable_weights
    assert (
        model.count_params()
        == ShapeInference(backbone_graph(frozen=True, mode="tf", head=True)).totals().total
    )


def test_generated_script_writes_the_keras_idiom_and_builds_the_same_model():
    graph = backbone_graph("MobileNetV3Small", frozen=True, mode="caffe", head=True, pooling=None)
    code = model_code(graph, "transfer")
    assert "keras.applications.MobileNetV3Small(" in code
    assert "include_top=False" in code and "input_shape=prep.shape[1:]" in code
    assert "backbone_net.trainable = False" in code
    namespace: dict = {"keras": keras, "layers": keras.layers}
    exec(code, namespace)
    generated = namespace["build_model"]()
    built = build_model(graph)
    assert [layer.name for layer in generated.layers] == [layer.name for layer in built.layers]
    assert generated.count_params() == built.count_params()
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    generated.set_weights(built.get_weights())
    np.testing.assert_allclose(generated(x), built(x), atol=1e-6)


# ------------------------------------------------------------- preprocessing
@pytest.mark.parametrize(
    ("mode", "module"),
    [("tf", "mobilenet_v2"), ("torch", "densenet"), ("caffe", "vgg16"), ("none", "efficientnet")],
)
@pytest.mark.parametrize("pixel_max", [255, 1])
def test_backbone_preprocessing_equals_keras_preprocess_input(mode, module, pixel_max):
    """With pixel_max 1 (LayerLab's image folders load [0, 1]) it equals
    preprocess_input of the same picture in [0, 255]."""
    g = Graph()
    g.add_node(Node("image", "Input", {"shape": [5, 5, 3]}))
    g.add_node(Node("prep", "BackbonePreprocessing", {"mode": mode, "pixel_max": pixel_max}))
    g.connect(Edge("image", "prep"))
    model = build_model(g)
    x = np.random.default_rng(2).uniform(0, 255, (3, 5, 5, 3)).astype("float32")
    want = getattr(keras.applications, module).preprocess_input(x.copy())
    got = np.asarray(model(x / 255.0 if pixel_max == 1 else x))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    namespace: dict = {"keras": keras, "layers": keras.layers}
    exec(model_code(g, "prep"), namespace)  # the generated script's layer is the same
    np.testing.assert_allclose(
        namespace["build_model"]()(x / 255.0 if pixel_max == 1 else x), got, rtol=1e-6, atol=1e-5
    )
    assert not model.trainable_weights  # nothing in it learns
    # plain Keras layers: the saved model reloads without custom objects
    assert not any("Lambda" in type(layer).__name__ for layer in model.layers)


# ------------------------------------------------------------------ weights
def test_local_weights_file_is_loaded_relative_to_the_project(tmp_path):
    keras.utils.set_random_seed(3)
    source = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3)
    )
    (tmp_path / "weights").mkdir()
    source.save_weights(tmp_path / "weights" / "mine.weights.h5")
    project = project_of(backbone_graph(weights="weights/mine.weights.h5", head=True))
    save_project(project, tmp_path / "transfer.json")
    model = build_model(load_project(tmp_path / "transfer.json"))
    x = np.random.default_rng(4).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(model.get_layer("backbone")(x), source(x), rtol=1e-4, atol=0)
    assert same_weights(model.get_layer("backbone"), source)
    fresh = build_model(project, weights=False)  # shape-only builds never load them
    assert not same_weights(fresh.get_layer("backbone"), source)


def test_missing_weights_file_names_the_node_and_the_path(tmp_path):
    project = project_of(backbone_graph(weights="nowhere/gone.weights.h5"))
    save_project(project, tmp_path / "p.json")
    with pytest.raises(BuildError) as err:
        build_model(load_project(tmp_path / "p.json"))
    text = str(err.value)
    assert "Backbone 'backbone'" in text and "gone.weights.h5" in text
    assert str(tmp_path / "nowhere" / "gone.weights.h5") in text


def test_weights_file_of_another_network_says_it_does_not_fit(tmp_path):
    other = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(32, 32, 3), alpha=0.35
    )
    other.save_weights(tmp_path / "other.weights.h5")
    project = project_of(backbone_graph(weights=str(tmp_path / "other.weights.h5")))
    with pytest.raises(BuildError) as err:
        build_model(project)
    assert "Backbone 'backbone'" in str(err.value) and "does not fit" in str(err.value)


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    from keras.src.backend import config

    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setattr(config, "keras_home", lambda: str(home))
    return home


def test_offline_imagenet_names_the_file_keras_wanted_and_where_to_put_it(
    empty_keras_home, monkeypatch
):
    monkeypatch.setenv(OFFLINE_ENV, "1")
    with pytest.raises(BuildError) as err:
        build_model(project_of(backbone_graph(weights="imagenet")))
    text = str(err.value)
    assert "Backbone 'backbone'" in text and OFFLINE_ENV in text
    assert "weights_mobilenet_v3_small" in text and text.count(".h5") >= 1
    assert str(empty_keras_home / "models") in text
    # shape inference never downloads, offline or not
    assert not ShapeInference(backbone_graph(weights="imagenet")).problems


def test_failed_download_names_the_file_and_where_to_put_it(empty_keras_home, monkeypatch):
    from keras.src.utils import file_utils

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    with pytest.raises(BuildError) as err:
        build_model(project_of(backbone_graph("ResNet50", weights="imagenet")))
    text = str(err.value)
    assert "could not be downloaded" in text and "network is unreachable" in text
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in text
    assert str(empty_keras_home / "models") in text


def test_cached_imagenet_file_is_used_and_progress_is_reported(empty_keras_home, monkeypatch):
    """A file in Keras's cache loads offline; a download reports its progress."""
    from keras.src.utils import file_utils

    from engine.build.backbone import DownloadProgress

    net = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3), minimalistic=True
    )
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    made = empty_keras_home / "made.h5"  # the legacy .h5 layout Keras's downloads have
    with h5py.File(made, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, net)
    data = made.read_bytes()

    def fake_download(url, filename, reporthook=None, data_=None):
        for block in range(5):
            reporthook(block, len(data) // 4 + 1, len(data))
        with open(filename, "wb") as f:
            f.write(data)

    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    monkeypatch.setattr(file_utils, "urlretrieve", fake_download)
    monkeypatch.setattr(file_utils, "validate_file", lambda *a, **k: True)
    graph = backbone_graph(weights="imagenet", minimalistic=True)
    with pytest.warns(DownloadProgress) as caught:
        model = build_model(project_of(graph))
    lines = [str(w.message) for w in caught if w.category is DownloadProgress]
    assert lines[0].startswith("'backbone': downloading weights_mobilenet_v3_small_minimalistic")
    assert "100%" in lines[-1]
    assert same_weights(model.get_layer("backbone"), net)
    monkeypatch.setenv(OFFLINE_ENV, "1")  # now cached: offline is fine
    build_model(project_of(graph))


# ------------------------------------------------------------------- export
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
@pytest.mark.parametrize("fmt", ["keras", "savedmodel", "onnx", "tflite", "python"])
def test_backbone_project_exports_to_every_format_with_the_same_predictions(tmp_path, fmt):
    from engine.io.export import export

    graph = backbone_graph(frozen=True, mode="torch", head=True, minimalistic=True)
    result = export(project_of(graph), fmt, tmp_path / "model")
    assert result.verified, result.message
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-4
