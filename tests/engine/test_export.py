"""Export: every format is written, reloaded with its own runtime and compared."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.cli.export import cli_export
from engine.io.export import (
    ONNX_MISSING,
    ExportError,
    SourceError,
    export,
    sample_inputs,
)
from engine.model.graph import Edge, Node
from engine.model.project import Project, save_project

keras = pytest.importorskip("keras")


def make_project(name: str = "tiny classifier") -> Project:
    p = Project(name=name)
    g = p.graph
    g.nodes["x"] = Node("x", "Input", {"shape": [16]})
    g.nodes["hidden"] = Node("hidden", "Dense", {"units": 64, "activation": "relu"})
    g.nodes["probs"] = Node("probs", "Dense", {"units": 3, "activation": "softmax"})
    g.edges += [Edge("x", "hidden"), Edge("hidden", "probs")]
    return p


def two_in_two_out() -> Project:
    p = Project(name="two heads")
    g = p.graph
    g.nodes["left"] = Node("left", "Input", {"shape": [4]})
    g.nodes["right"] = Node("right", "Input", {"shape": [3]})
    g.nodes["both"] = Node("both", "Concatenate", {})
    g.nodes["score"] = Node("score", "Dense", {"units": 2})
    g.nodes["flag"] = Node("flag", "Dense", {"units": 1, "activation": "sigmoid"})
    g.edges += [
        Edge("right", "both", 0),
        Edge("left", "both", 1),
        Edge("both", "score"),
        Edge("both", "flag"),
    ]
    return p


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory with a model trained for one epoch on tiny data."""
    from engine.build.builder import build_model

    folder = tmp_path_factory.mktemp("run")
    project = make_project()
    keras.utils.set_random_seed(1)
    model = build_model(project)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16)).astype("float32")
    y = rng.integers(0, 3, 64)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.save(folder / "model.keras")
    save_project(project, folder / "project.json")
    return folder


@pytest.fixture(scope="module")
def trained(run_dir):
    model = keras.models.load_model(run_dir / "model.keras")
    xs = sample_inputs(model)
    return model, xs, np.asarray(model(xs[0]))


def args(source, fmt, out, **kw) -> argparse.Namespace:
    d = {
        "source": str(source),
        "format": fmt,
        "out": str(out),
        "no_verify": False,
        "quantize": "none",
        "weights": None,
    }
    d.update(kw)
    return argparse.Namespace(**d)


@pytest.mark.parametrize("fmt", ["keras", "h5", "savedmodel", "onnx", "tflite"])
def test_export_run_dir_every_format_reloads_with_the_same_predictions(
    run_dir, trained, tmp_path, fmt
):
    result = export(run_dir, fmt, tmp_path / "model")
    assert result.verified, result.message
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-4
    assert result.path.exists() and result.size_bytes > 0
    assert "verified: max |diff|" in result.message and "over 8 samples" in result.message


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_export_onnx_and_tflite_files_predict_like_the_trained_model(run_dir, trained, tmp_path):
    """Checked here with the runtimes directly, not through export's own check."""
    import onnxruntime
    import tensorflow as tf

    _model, xs, expected = trained
    onnx = export(run_dir, "onnx", tmp_path / "m.onnx", verify=False).path
    session = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: xs[0]})[0]
    assert np.max(np.abs(got - expected)) < 1e-4

    tfl = export(run_dir, "tflite", tmp_path / "m.tflite", verify=False).path
    runner = tf.lite.Interpreter(model_path=str(tfl)).get_signature_runner()
    got = next(iter(runner(x=xs[0]).values()))
    assert np.max(np.abs(got - expected)) < 1e-4


def test_export_run_dir_uses_the_trained_weights_not_a_fresh_build(run_dir, trained, tmp_path):
    _model, xs, expected = trained
    path = export(run_dir, "keras", tmp_path / "m.keras").path
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(reloaded(xs[0])), expected, atol=1e-6)
    assert int(reloaded.optimizer.iterations) == 4  # the optimizer state came along
    untrained = export(run_dir / "project.json", "keras", tmp_path / "u.keras").path
    fresh = np.asarray(keras.models.load_model(untrained)(xs[0]))
    assert np.max(np.abs(fresh - expected)) > 1e-3


def test_export_tflite_quantised_reports_a_difference_and_is_smaller(run_dir, tmp_path):
    plain = export(run_dir, "tflite", tmp_path / "f32.tflite")
    for mode in ("float16", "int8"):
        result = export(run_dir, "tflite", tmp_path / f"{mode}.tflite", quantize=mode)
        assert result.verified, result.message
        assert result.max_abs_diff is not None and result.max_abs_diff > 0
        assert mode in result.message
        assert result.size_bytes < plain.size_bytes


