"""The export dialog: a run exported in the background with its verification shown, and
clear one-line messages (never a traceback) when an export fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from gui.training.export_dialog import ExportDialog, wait_for_exports


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A real two-epoch run on builtin:iris, made once for the module."""
    from engine.train.fit import run_training

    nodes = [
        {"id": "input", "type": "Input", "params": {"shape": [4]}},
        {"id": "hidden", "type": "Dense", "params": {"units": 8, "activation": "relu"}},
        {"id": "out", "type": "Dense", "params": {"units": 3, "activation": "softmax"}},
    ]
    edges = [
        {"source": "input", "target": "hidden", "port": 0},
        {"source": "hidden", "target": "out", "port": 0},
    ]
    proj = {
        "format": "layerlab",
        "version": 1,
        "name": "iris mlp",
        "graph": {"nodes": nodes, "edges": edges},
        "data": {"source": "builtin:iris", "validation_split": 0.3},
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": 0.01},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "batch_size": 32,
            "epochs": 2,
            "seed": 0,
            "tensorboard": False,
        },
    }
    run = tmp_path_factory.mktemp("export-runs") / "iris"
    final = run_training(proj, run)
    assert final["event"] == "done", final
    return run


@pytest.fixture
def dialog(qtbot, run_dir):
    widget = ExportDialog(run_dir)
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    wait_for_exports()


def test_export_dialog_exports_a_run_to_keras_with_verification(dialog, tmp_path, qtbot):
    out = tmp_path / "out" / "iris.keras"
    dialog.set_format("keras")
    dialog.path_edit.setText(str(out))
    with qtbot.waitSignal(dialog.finished_export, timeout=60_000) as signal:
        dialog.export_button.click()
        # the click returns at once: the export runs in the background
        assert dialog.is_running() and dialog.progress.isVisible()
        assert not dialog.export_button.isEnabled()
    ok, message = signal.args
    assert ok and out.is_file()
    assert dialog.result.verified and dialog.result.max_abs_diff is not None
    text = dialog.message()
    assert text.startswith("Verified") and str(out) in text
    assert f"max |diff| {dialog.result.max_abs_diff:.2g}" in text and "Size: " in text
    assert text.count("max |diff|") == 1  # said once, not again beside the size
    assert not dialog.progress.isVisible() and dialog.export_button.isEnabled()


def test_export_dialog_shows_a_converter_failure_in_one_line(dialog, tmp_path, qtbot, monkeypatch):
    import keras

    def broken_export(self, filepath, format="tf_saved_model", **kwargs):
        raise RuntimeError(
            "Unsupported ops in layer hidden: FancyOp\n"
            'Traceback (most recent call last):\n  File "x.py", line 1'
        )

    monkeypatch.setattr(keras.Model, "export", broken_export)
    dialog.set_format("onnx")
    dialog.path_edit.setText(str(tmp_path / "iris.onnx"))
    with qtbot.waitSignal(dialog.finished_export, timeout=60_000) as signal:
        dialog.export_button.click()
    ok, message = signal.args
    assert not ok
    assert message.startswith("onnx export failed") and "FancyOp" in message
    assert "hidden" in message
    assert "Traceback" not in dialog.message() and 'File "' not in dialog.message()
    assert dialog.message() == message
    assert dialog.export_button.isEnabled()


def test_export_dialog_unexpected_error_is_one_line(dialog, tmp_path, qtbot, monkeypatch):
    from engine.io import export as export_module

    def crash(*args, **kwargs):
        raise OSError("disk full while writing iris.h5\nTraceback (most recent call last):")

    monkeypatch.setattr(export_module, "export", crash)
    dialog.set_format("h5")
    dialog.path_edit.setText(str(tmp_path / "iris.h5"))
    with qtbot.waitSignal(dialog.finished_export, timeout=10_000) as signal:
        dialog.export_button.click()
    assert signal.args[1] == "h5 export failed: disk full while writing iris.h5"
    assert "Traceback" not in dialog.message()


def test_export_dialog_bad_path_is_reported(dialog, tmp_path, qtbot):
    dialog.set_format("keras")
    dialog.path_edit.setText(str(tmp_path / "model.txt"))
    with qtbot.waitSignal(dialog.finished_export, timeout=10_000) as signal:
        dialog.export_button.click()
    assert not signal.args[0]
    assert "model.txt" in signal.args[1] and ".keras" in signal.args[1]


def test_export_dialog_options_follow_the_format(dialog):
    dialog.set_format("tflite")
    assert dialog.quantize_box.isEnabled()
    assert dialog.path_edit.text().endswith(".tflite")
    dialog.quantize_box.setCurrentIndex(dialog.quantize_box.findData("int8"))
    dialog.set_format("python")
    assert not dialog.quantize_box.isEnabled()
    assert dialog.quantize_box.currentData() == "none"
    assert dialog.path_edit.text().endswith(".py")
    dialog.set_format("savedmodel")
    assert Path(dialog.path_edit.text()).suffix == ""


def test_export_dialog_exports_an_untrained_project(qtbot, tmp_path):
    from engine.model.project import Project

    project = Project.from_dict(
        {
            "format": "layerlab",
            "version": 1,
            "name": "tiny",
            "graph": {
                "nodes": [
                    {"id": "input", "type": "Input", "params": {"shape": [3]}},
                    {"id": "out", "type": "Dense", "params": {"units": 2}},
                ],
                "edges": [{"source": "input", "target": "out", "port": 0}],
            },
        }
    )
    project.path = tmp_path / "tiny.json"
    widget = ExportDialog(project)
    qtbot.addWidget(widget)
    assert "untrained" in widget.windowTitle()
    assert Path(widget.path_edit.text()) == tmp_path / "tiny.keras"
    with qtbot.waitSignal(widget.finished_export, timeout=60_000) as signal:
        widget.export_button.click()
    assert signal.args[0], signal.args[1]
    assert (tmp_path / "tiny.keras").is_file()
