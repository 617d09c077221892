"""Issue 15, in the window: Save As of an Untitled project names it after its file and
takes its runs along; File > New does not show them; the command line trains into
the folder the window lists."""

from __future__ import annotations

import types

import pytest

import gui.paths
from engine.cli.train import project_and_run_dir
from engine.codegen.script import generate
from engine.model.project import load_project, new_project
from engine.train.runs import write_json
from gui.main_window import MainWindow
from gui.paths import new_project_run_dir, project_runs_root


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "recovery"))
    monkeypatch.delenv("LAYERLAB_RUNS_DIR", raising=False)
    monkeypatch.setattr(gui.paths, "app_data_dir", lambda: tmp_path / "appdata")


def make_window(qtbot, project):
    w = MainWindow(project, load_tensorflow=False, check_recovery=False, use_settings=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def train_fake(project):
    """A finished run through the window's own folder rule (no TensorFlow)."""
    run = new_project_run_dir(project)
    write_json(run / "project.json", project.to_dict())
    write_json(run / "status.json", {"state": "done", "epochs_done": 1})
    return run


def test_iris_untitled_save_as_names_it_and_keeps_its_runs(qtbot, tmp_path, monkeypatch):
    w = make_window(qtbot, new_project())
    assert w.project.name == "Untitled" and w.project.path is None
    w.training_dock.build()
    panel = w.training_dock.runs_panel
    train_fake(w.project)
    panel.refresh()
    assert len(panel.runs) == 1

    path = tmp_path / "work" / "iris.json"
    path.parent.mkdir()
    monkeypatch.setattr(MainWindow, "_ask_save_path", lambda self: str(path))
    assert w.save_as()

    # named after its file, in the window, on disk and in the generated script
    assert w.project.name == "iris" and load_project(path).name == "iris"
    assert generate(w.project).splitlines()[0] == '"""iris'
    assert "iris" in w.windowTitle()
    # its runs moved with it, next to the file, and the Runs tab shows them there
    assert project_runs_root(w.project) == tmp_path / "work" / "iris-runs"
    assert panel.root == tmp_path / "work" / "iris-runs" and len(panel.runs) == 1
    train_fake(w.project)
    panel.refresh()
    assert len(panel.runs) == 2
    # `layerlab train iris.json` writes where the window lists
    args = types.SimpleNamespace(project=str(path), resume=None, out=None)
    _, cli_dir = project_and_run_dir(args)
    assert cli_dir.parent == panel.root

    # File > New: a fresh Untitled project shows none of iris's runs
    w.new_file()
    assert w.project.name == "Untitled" and w.project.path is None
    assert panel.root != tmp_path / "work" / "iris-runs"
    assert panel.runs == [] and panel.row_texts() == []


def test_a_named_project_keeps_its_name_on_save_as(qtbot, tmp_path, monkeypatch):
    w = make_window(qtbot, new_project("My net"))
    path = tmp_path / "iris.json"
    monkeypatch.setattr(MainWindow, "_ask_save_path", lambda self: str(path))
    assert w.save_as()
    assert w.project.name == "My net" and load_project(path).name == "My net"


def test_failed_save_as_changes_nothing(qtbot, tmp_path, monkeypatch):
    w = make_window(qtbot, new_project())
    run = train_fake(w.project)
    monkeypatch.setattr(MainWindow, "_warn", lambda self, title, message: None)
    missing = tmp_path / "no such folder" / "iris.json"
    monkeypatch.setattr(MainWindow, "_ask_save_path", lambda self: str(missing))
    assert not w.save_as()
    assert w.project.name == "Untitled" and w.project.path is None
    assert run.is_dir() and run.parent == project_runs_root(w.project)