def test_export_python_from_run_dir_reproduces_the_trained_predictions(run_dir, trained, tmp_path):
    import runpy

    _model, xs, expected = trained
    result = export(run_dir, "python", tmp_path / "train_model.py")
    assert result.verified, result.message
    assert result.weights == tmp_path / "train_model.weights.h5" and result.weights.is_file()
    script = result.path.read_text()
    assert "train_model.weights.h5" in script
    namespace = runpy.run_path(str(result.path), run_name="check")
    model = namespace["build_model"]()
    model.load_weights(result.weights)
    np.testing.assert_allclose(np.asarray(model(xs[0])), expected, atol=1e-5)


def test_export_python_from_a_project_builds_the_same_model(tmp_path):
    result = export(make_project(), "python", tmp_path / "script")
    assert result.path == tmp_path / "script.py"
    assert result.verified and result.max_abs_diff <= 1e-4, result.message
    assert result.weights is None and "WEIGHTS" not in result.path.read_text()


def test_export_project_file_is_an_untrained_build_with_a_fixed_seed(tmp_path):
    path = tmp_path / "p.json"
    save_project(make_project(), path)
    a = export(path, "keras", tmp_path / "a.keras")
    b = export(path, "keras", tmp_path / "b.keras")
    assert a.verified and b.verified
    xs = sample_inputs(keras.models.load_model(a.path))
    pa = keras.models.load_model(a.path)(xs[0])
    pb = keras.models.load_model(b.path)(xs[0])
    np.testing.assert_array_equal(np.asarray(pa), np.asarray(pb))


@pytest.mark.parametrize("fmt", ["savedmodel", "onnx", "tflite"])
def test_export_multi_input_multi_output_keeps_inputs_and_outputs_apart(tmp_path, fmt):
    result = export(two_in_two_out(), fmt, tmp_path / "two")
    assert result.verified, result.message
    assert result.max_abs_diff <= 1e-4


def test_export_onnx_without_the_extra_says_what_to_install(run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # makes `import tf2onnx` fail
    with pytest.raises(ExportError) as err:
        export(run_dir, "onnx", tmp_path / "m.onnx")
    assert str(err.value) == ONNX_MISSING
    assert cli_export(args(run_dir, "onnx", tmp_path / "m.onnx")) == 1
    assert "pip install 'layerlab[onnx]'" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_export_converter_failure_names_the_format_and_the_layer(
    run_dir, tmp_path, monkeypatch, capsys
):
    def broken(self, filepath, format="tf_saved_model", **kw):
        raise RuntimeError(
            "Some ops are not supported by the native TFLite runtime\n"
            'tf.Foo {device = ""} at loc("functional/hidden/Foo")'
        )

    monkeypatch.setattr(keras.Model, "export", broken)
    code = cli_export(args(run_dir, "tflite", tmp_path / "m.tflite"))
    err = capsys.readouterr().err
    assert code == 1
    assert "tflite export failed at layer 'hidden' (Dense)" in err
    assert "Traceback" not in err


def test_cli_export_prints_file_size_and_check(run_dir, tmp_path, capsys):
    assert cli_export(args(run_dir, "keras", tmp_path / "out.keras")) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "out.keras") in out
    assert "KB" in out or "bytes" in out
    assert "verified: max |diff|" in out and "over 8 samples" in out


def test_layerlab_export_command_runs_through_the_front_door(run_dir, tmp_path, capsys):
    from engine.cli.main import main

    out = tmp_path / "cli.tflite"
    assert (
        main(
            [
                "export",
                str(run_dir),
                "--format",
                "tflite",
                "--out",
                str(out),
                "--quantize",
                "float16",
            ]
        )
        == 0
    )
    assert out.is_file()
    assert "float16 quantisation" in capsys.readouterr().out


def test_cli_export_unreadable_source_exits_2_naming_it(tmp_path, capsys):
    bad = tmp_path / "broken.json"
    bad.write_text("{ not json")
    assert cli_export(args(bad, "keras", tmp_path / "x.keras")) == 2
    assert str(bad) in capsys.readouterr().err
    half_run = tmp_path / "run"
    half_run.mkdir()
    (half_run / "project.json").write_text("{}")
    assert cli_export(args(half_run, "keras", tmp_path / "x.keras")) == 2
    err = capsys.readouterr().err
    assert str(half_run) in err and "model.keras" in err
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(SourceError, match="corrupt.keras"):
        export(corrupt, "keras", tmp_path / "y.keras")


