"""Run history: the runs panel lists real runs, their differences and best metrics;
overlay, compare, resume and delete act on the selection."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.model.project import Project
from engine.train.history import list_runs
from engine.train.lock import acquire
from gui.paths import new_project_run_dir, project_runs_root
from gui.training.diff_view import DiffView
from gui.training.runs_panel import RunsPanel


def iris_project(epochs: int = 2) -> dict:
    nodes = [
        {"id": "input", "type": "Input", "params": {"shape": [4]}},
        {"id": "hidden", "type": "Dense", "params": {"units": 8, "activation": "relu"}},
        {"id": "out", "type": "Dense", "params": {"units": 3, "activation": "softmax"}},
    ]
    edges = [
        {"source": "input", "target": "hidden", "port": 0},
        {"source": "hidden", "target": "out", "port": 0},
    ]
    return {
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
            "epochs": epochs,
            "seed": 0,
            "tensorboard": False,
        },
    }


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    """One real two-epoch run on builtin:iris, made once for the module."""
    from engine.train.fit import run_training

    run_dir = tmp_path_factory.mktemp("trained") / "iris"
    final = run_training(iris_project(), run_dir)
    assert final["event"] == "done", final
    return run_dir


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.fixture
def history(real_run, tmp_path) -> tuple[Path, list[Path]]:
    """Three runs made from the real one, oldest first: the original; a lower learning
    rate with a better val_loss; more epochs, a wider hidden layer and a new Dropout,
    stopped early."""
    root = tmp_path / "iris-runs"
    root.mkdir()
    t0 = time.time() - 3600
    runs = []
    for i in range(3):
        run = root / f"run{i}"
        shutil.copytree(real_run, run)
        (run / "origin.json").write_text(json.dumps({"created": t0 + 600 * i}))
        runs.append(run)
    ends = [t0 + 42, t0 + 600 + 90, t0 + 1200 + 3725]  # 42 s, 1 min 30 s, 1 h 02 min

    def lower_lr(p):
        p["training"]["optimizer"]["learning_rate"] = 0.001

    edit_json(runs[1] / "project.json", lower_lr)
    edit_json(runs[1] / "history.json", lambda h: h["val_loss"].extend([0.05, 0.07]))

    def bigger(p):
        lower_lr(p)
        p["training"]["epochs"] = 5
        p["graph"]["nodes"][1]["params"]["units"] = 16
        p["graph"]["nodes"].append({"id": "drop", "type": "Dropout", "params": {"rate": 0.2}})
        p["graph"]["edges"][1] = {"source": "hidden", "target": "drop", "port": 0}
        p["graph"]["edges"].append({"source": "drop", "target": "out", "port": 0})

    edit_json(runs[2] / "project.json", bigger)
    edit_json(runs[2] / "status.json", lambda s: s.update(state="stopped", epochs_done=3))
    for run, end in zip(runs, ends):
        os.utime(run / "status.json", (end, end))
    return root, runs


@pytest.fixture
def panel(qtbot, history) -> RunsPanel:
    widget = RunsPanel()
    widget.open_dialogs = True
    qtbot.addWidget(widget)
    widget.resize(1000, 300)
    widget.set_root(history[0])
    return widget


def test_runs_panel_lists_runs_with_differences_and_best_metrics(panel, history, real_run):
    rows = panel.row_texts()
    assert len(rows) == 3
    # newest first; each says what changed from the run before it
    assert rows[0]["Status"] == "stopped" and rows[2]["Status"] == "finished"
    changes = rows[0]["Changes from the previous run"]
    assert "epochs 2→5" in changes and "+1 layer" in changes and "2 layers changed" in changes
    assert rows[1]["Changes from the previous run"] == "lr 0.01→0.001"
    assert rows[2]["Changes from the previous run"] == "first run"
    real_history = json.loads((real_run / "history.json").read_text())
    assert rows[2]["best val loss"] == f"{min(real_history['val_loss']):.4g}"
    assert rows[2]["best val accuracy"] == f"{max(real_history['val_accuracy']):.4g}"
    assert rows[1]["best val loss"] == "0.05"
    assert rows[2]["Epochs"] == "2" and rows[0]["Epochs"] == "3"
    assert [r["Duration"] for r in rows] == ["1 h 02 min", "1 min 30 s", "42 s"]


def test_runs_panel_overlay_emits_both_selected_runs(panel, history, qtbot):
    _, runs = history
    panel.select_runs([runs[0], runs[2]])
    with qtbot.waitSignal(panel.overlay_requested, timeout=1000) as signal:
        panel.overlay_action.trigger()
    assert sorted(signal.args[0]) == sorted(str(r) for r in (runs[0], runs[2]))


def test_runs_panel_compare_opens_diff_naming_layers_and_settings(panel, history, qtbot):
    _, runs = history
    panel.select_runs([runs[2], runs[0]])
    assert panel.compare_action.isEnabled()
    with qtbot.waitSignal(panel.compare_requested, timeout=1000) as signal:
        panel.compare_action.trigger()
    assert signal.args == [str(runs[0]), str(runs[2])]  # earlier run first
    dialog = panel.dialogs[-1]
    assert isinstance(dialog, DiffView) and dialog.isVisible()
    lines = dialog.layer_lines()
    assert "added drop (Dropout)" in lines
    assert "changed hidden (Dense): units 8→16" in lines
    assert "rewired out (Dense): inputs hidden → drop" in lines
    rows = dialog.setting_rows()
    assert ("training.epochs", "2", "5") in rows
    assert ("training.optimizer.learning_rate", "0.01", "0.001") in rows
    dialog.close()


def test_diff_view_of_identical_runs_says_so(qtbot, history):
    _, runs = history
    dialog = DiffView(runs[0], runs[0])
    qtbot.addWidget(dialog)
    assert dialog.layer_lines() == [] and dialog.setting_rows() == []
    assert dialog.layer_list.item(0).text() == "The two models have the same layers."


def test_runs_panel_resume_only_for_stopped_runs_with_a_checkpoint(panel, history, qtbot):
    _, runs = history
    panel.select_runs([runs[1]])  # finished
    assert not panel.resume_action.isEnabled()
    panel.select_runs([runs[2]])  # stopped, checkpoints/last.keras present
    assert panel.resume_action.isEnabled()
    with qtbot.waitSignal(panel.resume_requested, timeout=1000) as signal:
        panel.resume_action.trigger()
    assert signal.args == [str(runs[2])]
    (runs[2] / "checkpoints" / "last.keras").unlink()
    panel.refresh()
    panel.select_runs([runs[2]])
    assert not panel.resume_action.isEnabled()


def test_runs_panel_evaluate_and_export_need_their_files(panel, history, qtbot):
    _, runs = history
    panel.open_dialogs = False
    panel.select_runs([runs[1]])
    with qtbot.waitSignal(panel.evaluate_requested, timeout=1000) as signal:
        panel.evaluate_action.trigger()
    assert signal.args == [str(runs[1])]
    with qtbot.waitSignal(panel.export_requested, timeout=1000) as signal:
        panel.export_action.trigger()
    assert signal.args == [str(runs[1])]
    (runs[1] / "evaluation.json").unlink()
    (runs[1] / "model.keras").unlink()
    panel.refresh()
    assert panel.selected_runs() == [str(runs[1])]  # a refresh keeps the selection
    assert not panel.evaluate_action.isEnabled() and not panel.export_action.isEnabled()


def test_runs_panel_export_opens_the_export_dialog(panel, history):
    from gui.training.export_dialog import ExportDialog

    _, runs = history
    panel.select_runs([runs[1]])
    panel.export_action.trigger()
    dialog = panel.dialogs[-1]
    assert isinstance(dialog, ExportDialog) and dialog.isVisible()
    assert Path(dialog.path_edit.text()).is_relative_to(runs[1])
    dialog.close()
    # a listener of export_requested shows its own dialog: the panel opens none
    heard = []
    panel.export_requested.connect(heard.append)
    count = len(panel.dialogs)
    panel.export_action.trigger()
    assert heard == [str(runs[1])] and len(panel.dialogs) == count


def test_runs_panel_delete_asks_first(panel, history, qtbot):
    _, runs = history
    asked = []
    panel.confirm = lambda title, text: asked.append(text) or False
    panel.select_runs([runs[1]])
    panel.delete_action.trigger()
    assert runs[1].is_dir() and len(panel.row_texts()) == 3
    assert runs[1].name in asked[0]
    panel.confirm = lambda title, text: True
    with qtbot.waitSignal(panel.run_deleted, timeout=1000):
        panel.delete_action.trigger()
    assert not runs[1].exists()
    assert len(panel.row_texts()) == 2
    # the run after the deleted one is now compared with the first
    assert "lr 0.01→0.001" in panel.row_texts()[0]["Changes from the previous run"]


def test_runs_panel_double_click_evaluates(panel, history, qtbot):
    _, runs = history
    panel.show()
    qtbot.waitExposed(panel)
    rect = panel.table.visualItemRect(panel.table.item(1, 0))
    # a real double click: a press-release first, then the double click event
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    with qtbot.waitSignal(panel.evaluate_requested, timeout=1000) as signal:
        qtbot.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert signal.args == [str(runs[1])]


def test_runs_root_and_new_run_dir(tmp_path, monkeypatch, qtbot):
    monkeypatch.delenv("LAYERLAB_RUNS_DIR", raising=False)
    saved = Project(name="My net", path=tmp_path / "mynet.json")
    assert project_runs_root(saved) == tmp_path / "mynet-runs"
    monkeypatch.setenv("LAYERLAB_RUNS_DIR", str(tmp_path / "all"))
    project = Project(name="My net: v2/3")
    root = project_runs_root(project)
    assert root.parent == tmp_path / "all" and "/" not in root.name and ":" not in root.name
    first, second = new_project_run_dir(project), new_project_run_dir(project)
    assert first != second and first.is_dir() and second.is_dir()
    assert first.parent == root

    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_project(project)
    assert panel.row_texts() == [] and not panel.empty_label.isHidden()


def test_runs_panel_add_run_lists_and_selects_it(tmp_path, real_run, monkeypatch, qtbot):
    monkeypatch.setenv("LAYERLAB_RUNS_DIR", str(tmp_path))
    project = Project(name="iris mlp")
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_project(project)
    run = new_project_run_dir(project)
    panel._running_timer.setInterval(50)
    # a run folder just made (no snapshot yet) is watched until its run shows up
    qtbot.waitUntil(panel._running_timer.isActive, timeout=3000)
    shutil.copytree(real_run, run, dirs_exist_ok=True)
    qtbot.waitUntil(lambda: len(panel.row_texts()) == 1, timeout=3000)
    panel.add_run(run)
    assert panel.selected_runs() == [str(run)]
    assert [r.run_dir for r in list_runs(project_runs_root(project))] == [run]
    assert panel.row_texts()[0]["Status"] == "finished"


def test_runs_panel_follows_a_running_run_until_it_ends(panel, history, qtbot):
    _, runs = history
    status = runs[2] / "status.json"
    status.write_text(json.dumps({"state": "running", "epochs_done": 1}))
    lock = acquire(runs[2])  # a run in progress holds its folder's lock
    panel._running_timer.setInterval(50)
    panel.refresh()
    assert panel.row_texts()[0]["Status"] == "running"
    panel.select_runs([runs[2]])
    assert not panel.delete_action.isEnabled()  # a run in progress is never deleted
    status.write_text(json.dumps({"state": "done", "epochs_done": 2}))
    lock.release()
    qtbot.waitUntil(lambda: panel.row_texts()[0]["Status"] == "finished", timeout=3000)
    assert panel.delete_action.isEnabled()


def _luminance(image) -> float:
    """The brightest text pixel of a rendered widget (0..255)."""
    import numpy as np

    image = image.convertToFormat(image.Format.Format_RGB32)
    arr = np.frombuffer(image.constBits(), dtype=np.uint8)
    arr = arr.reshape(image.height(), image.bytesPerLine() // 4, 4)[:, : image.width(), :3]
    return float(np.percentile(arr.mean(axis=2), 99.5))


def test_runs_buttons_are_enabled_only_when_they_can_act_and_look_it(panel, history, qtbot):
    """Issue 15: Evaluate, Compare, Export and Resume looked enabled with no run
    selected (and did nothing)."""
    from PySide6.QtWidgets import QApplication, QToolButton

    from gui.theme import apply_theme

    _, runs = history
    buttons = {b.defaultAction(): b for b in panel.findChildren(QToolButton)}
    acts = (panel.evaluate_action, panel.compare_action, panel.export_action, panel.resume_action)
    panel.select_runs([])
    for action in acts:
        assert not action.isEnabled() and not buttons[action].isEnabled()
        assert action.toolTip().startswith("Select"), action.toolTip()
    panel.select_runs([runs[2]])  # stopped, with a checkpoint and a model
    assert [a.isEnabled() for a in acts] == [True, False, True, True]
    panel.select_runs([runs[1]])  # finished
    assert [a.isEnabled() for a in acts] == [True, False, True, False]
    assert "stopped run" in panel.resume_action.toolTip()
    panel.select_runs([runs[1], runs[2]])
    assert [a.isEnabled() for a in acts] == [False, True, False, False]

    app = QApplication.instance()
    panel.show()
    try:
        for dark in (True, False):
            apply_theme(app, dark)
            panel.select_runs([runs[1]])
            qtbot.wait(10)
            enabled = _luminance(buttons[panel.evaluate_action].grab().toImage())
            disabled = _luminance(buttons[panel.compare_action].grab().toImage())
            if dark:  # light text on dark: the disabled one is darker
                assert disabled < enabled - 40, (disabled, enabled)
    finally:
        apply_theme(app, False)
