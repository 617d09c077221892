"""Issue 15: File > Export asks which run (latest finished by default) or the untrained
project; the Evaluation tab shows the latest finished run on its own."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine.model.project import Project, save_project
from gui.main_window import MainWindow
from gui.paths import project_runs_root
from gui.training.dock import NO_RUN_YET
from gui.training.export_dialog import UNTRAINED, ExportChoice, ExportDialog


def iris_dict() -> dict:
    return {
        "format": "layerlab",
        "version": 1,
        "name": "iris",
        "graph": {
            "nodes": [
                {"id": "input", "type": "Input", "params": {"shape": [4]}},
                {"id": "out", "type": "Dense", "params": {"units": 3, "activation": "softmax"}},
            ],
            "edges": [{"source": "input", "target": "out", "port": 0}],
        },
        "data": {"source": "builtin:iris", "validation_split": 0.3},
        "training": {"loss": "sparse_categorical_crossentropy", "epochs": 2},
    }


def fake_run(root: Path, name: str, state: str, created: float, model: bool = True) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "project.json").write_text(json.dumps(iris_dict()))
    (run / "origin.json").write_text(json.dumps({"created": created}))
    (run / "status.json").write_text(json.dumps({"state": state, "epochs_done": 2}))
    (run / "history.csv").write_text("epoch,loss,val_loss,val_accuracy\n1,1.0,1.1,0.5\n")
    if model:
        (run / "model.keras").write_bytes(b"not read here")
        (run / "evaluation.json").write_text(json.dumps({"metrics": {"accuracy": 0.9}}))
    return run


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "recovery"))
    monkeypatch.delenv("LAYERLAB_RUNS_DIR", raising=False)


@pytest.fixture
def window(qtbot, tmp_path):
    path = tmp_path / "iris.json"
    project = Project.from_dict(iris_dict(), path=path)
    save_project(project, path)
    w = MainWindow(project, load_tensorflow=False, check_recovery=False, use_settings=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.undo_stack.set_clean()


@pytest.fixture
def runs(window):
    root = project_runs_root(window.project)
    now = time.time()
    return {
        "old": fake_run(root, "20260101-100000", "done", now - 300),
        "latest": fake_run(root, "20260101-110000", "done", now - 200),
        "stopped": fake_run(root, "20260101-120000", "stopped", now - 100),
        "failed": fake_run(root, "20260101-130000", "failed", now - 50, model=False),
    }


def _close(dialog):
    if dialog is not None:
        dialog.close()


def test_export_asks_which_run_and_defaults_to_the_latest_finished(window, runs, monkeypatch):
    seen = []

    def ask(self, listed):
        chooser = ExportChoice(listed, self)
        seen.append([chooser.list.item(i).text() for i in range(chooser.list.count())])
        seen.append(chooser.choice())
        chooser.deleteLater()
        return chooser.choice()

    monkeypatch.setattr(MainWindow, "_ask_export_source", ask)
    dialog = window.export_model()
    texts, default = seen
    assert default == str(runs["latest"])
    assert len(texts) == 4  # three runs with a model, and the untrained project
    assert texts[0].startswith("Run #3 (stopped") and texts[1].startswith("Run #2 (finished")
    assert "untrained" in texts[-1]
    assert isinstance(dialog, ExportDialog) and str(dialog.source) == str(runs["latest"])
    assert "untrained" not in dialog.windowTitle()
    _close(dialog)


def test_export_of_the_untrained_project_is_still_offered(window, runs, monkeypatch):
    monkeypatch.setattr(MainWindow, "_ask_export_source", lambda self, r: UNTRAINED)
    dialog = window.export_model()
    assert isinstance(dialog.source, Project) and "untrained" in dialog.windowTitle()
    _close(dialog)
    monkeypatch.setattr(MainWindow, "_ask_export_source", lambda self, r: None)
    assert window.export_model() is None  # cancelled


def test_export_without_runs_goes_straight_to_the_project(window, monkeypatch):
    def never(self, r):
        raise AssertionError("nothing to choose from")

    monkeypatch.setattr(MainWindow, "_ask_export_source", never)
    dialog = window.export_model()
    assert isinstance(dialog.source, Project)
    _close(dialog)


def test_evaluation_tab_shows_the_latest_finished_run_on_its_own(window, runs, qtbot):
    dock = window.training_dock
    dock.show()
    dock.build()
    dock.view_tabs.setCurrentWidget(dock.evaluation_view)
    assert dock.evaluation_view.run_dir == runs["latest"]
    # a run chosen in Runs > Evaluate stays shown when the tab comes back
    dock.evaluate_run(str(runs["old"]))
    dock.view_tabs.setCurrentWidget(dock.live)
    dock.view_tabs.setCurrentWidget(dock.evaluation_view)
    assert dock.evaluation_view.run_dir == runs["old"]
    # a new run that ends replaces it
    newest = fake_run(project_runs_root(window.project), "20260101-140000", "done", time.time())
    dock.run_finished.emit(str(newest))
    assert dock.evaluation_view.run_dir == newest


def test_evaluation_tab_says_when_there_is_no_run_yet(window):
    dock = window.training_dock
    dock.show()
    dock.build()
    dock.view_tabs.setCurrentWidget(dock.evaluation_view)
    assert dock.evaluation_view.run_dir is None
    assert dock.evaluation_view.message() == NO_RUN_YET
