"""The one GUI module that waits for TensorFlow: shapes, totals, shape problems, screenshots."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage

from engine.analysis.validation import validate
from engine.model.project import load_project
from gui.app import screenshot
from gui.main_window import MainWindow
from presets import presets_dir

LENET = presets_dir() / "lenet5.json"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "recovery"))


@pytest.fixture(scope="module")
def lenet_report():
    return validate(load_project(LENET)).to_dict()


@pytest.fixture
def window(qtbot, monkeypatch):
    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")
    w = MainWindow(load_project(LENET), check_recovery=False)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.validation.tensorflow_ready, timeout=120_000):
        w.show()
    return w


def test_shapes_and_totals_appear_once_tensorflow_is_ready(window, lenet_report):
    assert window.tf_label.isHidden(), "the loading message goes away"
    window.show_summary()  # a hidden summary is built when it is shown
    rows = {r[0]: r for r in window.summary.rows()}
    for layer in lenet_report["layers"]:
        shape = (
            "(" + ", ".join("None" if d is None else str(d) for d in layer["output_shape"]) + ")"
        )
        assert rows[layer["id"]][2] == shape
        assert rows[layer["id"]][3] == f"{layer['params']:,}"
    total = lenet_report["total_params"]
    assert f"Total params: {total:,}" in window.summary.totals.text()
    assert "MB at float32" in window.summary.totals.text()
    assert f"{total:,} params" in window.params_label.text()


def test_an_edit_updates_shapes_and_a_bad_kernel_becomes_a_problem(window, qtbot):
    graph = window.project.graph
    conv = next(n.id for n in graph.nodes.values() if n.type == "Conv2D")
    window.scene.select_ids([conv])
    filters = window.inspector.form.editors["filters"]
    filters.spin.setValue(filters.spin.value() + 2)
    want = graph.nodes[conv].params["filters"]
    qtbot.waitUntil(lambda: window.validation.info[conv].output_shape[-1] == want, timeout=5000)
    assert f", {want})" in window.inspector.shape.text()
    kernel = window.inspector.form.editors["kernel_size"]
    kernel.line.setText("7, 7")
    kernel.line.editingFinished.emit()
    editor = window.inspector.form.editors["padding"]
    editor.combo.setCurrentIndex(editor.combo.findData("valid"))
    editor.combo.activated.emit(editor.combo.currentIndex())
    # A 7x7 'valid' kernel shrinks the 8x8 digits so much that a later layer cannot run.
    qtbot.waitUntil(
        lambda: any(p.severity == "error" for p in window.validation.problems), timeout=5000
    )
    errors, _ = window.problems.counts()
    assert errors >= 1
    window.undo_stack.undo()
    window.undo_stack.undo()
    qtbot.waitUntil(lambda: not window.validation.problems, timeout=5000)


def test_screenshot_writes_the_window_at_the_requested_size(tmp_path):
    out = tmp_path / "shot.png"
    assert screenshot(LENET, out, "1000x700") == 0
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1000, 700)
    colours = {image.pixel(x, y) for x in range(0, 1000, 50) for y in range(0, 700, 50)}
    assert len(colours) >= 4, "the window was rendered, not a blank image"


def test_screenshot_of_a_missing_file_exits_2(tmp_path, capsys):
    assert screenshot(tmp_path / "nope.json", tmp_path / "x.png") == 2
    assert "nope.json" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
