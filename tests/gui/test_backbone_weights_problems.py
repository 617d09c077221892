"""The window's Problems list shows a Backbone's missing weights file (checked by the
engine service, off the UI thread, relative to the project's folder)."""

from __future__ import annotations

from engine.model.graph import Edge, Graph, Node
from engine.model.project import Project, load_project, save_project


def test_problems_list_names_the_missing_weights_file(qtbot, tmp_path):
    from gui.validation_controller import ValidationController

    g = Graph()
    g.add_node(Node("image", "Input", {"shape": [32, 32, 3]}))
    g.add_node(
        Node("backbone", "Backbone", {"application": "MobileNet", "weights": "w/mine.weights.h5"})
    )
    g.connect(Edge("image", "backbone"))
    project = Project(name="t")
    project.graph = g
    save_project(project, tmp_path / "p.json")
    controller = ValidationController(load_tensorflow=False)
    controller.set_project(load_project(tmp_path / "p.json"))
    controller.load_tensorflow_now()
    messages = [p.message for p in controller.problems if p.node == "backbone"]
    assert any(str(tmp_path / "w" / "mine.weights.h5") in m for m in messages), messages


def test_a_preset_opened_from_the_gallery_keeps_its_weights_file(qtbot, monkeypatch):
    """Presets open as untitled templates; transfer-digits' weights file, next to the
    preset, must still be found (its path becomes absolute)."""
    from gui.main_window import MainWindow
    from presets import presets_dir

    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")
    w = MainWindow(
        None, load_tensorflow=False, check_recovery=False, use_settings=False, autosave=False
    )
    qtbot.addWidget(w)
    w.new_from_preset(presets_dir() / "transfer-digits.json")
    weights = w.project.graph.nodes["backbone"].params["weights"]
    assert w.project.path is None
    assert weights == str(presets_dir() / "transfer-digits-backbone.weights.h5")
