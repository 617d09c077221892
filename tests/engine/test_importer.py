"""Import: Keras models and applications become editable projects that rebuild the same model."""

from __future__ import annotations

import argparse
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.build.weights import load_start_weights
from engine.catalog.table import CATALOG
from engine.cli.importing import cli_import
from engine.io.importing.read import ModelImportError, UnreadableModelError
from engine.io.importing.rebuild import import_application, import_model
from engine.model.project import load_project

keras = pytest.importorskip("keras")
layers = keras.layers


def build(project):
    from engine.build.builder import build_model

    return build_model(project)


def predictions(model, xs):
    out = model(xs[0] if len(xs) == 1 else xs)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def layer_of(tensor) -> str:
    return tensor._keras_history[0].name


def branching_model():
    """Two inputs (given in reverse order), Add and Concatenate, two outputs (reversed)."""
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    h = layers.Dense(
        8,
        activation="relu",
        name="h",
        kernel_regularizer=keras.regularizers.L2(0.01),
        kernel_initializer="he_normal",
    )(a)
    g = layers.Dense(8, name="g")(b)
    s = layers.Add(name="s")([h, g])
    c = layers.Concatenate(name="c")([g, h, s])
    wide = layers.Dense(2, name="wide")(c)
    narrow = layers.Dense(1, activation="sigmoid", name="narrow")(s)
    return keras.Model([b, a], [narrow, wide], name="branching")


@pytest.fixture(scope="module")
def branching_file(tmp_path_factory) -> tuple[Path, object]:
    model = branching_model()
    path = tmp_path_factory.mktemp("models") / "branching.keras"
    model.save(path)
    return path, model


def seeded(model, n=4):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((n, *t.shape[1:])).astype("float32") for t in model.inputs]


def test_import_sequential_becomes_a_chain_with_an_input(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((5,)),
            layers.Dense(3, activation="tanh"),
            layers.Dropout(0.25),
            layers.Dense(1),
        ],
        name="seq",
    )
    model.save(tmp_path / "seq.h5")
    project = import_model(tmp_path / "seq.h5", weights_out=tmp_path / "seq.weights.h5")
    nodes = list(project.graph.nodes.values())
    assert [n.type for n in nodes] == ["Input", "Dense", "Dropout", "Dense"]
    assert nodes[0].params == {"shape": [5]}
    assert nodes[1].params == {"units": 3, "activation": "tanh"}
    assert nodes[2].params == {"rate": 0.25}
    ids = [n.id for n in nodes]
    assert [(e.source, e.target) for e in project.graph.edges] == list(zip(ids, ids[1:]))
    project.path = tmp_path / "seq.json"
    rebuilt = build(project)
    assert load_start_weights(rebuilt, project).path == tmp_path / "seq.weights.h5"
    xs = seeded(model)
    np.testing.assert_allclose(predictions(rebuilt, xs)[0], predictions(model, xs)[0], atol=1e-6)


def test_import_functional_keeps_ports_inputs_outputs_and_params(branching_file, tmp_path):
    path, model = branching_file
    project = import_model(path, weights_out=tmp_path / "b.weights.h5")
    g = project.graph
    assert [(e.source, e.port) for e in g.inputs_of("c")] == [("g", 0), ("h", 1), ("s", 2)]
    assert {e.source for e in g.inputs_of("s")} == {"h", "g"}
    assert g.nodes["h"].params == {
        "units": 8,
        "activation": "relu",
        "kernel_initializer": "he_normal",
        "kernel_regularizer": {"type": "L2", "l2": 0.01},
    }
    assert "use_bias" not in g.nodes["g"].params  # catalog defaults are left out
    project.path = tmp_path / "b.json"
    rebuilt = build(project)
    assert [layer_of(t) for t in rebuilt.inputs] == ["b", "a"]
    assert [layer_of(o) for o in rebuilt.outputs] == ["narrow", "wide"]
    load_start_weights(rebuilt, project)
    xs = seeded(model)
    for got, want in zip(predictions(rebuilt, xs), predictions(model, xs)):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_import_lays_nodes_out_top_to_bottom(branching_file):
    project = import_model(branching_file[0])
    pos = {n.id: n.position for n in project.graph.nodes.values()}
    for e in project.graph.edges:
        assert pos[e.target][1] > pos[e.source][1], e
    assert len(set(pos.values())) == len(pos)