def test_export_refuses_a_wrong_file_ending_and_quantising_non_tflite(run_dir, tmp_path):
    with pytest.raises(ExportError, match=r"must end in \.onnx"):
        export(run_dir, "onnx", tmp_path / "m.tflite")
    with pytest.raises(ExportError, match="tflite exports only"):
        export(run_dir, "onnx", tmp_path / "m.onnx", quantize="int8")


def test_export_savedmodel_never_overwrites_an_unrelated_folder(run_dir, tmp_path):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "thesis.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not empty and holds no SavedModel"):
        export(run_dir, "savedmodel", folder)
    assert (folder / "thesis.txt").read_text() == "keep me"
    first = export(run_dir, "savedmodel", tmp_path / "sm")
    again = export(run_dir, "savedmodel", tmp_path / "sm")  # replacing its own export is fine
    assert first.verified and again.verified


def test_export_python_with_given_weights_checks_against_those_weights(run_dir, trained, tmp_path):
    weights = tmp_path / "given.weights.h5"
    trained[0].save_weights(weights)
    result = export(run_dir / "project.json", "python", tmp_path / "given.py", weights=weights)
    assert result.verified, result.message
    assert "given.weights.h5" in result.path.read_text()


def test_cli_export_exits_1_when_the_reloaded_file_disagrees(
    run_dir, tmp_path, monkeypatch, capsys
):
    import engine.io.export

    monkeypatch.setattr(engine.io.export, "TOLERANCE", -1.0)  # no difference is small enough
    assert cli_export(args(run_dir, "keras", tmp_path / "strict.keras")) == 1
    assert "verification failed" in capsys.readouterr().out


def test_export_a_keras_model_file_directly(run_dir, tmp_path):
    result = export(run_dir / "model.keras", "onnx", tmp_path / "direct.onnx")
    assert result.verified, result.message
    with pytest.raises(ExportError, match="python export needs a project"):
        export(run_dir / "model.keras", "python", tmp_path / "direct.py")


def chain(shape: list, *layers: tuple[str, dict]) -> Project:
    project = Project(name="chain")
    graph, previous = project.graph, "x"
    graph.nodes["x"] = Node("x", "Input", {"shape": shape})
    for layer_type, params in layers:
        node_id = layer_type.lower()
        graph.nodes[node_id] = Node(node_id, layer_type, params)
        graph.edges.append(Edge(previous, node_id))
        previous = node_id
    return project


@pytest.mark.parametrize("fmt", ["savedmodel", "onnx"])
def test_export_serves_augmentation_layers_in_inference_mode(tmp_path, fmt):
    project = chain(
        [8, 8, 3],
        ("RandomFlip", {}),
        ("RandomRotation", {"factor": 0.2}),
        ("Conv2D", {"filters": 2, "kernel_size": 3}),
    )
    result = export(project, fmt, tmp_path / "augmented")
    assert result.verified, result.message


def test_export_bad_places_and_models_are_one_line_naming_what(tmp_path):
    dense = chain([4], ("Dense", {"units": 2}))
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match=r"onnx: cannot write .*a-file/m\.onnx"):
        export(dense, "onnx", blocker / "m")
    with pytest.raises(ExportError, match="give a file name for the keras export"):
        export(dense, "keras", Path("."))
    with pytest.raises(
        ExportError,
        match=r"at layer 'reshape' \(Reshape\): the model does "
        r"not run on a sample input of shape \(8, 4\)",
    ):
        export(chain([None, 4], ("Reshape", {"target_shape": [3, 4]})), "keras", tmp_path / "r")


def test_export_tflite_of_an_lstm_says_which_layer_needs_flex_ops(tmp_path):
    result = export(chain([3, 2], ("LSTM", {"units": 2})), "tflite", tmp_path / "l")
    assert not result.verified
    assert "layer 'lstm' (LSTM) needs TensorFlow's Flex ops" in result.message


def test_export_of_grouped_convolutions_and_3d_pooling_names_the_layer(tmp_path):
    grouped = chain([6, 6, 4], ("Conv2D", {"filters": 4, "kernel_size": 3, "groups": 2}))
    result = export(grouped, "onnx", tmp_path / "g")
    assert not result.verified
    assert "layer 'conv2d' (groups=2) is a grouped convolution" in result.message
    pooled = chain([4, 4, 4, 1], ("MaxPooling3D", {"pool_size": 2}))
    result = export(pooled, "tflite", tmp_path / "p")
    assert not result.verified
    assert "'maxpooling3d' (MaxPooling3D) needs TensorFlow's Flex ops" in result.message
