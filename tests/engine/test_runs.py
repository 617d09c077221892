"""Run folders: the one naming rule (command line and window), and the run history."""

from __future__ import annotations

import json
import time
from pathlib import Path

from engine.model.project import Project
from engine.train.history import list_runs, read_run_info, settings_diff
from engine.train.runs import ORIGIN, new_run_dir, runs_root, write_status


def test_cli_rule_names_runs_after_the_project_and_does_not_create_them(tmp_path):
    first = new_run_dir(tmp_path / "my net.json", tmp_path / "runs")
    assert first.parent == tmp_path / "runs" and not first.exists()
    assert first.name.startswith("my-net-") and len(first.name) == len("my-net-") + 15
    first.mkdir(parents=True)
    second = new_run_dir(tmp_path / "my net.json", tmp_path / "runs")
    assert second.name == f"{first.name}-2"
    assert new_run_dir("", tmp_path).name.startswith("run-")


def test_window_rule_creates_stamp_folders_with_their_origin(tmp_path):
    project_file = tmp_path / "m.json"
    first = new_run_dir(None, tmp_path / "r", create=True, project_file=project_file)
    second = new_run_dir(None, tmp_path / "r", create=True, project_file=project_file)
    assert first.is_dir() and second.is_dir() and first != second
    assert first.name[:8].isdigit() and "-" in first.name
    origin = json.loads((first / ORIGIN).read_text())
    assert origin["project"] == str(project_file)
    assert abs(origin["created"] - time.time()) < 60


def test_runs_root_rules(tmp_path, monkeypatch):
    monkeypatch.delenv("LAYERLAB_RUNS_DIR", raising=False)
    saved = Project(name="x", path=tmp_path / "mynet.json")
    assert runs_root(saved, tmp_path / "data") == tmp_path / "mynet-runs"
    unsaved = Project(name="My net: v2/3")
    root = runs_root(unsaved, tmp_path / "data")
    assert root.parent == tmp_path / "data" / "runs" and "/" not in root.name
    monkeypatch.setenv("LAYERLAB_RUNS_DIR", str(tmp_path / "all"))
    assert runs_root(saved, tmp_path / "data").parent == tmp_path / "all"


def _fake_run(run_dir: Path, lr: float, history: dict, state: str = "done") -> None:
    run_dir.mkdir(parents=True)
    project = {
        "name": "p",
        "graph": {"nodes": [], "edges": []},
        "training": {"optimizer": {"type": "Adam", "learning_rate": lr}},
    }
    (run_dir / "project.json").write_text(json.dumps(project))
    (run_dir / "history.json").write_text(json.dumps(history))
    write_status(run_dir, state, epochs_done=len(history.get("loss", [])))


def test_list_runs_newest_first_with_best_metrics_and_settings_diff(tmp_path):
    older, newer = tmp_path / "20240101-120000", tmp_path / "20240102-120000"
    _fake_run(
        older, 0.001, {"loss": [1.0, 0.5], "val_loss": [0.9, 0.7], "val_accuracy": [0.5, 0.6]}
    )
    _fake_run(newer, 0.01, {"loss": [1.0], "val_loss": [0.8]}, state="stopped")
    (tmp_path / "not-a-run").mkdir()
    runs = list_runs(tmp_path)
    assert [r.run_dir for r in runs] == [newer, older]
    info = read_run_info(older)
    assert info.status == "finished" and info.epochs == 2
    assert info.best == {"val_loss": 0.7, "val_accuracy": 0.6}
    assert runs[0].status == "stopped" and not runs[0].can_resume
    assert settings_diff(older, newer) == [("training.optimizer.learning_rate", 0.001, 0.01)]
    assert list_runs(tmp_path / "missing") == []