def test_import_shared_input_and_wrapped_layers():
    x = keras.Input((6, 3), name="seq")
    r = layers.Bidirectional(layers.LSTM(4, return_sequences=True), name="bi")(x)
    t = layers.TimeDistributed(layers.Dense(2), name="td")(x)
    out = layers.Concatenate(name="join")([r, t])
    project = import_model(keras.Model(x, out))
    g = project.graph
    assert {e.target for e in g.outputs_of("seq")} == {"bi", "td"}
    assert g.nodes["bi"].params["layer"] == {
        "type": "LSTM",
        "params": {"units": 4, "return_sequences": True},
    }
    assert g.nodes["td"].params["layer"] == {"type": "Dense", "params": {"units": 2}}
    assert build(project).count_params() == keras.Model(x, out).count_params()


def test_import_refuses_lambda_layers_listing_them(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            layers.Lambda(lambda t: t * 2, name="double"),
            layers.Dense(2),
            layers.Lambda(lambda t: t + 1, name="plus_one"),
        ]
    )
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ModelImportError) as err:
        import_model(tmp_path / "lambda.keras")
    text = str(err.value)
    assert "lambda.keras" in text and "2 problems" in text
    assert "'double' (Lambda)" in text and "'plus_one' (Lambda)" in text
    assert not isinstance(err.value, UnreadableModelError)


def test_import_lists_every_unknown_layer_and_lost_setting():
    rare = [
        t
        for t in (
            "UnitNormalization",
            "AlphaDropout",
            "CategoryEncoding",
            "Identity",
            "ActivityRegularization",
        )
        if t not in CATALOG
    ][:2]
    assert len(rare) == 2
    x = keras.Input((4,))
    h = layers.Dense(3, kernel_constraint=keras.constraints.MaxNorm(2.0), name="capped")(x)
    for i, kind in enumerate(rare):
        h = getattr(layers, kind)(
            **({"rate": 0.1} if kind == "AlphaDropout" else {}), name=f"odd{i}"
        )(h)
    with pytest.raises(ModelImportError) as err:
        import_model(keras.Model(x, h))
    text = str(err.value)
    assert f"'odd0' ({rare[0]})" in text and f"'odd1' ({rare[1]})" in text
    assert f"layer types the catalog lacks: {rare[0]}, {rare[1]}" in text.splitlines()[0]
    assert "'capped' (Dense)" in text and "kernel_constraint=MaxNorm" in text


def test_import_config_json_and_the_config_inside_a_keras_file(branching_file, tmp_path):
    path, model = branching_file
    as_json = tmp_path / "branching.json"
    as_json.write_text(model.to_json())
    project = import_model(as_json, weights_out=tmp_path / "none.weights.h5")
    assert "weights" not in project.extra and not (tmp_path / "none.weights.h5").exists()
    inner = tmp_path / "config.json"
    with zipfile.ZipFile(path) as z:
        inner.write_bytes(z.read("config.json"))
    again = import_model(inner)
    assert [n.to_dict() for n in again.graph.nodes.values()] == [
        n.to_dict() for n in project.graph.nodes.values()
    ]
    assert build(project).count_params() == model.count_params()


