"""File > Import and File > Export in the window: a trained Keras model opens as an
editable project with its weights, Save As keeps the weights beside the project, and
the export dialog writes a file that predicts what the source model predicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.build.builder import build_model
from engine.build.weights import load_start_weights
from engine.model.project import load_project
from gui.main_window import MainWindow
from gui.training.export_dialog import wait_for_exports

keras = pytest.importorskip("keras")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "app" / "recovery"))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, object]:
    """A small trained model whose initializers the catalog can only approximate."""
    folder = tmp_path_factory.mktemp("source")
    init = keras.initializers.VarianceScaling(scale=2.0, mode="fan_out")
    x = keras.Input((4,), name="x")
    h = keras.layers.Dense(8, activation="relu", kernel_initializer=init, name="h1")(x)
    h = keras.layers.Dense(8, activation="relu", kernel_initializer=init, name="h2")(h)
    model = keras.Model(
        x, keras.layers.Dense(3, activation="softmax", name="out")(h), name="trained"
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((64, 4)), rng.integers(0, 3, 64), epochs=2, verbose=0)
    model.save(folder / "trained.keras")
    return folder / "trained.keras", model


@pytest.fixture
def window(qtbot, monkeypatch):
    said: list[tuple[str, str]] = []
    monkeypatch.setattr(MainWindow, "_warn", lambda self, t, m: said.append(("warn", m)))
    monkeypatch.setattr(MainWindow, "_inform", lambda self, t, m: said.append(("info", m)))
    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")
    w = MainWindow(load_tensorflow=False, check_recovery=False)
    w.said = said
    qtbot.addWidget(w)
    w.show()
    return w


def imported(window, qtbot, path) -> bool:
    """File > Import of ``path``, waiting for the background import to report."""
    with qtbot.waitSignal(window.import_path(path).finished, timeout=60_000) as signal:
        pass
    return signal.args[0]


def batch() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((5, 4)).astype("float32")


def test_import_then_save_as_keeps_the_trained_weights_beside_the_project(
    window, source, tmp_path, monkeypatch, qtbot
):
    path, model = source
    assert imported(window, qtbot, path)
    assert [n.type for n in window.project.graph.nodes.values()] == [
        "Input",
        "Dense",
        "Dense",
        "Dense",
    ]
    assert not window.is_clean(), "an import is unsaved work"
    assert (
        "Imported 3 layers from trained.keras with its weights"
        in window.statusBar().currentMessage()
    )
    # the importer's notes, one line for both layers with the same approximation
    [(kind, notes)] = window.said
    assert kind == "info" and notes.startswith("Imported 3 layers from trained.keras")
    assert notes.splitlines()[-1] == (
        "• 'h1', 'h2' (Dense): kernel_initializer "
        "VarianceScaling(scale=2.0, mode='fan_out') is "
        "approximated by 'variance_scaling' (only matters "
        "when training from scratch)"
    )

    saved = tmp_path / "projects" / "mine.json"
    saved.parent.mkdir()
    monkeypatch.setattr(MainWindow, "_ask_save_path", lambda self: str(saved))
    assert window.save_as() and window.is_clean()
    assert (saved.parent / "mine.weights.h5").is_file()
    reopened = load_project(saved)
    assert reopened.extra["weights"] == "mine.weights.h5"
    rebuilt = build_model(reopened)
    assert load_start_weights(rebuilt, reopened).fresh == []
    np.testing.assert_allclose(rebuilt(batch()), model(batch()), atol=1e-6)


def test_file_export_writes_the_imported_model_with_its_weights(window, source, tmp_path, qtbot):
    path, model = source
    assert imported(window, qtbot, path)
    dialog = window.export_model()
    assert "with the weights imported with it" in dialog.intro.text()
    out = tmp_path / "exported.keras"
    dialog.set_format("keras")
    dialog.path_edit.setText(str(out))
    with qtbot.waitSignal(dialog.finished_export, timeout=60_000) as signal:
        dialog.export_button.click()
    ok, message = signal.args
    assert ok, message
    assert dialog.result.verified and "starts from the imported weights" in dialog.result.message
    np.testing.assert_allclose(keras.models.load_model(out)(batch()), model(batch()), atol=1e-6)
    wait_for_exports()


def test_an_unreadable_model_is_named_and_the_open_project_stays(window, tmp_path, qtbot):
    before = window.project
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip file")
    assert not imported(window, qtbot, broken)
    [(kind, message)] = window.said
    assert kind == "warn" and "broken.keras" in message and "Traceback" not in message
    assert window.project is before


def test_the_training_panel_can_start_fresh_instead_of_from_imported_weights(window, source, qtbot):
    panel = window.training_dock.training_panel
    assert panel.imported_weights.isHidden(), "a project without weights has no such choice"
    assert imported(window, qtbot, source[0])
    box = panel.imported_weights
    assert not box.isHidden() and box.isChecked()
    assert box.text().startswith("Start from the imported weights (trained-")
    box.setChecked(False)
    assert window.project.training["imported_weights"] is False
    window.undo_stack.undo()
    assert "imported_weights" not in window.project.training and box.isChecked()
