"""The Inside tab (issue 19): computed by ``layerlab inspect`` in a child process,
drawn in the window without TensorFlow.

The runs (LeNet-5 on digits, 2 epochs; an xor MLP, 5 epochs) are trained by
``layerlab train`` in a subprocess, so this test process never loads TensorFlow and
can check that looking inside does not load it either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.model.project import load_project
from presets import presets_dir
from tests.engine.test_inside import xor_project

ROOT = Path(__file__).resolve().parents[2]


def train(project: dict, folder: Path) -> Path:
    folder.mkdir(parents=True)
    path = folder / "project.json"
    path.write_text(json.dumps(project))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = folder / "run"
    subprocess.run(
        [sys.executable, "-m", "engine.cli", "train", str(path), "--out", str(run)],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inside")
    lenet = load_project(presets_dir() / "lenet5.json").to_dict()
    lenet["training"].update(epochs=2, batch_size=64, tensorboard=False)
    return {"lenet": train(lenet, root / "lenet"), "xor": train(xor_project(5), root / "xor")}


@pytest.fixture
def view(qtbot):
    from gui.training.inside_view import InsideView

    v = InsideView()
    v.resize(900, 700)
    qtbot.addWidget(v)
    v.show()
    return v


def test_the_inside_tab_looks_inside_a_run_in_a_child_process(runs, view, qtbot, tmp_path):
    tf_before = "tensorflow" in sys.modules
    view.input_row.sample_box.setValue(4)
    with qtbot.waitSignal(view.finished, timeout=120_000) as done:
        view.show_run(runs["lenet"])
        assert not view.show_button.isEnabled()  # the window goes on while it computes
    assert done.args == [True]
    assert ("tensorflow" in sys.modules) == tf_before  # the window never loads TensorFlow
    assert view.manifest["sample"] == 4
    names = [row["name"] for row in view.manifest["layers"]]
    assert names[:3] == ["input", "conv1", "pool1"] and names[-1] == "output"
    assert view.status.text().startswith("Sample 4: 9 layers")
    # activations: one card per layer; health: gradient bars and a layer per histogram
    boxes = [i for i in view.activations.ci.items if type(i).__name__ == "ViewBox"]
    assert len(boxes) == len(names)
    assert view.layer_box.count() == 5  # conv1, conv2, fc1, fc2, output
    assert "Epoch 2" in view.warnings_label.text() or "⚠" in view.warnings_label.text()
    assert view.manifest["grad_cam"]["layer"] == "conv2"
    for i in range(view.tabs.count()):
        view.tabs.setCurrentIndex(i)
        qtbot.wait(10)
        assert not view.grab().toImage().isNull()


def test_the_decision_boundary_of_two_feature_data(runs, view, qtbot):
    with qtbot.waitSignal(view.finished, timeout=120_000):
        view.show_run(runs["xor"])
    assert view.manifest["decision_boundary"]
    items = view.boundary_plot.getPlotItem().items
    assert {type(i).__name__ for i in items} >= {"ImageItem", "ScatterPlotItem"}
    assert "grad_cam" not in view.manifest


def test_a_run_that_cannot_be_read_is_said_in_words(view, qtbot, tmp_path):
    with qtbot.waitSignal(view.finished, timeout=120_000) as done:
        view.show_run(tmp_path)
    assert done.args == [False]
    assert view.status.text().startswith("Could not look inside:")
    assert "model.keras: not found" in view.status.text()
    assert view.show_button.isEnabled()


def test_a_child_that_cannot_start_is_said_in_words(view, qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(view, "command", lambda: [str(tmp_path / "no-python"), "-m", "x"])
    with qtbot.waitSignal(view.finished, timeout=10_000) as done:
        view.show_run(tmp_path)
    assert done.args == [False]
    assert view.status.text().startswith("Could not look inside:")
    assert view.show_button.isEnabled()


def drop(widget, path: Path) -> bool:
    """Drag the file at ``path`` onto ``widget`` and drop it; whether the enter was accepted."""
    from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    action, button = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton
    no_keys = Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPoint(10, 10), action, mime, button, no_keys)
    QApplication.sendEvent(widget, enter)
    QApplication.sendEvent(widget, QDropEvent(QPointF(10, 10), action, mime, button, no_keys))
    return enter.isAccepted()


def test_a_dropped_file_is_looked_inside(runs, view, qtbot, tmp_path):
    from engine.cli.inspect import png

    with qtbot.waitSignal(view.finished, timeout=120_000):
        view.show_run(runs["lenet"])
    assert view.input_row.source_label.text() == "sample 0 of validation"
    bad = tmp_path / "text.png"
    bad.write_text("not a picture")
    with qtbot.waitSignal(view.finished, timeout=120_000) as done:
        drop(view, bad)  # refused while a sample is drawn: the row goes back to the samples
    assert done.args == [False] and view.status.text().endswith("Still showing sample 0.")
    assert view.input_row.file is None and view.input_row.sample_box.isEnabled()
    assert not view.input_row.samples_button.isVisibleTo(view)
    picture = np.zeros((32, 32, 3), np.uint8)
    picture[4:28, 13:19] = 255  # a "1"
    path = tmp_path / "one.png"
    path.write_bytes(png(picture))
    for area in (view.activations, view.pictures, view.gradient_plot, view.boundary_plot):
        target = area.viewport()  # where a file dropped on the pictures goes (Qt's rule)
        while not target.acceptDrops():
            target = target.parentWidget()
        assert target is view
    with qtbot.waitSignal(view.finished, timeout=120_000) as done:
        assert drop(view, path)
    assert done.args == [True]
    assert view.manifest["file"] == str(path) and view.manifest["sample"] is None
    assert view.input_row.source_label.text() == "file one.png"
    assert view.status.text().startswith("File one.png: 9 layers")
    boxes = [i for i in view.activations.ci.items if type(i).__name__ == "ViewBox"]
    assert len(boxes) == 9  # the activation cards are drawn
    thumb = view.input_row.thumb.pixmap().toImage()
    assert view.input_row.thumb.isVisible() and thumb.width() == 40
    column = [thumb.pixelColor(x, 20).red() for x in range(40)]
    assert max(column[17:23]) > 200 and column[2] < 50  # the bar, bright on black
    assert view.manifest["grad_cam"]["layer"] == "conv2"
    # a file that is not an image: said in the status line, the last pictures stay
    with qtbot.waitSignal(view.finished, timeout=120_000) as done:
        drop(view, bad)
    assert done.args == [False]
    assert view.status.text().startswith(f"Could not look inside: {bad}: not an image")
    assert "8×8×1 images" in view.status.text()
    assert view.status.text().endswith("Still showing file one.png.")
    row = view.input_row  # the row names the input still drawn, and Look inside redraws it
    assert row.source_label.text() == "file one.png" and row.file == str(path)
    assert row.which() == "file one.png"
    # back to the validation samples
    view.input_row.sample_box.setValue(2)
    with qtbot.waitSignal(view.finished, timeout=120_000):
        view.input_row.samples_button.click()
    assert view.manifest["sample"] == 2 and "file" not in view.manifest
    assert view.input_row.source_label.text() == "sample 2 of validation"
    assert not view.input_row.samples_button.isVisible()