def test_import_unreadable_files_name_the_file(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"this is not a zip")
    with pytest.raises(UnreadableModelError, match="corrupt.keras"):
        import_model(corrupt)
    weights_only = tmp_path / "w.weights.h5"
    keras.Sequential([keras.Input((2,)), layers.Dense(1)]).save_weights(weights_only)
    with pytest.raises(UnreadableModelError, match="w.weights.h5.*without a model config"):
        import_model(weights_only)
    not_a_model = tmp_path / "notes.json"
    not_a_model.write_text(json.dumps({"hello": 1}))
    with pytest.raises(UnreadableModelError, match="notes.json: not a Keras model config"):
        import_model(not_a_model)
    code = cli_import(
        argparse.Namespace(model=str(tmp_path / "missing.keras"), out=str(tmp_path / "p.json"))
    )
    assert code == 2
    assert "missing.keras: no such file" in capsys.readouterr().err


def test_cli_import_writes_project_and_weights(branching_file, tmp_path, capsys):
    path, model = branching_file
    out = tmp_path / "proj" / "imported.json"
    assert cli_import(argparse.Namespace(model=str(path), out=str(out))) == 0
    printed = capsys.readouterr().out
    assert "imported 6 layers" in printed and str(out) in printed
    assert "imported.weights.h5" in printed
    project = load_project(out)
    assert project.extra["weights"] == "imported.weights.h5"
    rebuilt = build(project)
    load_start_weights(rebuilt, project)
    xs = seeded(model)
    np.testing.assert_allclose(predictions(rebuilt, xs)[1], predictions(model, xs)[1], atol=1e-6)


def test_import_500_layers_is_quick_and_laid_out():
    x = keras.Input((4,), name="x")
    h = x
    for i in range(250):
        h = layers.Add(name=f"add{i}")([h, layers.Dense(4, name=f"d{i}")(h)])
    model = keras.Model(x, h)
    start = time.perf_counter()
    project = import_model(model)
    seconds = time.perf_counter() - start
    assert len(project.graph.nodes) == 501
    assert seconds < 20, f"importing 501 layers took {seconds:.1f} s"
    pos = {n.id: n.position for n in project.graph.nodes.values()}
    assert all(pos[e.target][1] > pos[e.source][1] for e in project.graph.edges)


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in ("seed", "name")}
    return value


@pytest.mark.parametrize(
    "name", ["VGG16", "ResNet50", "MobileNetV2", "EfficientNetB0", "EfficientNetV2B0"]
)
def test_import_application_round_trip(name):
    keras.backend.clear_session()  # both builds then number unnamed layers alike
    source = getattr(keras.applications, name)(weights=None)
    keras.backend.clear_session()
    project = import_application(name)
    rebuilt = build(project)
    assert rebuilt.count_params() == source.count_params()
    assert len(rebuilt.layers) == len(source.layers)
    assert [tuple(t.shape) for t in rebuilt.inputs] == [tuple(t.shape) for t in source.inputs]
    mine = {la.name: la for la in rebuilt.layers}
    for layer in source.layers:
        spec = CATALOG.get(type(layer).__name__)
        other = mine[layer.name]
        assert type(other) is type(layer), layer.name
        if spec is None:  # InputLayer
            continue
        a, b = layer.get_config(), other.get_config()
        for p in spec.params:
            if p.name in a and p.kind == "initializer" and isinstance(a[p.name], dict):
                # settings beyond the name are approximated, with a note (EfficientNet's);
                # Constant(0) and Constant(1) are Zeros and Ones
                constant = {0.0: "Zeros", 1.0: "Ones"}.get(a[p.name]["config"].get("value"))
                want = (
                    constant if a[p.name]["class_name"] == "Constant" else a[p.name]["class_name"]
                )
                assert b[p.name]["class_name"] == want, layer.name
            elif p.name in a:
                assert _plain(b[p.name]) == _plain(a[p.name]), (layer.name, p.name)


def test_import_application_refuses_downloads_and_unknown_names():
    with pytest.raises(ModelImportError, match="nothing is downloaded"):
        import_application("VGG16", weights="imagenet")
    with pytest.raises(ModelImportError, match="unknown application 'VGG17'"):
        import_application("VGG17")


