"""Issue 15: without a file LayerLab shows a start page (new, presets with their measured
accuracy, open, recent files) instead of LeNet-5; after a crash it offers the last project."""

from __future__ import annotations

import json

import pytest

from engine.model.project import Project, save_project
from gui.main_window import MainWindow
from gui.start_page import measured_results


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "recovery"))


def _window(qtbot, **kw) -> MainWindow:
    kw.setdefault("check_recovery", False)
    w = MainWindow(load_tensorflow=False, start_page=True, **kw)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_start_page_instead_of_lenet(qtbot):
    w = _window(qtbot)
    assert w.on_start_page() and w.start_page.isVisible()
    assert not any(n.type == "Conv2D" for n in w.project.graph.nodes.values())  # not LeNet-5
    assert not w.palette_dock.isVisible() and not w.training_dock.isVisible()
    texts = w.start_page.preset_texts()
    lenet = next(t for t in texts if t.startswith("LeNet-5"))
    assert "96.1% val accuracy" in lenet and "\n" in lenet  # result and description
    assert measured_results()["mlp"].endswith("val accuracy")
    w.start_page.gallery.setCurrentRow(texts.index(lenet))
    w.start_page._preset(w.start_page.gallery.currentItem())
    assert not w.on_start_page() and w.view.isVisible() and w.palette_dock.isVisible()
    assert any(n.type == "Conv2D" for n in w.project.graph.nodes.values())
    assert w.project.path is None  # a preset is a template


def test_new_and_recent_from_the_start_page(qtbot, tmp_path):
    path = tmp_path / "iris.json"
    save_project(Project(name="iris"), path)
    first = _window(qtbot)
    first.open_path(path)
    first.close()
    w = _window(qtbot)
    recent = w.start_page.recent
    assert recent.count() == 1 and "iris.json" in recent.item(0).text()
    recent.itemActivated.emit(recent.item(0))
    assert not w.on_start_page() and str(w.project.path) == str(path.resolve())
    w.show_start_page()
    w.start_page.new_button.click()
    assert not w.on_start_page() and w.project.path is None


def test_after_a_crash_the_start_offers_the_last_project_by_name(qtbot, tmp_path, monkeypatch):
    path = tmp_path / "iris.json"
    project = Project(name="my iris")
    save_project(project, path)
    recovery = tmp_path / "recovery"
    recovery.mkdir()
    (recovery / "recovery-999999.json").write_text(  # what a crashed session left
        json.dumps(
            {"pid": 999999, "saved_at": 1.0e9, "path": str(path), "project": project.to_dict()}
        )
    )
    asked = []
    monkeypatch.setattr(MainWindow, "_ask_restore", lambda self, q: asked.append(q) or True)
    w = _window(qtbot, check_recovery=True)
    qtbot.waitUntil(lambda: bool(asked))
    assert "iris.json" in asked[0] and "my iris" in asked[0]
    assert not w.on_start_page() and w.project.name == "my iris"
    w.undo_stack.set_clean()
    w._unsaved_restore = False


def test_screenshot_with_a_project_still_renders_the_editor(tmp_path):
    from gui.app import screenshot

    out = tmp_path / "shot.png"
    src = tmp_path / "p.json"
    src.write_text(
        json.dumps(
            {
                "format": "layerlab",
                "version": 1,
                "name": "p",
                "graph": {
                    "nodes": [{"id": "input", "type": "Input", "params": {"shape": [4]}}],
                    "edges": [],
                },
            }
        )
    )
    assert screenshot(src, out, "800x600") == 0 and out.stat().st_size > 1000