def test_import_attention_called_with_keywords_keeps_query_value_order():
    q = keras.Input((5, 8), name="q")
    v = keras.Input((7, 8), name="v")
    out = layers.MultiHeadAttention(2, 4, name="att")(value=v, query=q)
    source = keras.Model([q, v], out)
    project = import_model(source)
    assert [(e.source, e.port) for e in project.graph.inputs_of("att")] == [("q", 0), ("v", 1)]
    assert build(project).count_params() == source.count_params()


@keras.saving.register_keras_serializable(package="layerlab_tests")
class Twice(keras.layers.Layer):
    def call(self, x):
        return 2 * x


def test_import_refuses_custom_layers_and_shared_layers(tmp_path):
    model = keras.Sequential([keras.Input((3,)), Twice(name="twice"), layers.Dense(2)])
    model.save(tmp_path / "custom.keras")
    with pytest.raises(ModelImportError, match=r"'twice' \(Twice\): a custom class \(Twice from"):
        import_model(tmp_path / "custom.keras")
    dense = layers.Dense(3, name="both_sides")
    a, b = keras.Input((3,)), keras.Input((3,))
    with pytest.raises(ModelImportError, match="'both_sides' .* called 2 times"):
        import_model(keras.Model([a, b], layers.Add()([dense(a), dense(b)])))


def _expanded(pspec, value):
    if pspec.kind == "ints" and pspec.length and isinstance(value, int):
        return [value] * pspec.length
    return value


@pytest.mark.parametrize("preset", ["lenet5", "resnet-mini"])
def test_import_of_a_built_preset_gives_back_its_graph(preset, tmp_path):
    from engine.model.project import load_project as load
    from presets import presets_dir

    project = load(presets_dir() / f"{preset}.json")
    build(project).save(tmp_path / "model.keras")
    imported = import_model(tmp_path / "model.keras")
    assert set(imported.graph.nodes) == set(project.graph.nodes)
    assert imported.graph.output_nodes() == project.graph.output_nodes()
    assert sorted(imported.graph.edges, key=str) == sorted(project.graph.edges, key=str)
    for nid, node in project.graph.nodes.items():
        other = imported.graph.nodes[nid]
        assert other.type == node.type
        for p in CATALOG[node.type].params:
            want = _expanded(p, node.params.get(p.name, p.default))
            got = _expanded(p, other.params.get(p.name, p.default))
            if p.name == "strides" and want is None:  # None means "the pool size"
                want = _expanded(p, node.params.get("pool_size", 2))
                got = got if got is not None else want
            assert got == want, (nid, p.name)


def test_import_lists_keras_operations_that_are_not_layers():
    x = keras.Input((4,))
    y = layers.Dense(4, name="dense_in")(x)
    # x + 3 and y * 2 are Operation nodes now (tests/engine/test_operations.py); operations
    # outside the allow-list are each named.
    model = keras.Model(x, [keras.ops.cos(keras.ops.add(y, 3.0)), keras.ops.sin(y * 2)])
    with pytest.raises(ModelImportError) as err:
        import_model(model)
    text = str(err.value)
    assert "2 problems" in text
    assert "(Cos): the Keras operation keras.ops.cos" in text
    assert "(Sin): the Keras operation keras.ops.sin" in text


def test_notes_that_differ_only_in_the_layer_are_one_line():
    from engine.io.importing.rebuild import grouped_notes

    same = "kernel_initializer VarianceScaling(scale=2.0) is approximated by 'x'"
    notes = [f"'c{i}' (Conv2D): {same}" for i in range(5)] + [
        "'d' (Dense): other",
        "a note about the model",
    ]
    assert grouped_notes(notes) == [
        f"'c0', 'c1', 'c2' and 2 more (Conv2D): {same}",
        "'d' (Dense): other",
        "a note about the model",
    ]


def _refusal(model) -> str:
    with pytest.raises(ModelImportError) as info:
        import_model(model)
    return str(info.value)


def test_layers_keras_writes_back_differently_still_import():
    x = keras.Input((8, 8, 3), name="x")
    h = layers.LayerNormalization(name="ln")(x)  # built: axis=[-1]
    h = layers.RandomRotation(0.1, name="rot")(h)  # factor=(-0.1, 0.1)
    h = layers.RandomContrast(0.2, name="contrast")(h)  # factor=(0, 0.2)
    project = import_model(keras.Model(x, h))
    params = {n.id: n.params for n in project.graph.nodes.values()}
    assert params["ln"] == {} and params["rot"] == {"factor": 0.1}
    assert params["contrast"] == {"factor": 0.2}


def test_what_would_import_wrong_is_refused_by_name():
    x = keras.Input((4, 3), name="x")
    causal = layers.MultiHeadAttention(1, 2, name="mha")(x, x, use_causal_mask=True)
    assert "'mha' (MultiHeadAttention) is called with use_causal_mask=True" in _refusal(
        keras.Model(x, causal)
    )
    a, unused = keras.Input((4,), name="a"), keras.Input((2,), name="u")
    d = layers.Dense(2, name="d")(a)
    assert "input 'u' feeds no layer" in _refusal(keras.Model([a, unused], d))
    assert "'d' is listed 2 times among the model's outputs" in _refusal(keras.Model(a, [d, d]))
    lora = layers.Dense(3, lora_rank=2, name="lora")(a)
    assert "'lora' (Dense): settings the catalog cannot hold: lora_rank=2" in _refusal(
        keras.Model(a, lora)
    )


def test_malformed_and_corrupt_files_are_unreadable_not_tracebacks(tmp_path, capsys):
    import zipfile

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"class_name": "Functional", "config": {"layers": [1]}}))
    assert cli_import(argparse.Namespace(model=str(bad), out=str(tmp_path / "o"))) == 2
    assert "bad.json: layer #1 of the model config is not a layer entry" in capsys.readouterr().err
    x = keras.Input((4,))
    source = tmp_path / "m.keras"
    keras.Model(x, layers.Dense(64)(x)).save(source)
    deflated = tmp_path / "deflated.keras"
    with (
        zipfile.ZipFile(source) as src,
        zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    data = bytearray(deflated.read_bytes())
    at = data.index(b"config.json") + len("config.json") + 4
    data[at : at + 20] = bytes(20)
    deflated.write_bytes(bytes(data))
    assert cli_import(argparse.Namespace(model=str(deflated), out=str(tmp_path / "o"))) == 2
    assert "deflated.keras: cannot be read as a .keras model" in capsys.readouterr().err


def test_import_resnet50_opens_as_stages_of_collapsed_residual_blocks(tmp_path):
    from engine.model.blocks import parents, top_level
    from engine.model.project import dumps

    start = time.perf_counter()
    project = import_application("ResNet50", input_shape=(64, 64, 3), classes=10)
    seconds = time.perf_counter() - start
    blocks = project.graph.blocks
    assert top_level(blocks) == ["conv1", "pool1", "conv2", "conv3", "conv4", "conv5"]
    up = parents(blocks)
    for stage, n in (("conv2", 3), ("conv3", 4), ("conv4", 6), ("conv5", 3)):
        units = [b for b, p in up.items() if p == stage]
        assert units == [f"{stage}_block{i}" for i in range(1, n + 1)]
        assert all(blocks[u].collapsed for u in units) and not blocks[stage].collapsed
    path = tmp_path / "resnet50.json"
    path.write_text(dumps(project))
    assert dumps(load_project(path)) == dumps(project)  # the blocks are a valid file
    assert seconds < 60, f"importing ResNet50 took {seconds:.1f} s"


def test_import_of_unstructured_names_gives_no_blocks(branching_file):
    path, _model = branching_file
    assert import_model(path).graph.blocks == {}
