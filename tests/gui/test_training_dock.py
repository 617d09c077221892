"""Training from the main window: Train, live curves, failures, settings, data fit.

Two real runs start TensorFlow in a worker process (a tiny iris model, 3 epochs;
a run with an exploding learning rate); a third worker is killed before it loads
TensorFlow. Everything else runs without TensorFlow.
"""

from __future__ import annotations

import json
import os
import signal

import pytest
from PySide6.QtCore import Qt

from engine.model.commands import SetSection
from engine.model.graph import Edge, Node
from engine.model.project import Project, save_project
from gui.main_window import MainWindow
from gui.training.dock import TrainingDock

TIMEOUT_MS = 120_000


def iris_project(input_shape: int = 4) -> Project:
    project = Project(name="iris")
    project.graph.add_node(Node("input", "Input", {"shape": [input_shape]}, (0, 0)))
    project.graph.add_node(Node("hidden", "Dense", {"units": 8, "activation": "relu"}, (0, 120)))
    project.graph.add_node(Node("out", "Dense", {"units": 3, "activation": "softmax"}, (0, 240)))
    project.graph.connect(Edge("input", "hidden", 0))
    project.graph.connect(Edge("hidden", "out", 0))
    project.data = {"source": "builtin:iris", "validation_split": 0.2}
    project.training.update(batch_size=16, epochs=3)
    return project


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "recovery"))
    monkeypatch.delenv("LAYERLAB_RUNS_DIR", raising=False)
    errors: list[tuple[str, str]] = []
    monkeypatch.setattr(TrainingDock, "_show_error", lambda self, t, m: errors.append((t, m)))
    monkeypatch.setattr(MainWindow, "_warn", lambda self, t, m: errors.append((t, m)))
    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")
    windows = []

    def make(project: Project) -> MainWindow:
        save_project(project, tmp_path / "iris.json")
        w = MainWindow(
            project, load_tensorflow=False, check_recovery=False, use_settings=False, autosave=False
        )
        w.errors = errors
        qtbot.addWidget(w)
        w.show()
        qtbot.waitExposed(w)
        dock = w.training_dock
        qtbot.waitUntil(lambda: not dock.data_panel.busy, timeout=30_000)
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.training_dock.shutdown()


def test_train_from_the_window_draws_curves_and_lists_the_run(qtbot, make_window, tmp_path):
    w = make_window(iris_project())
    dock = w.training_dock
    statuses: list[str] = []
    dock.status_text.connect(statuses.append)
    assert w.act_train.isEnabled() and not w.act_stop.isEnabled()

    w.bottom_dock.raise_()  # the Model tab in front, as in the Design view by default
    assert dock.visibleRegion().isEmpty()
    with qtbot.waitSignal(dock.run_finished, timeout=TIMEOUT_MS) as finished:
        w.act_train.trigger()
        assert not dock.visibleRegion().isEmpty(), "Train left the curves behind the Model tab"
        assert not w.act_train.isEnabled() and w.act_stop.isEnabled()
        assert w.train_label.isVisible() and "Training" in w.train_label.text()
    run_dir = finished.args[0]
    assert w.errors == []
    plots = dock.live.plots
    assert len(plots.curve("epoch:loss").getData()[0]) == 3
    assert len(plots.curve("epoch:val_loss").getData()[0]) == 3
    assert len(plots.curve("epoch:val_accuracy").getData()[0]) == 3
    assert len(plots.curve("batch:loss").getData()[0]) >= 1
    assert any(s.startswith("Training: epoch 3/3") for s in statuses)
    assert dock.live.progress.format().startswith("Done: 3 epoch")
    # 120 samples, batch 16: 8 steps an epoch, all in one call (auto caps N at the epoch)
    started = [t for t in dock.live.log.toPlainText().splitlines() if "  Training " in t]
    assert started[-1].endswith("3 epochs, auto: 8 steps per call)"), started
    assert os.path.isfile(os.path.join(run_dir, "model.keras"))
    assert run_dir.startswith(str(tmp_path / "iris-runs"))  # beside the project file
    history = json.loads(open(os.path.join(run_dir, "history.json")).read())
    assert len(history["loss"]) == 3
    if dock.runs_panel is not None:  # the run history lists the new run
        assert run_dir in [str(r.run_dir) for r in dock.runs_panel.runs]
    assert w.act_train.isEnabled() and not w.act_stop.isEnabled()
    assert not w.train_label.isVisible()

    # resuming the finished run trains as many epochs again, continuing its curves
    with qtbot.waitSignal(dock.session.finished, timeout=TIMEOUT_MS) as resumed:
        assert dock.resume_run(run_dir)
    assert resumed.args[0]["epochs_done"] == 6
    assert list(plots.curve("epoch:loss").getData()[0]) == [1, 2, 3, 4, 5, 6]
    started = [t for t in dock.live.log.toPlainText().splitlines() if "  Training " in t]
    assert started[-1].endswith(", 8 steps per call)"), started  # the checkpoint's N
    history = json.loads(open(os.path.join(run_dir, "history.json")).read())
    assert len(history["loss"]) == 6


def test_a_killed_worker_shows_an_error_and_the_app_goes_on(qtbot, make_window):
    w = make_window(iris_project())
    dock = w.training_dock
    before = w.project.to_dict()
    w.act_train.trigger()
    qtbot.waitUntil(lambda: dock.session.pid is not None, timeout=10_000)
    asked = []
    dock._ask_stop = lambda: asked.append(True) or False  # "Cancel"
    w.close()  # closing during a run asks first; Cancel keeps window and run
    assert asked and w.isVisible() and dock.session.running
    with qtbot.waitSignal(dock.session.failed, timeout=30_000) as failed:
        os.kill(dock.session.pid, signal.SIGKILL)
    assert failed.args[0]["kind"] == "died"
    assert len(w.errors) == 1
    title, text = w.errors[0]
    assert "ended unexpectedly" in title
    assert "SIGKILL" in text and "What to try" in text
    assert dock.live.progress.format() == "Failed"
    assert w.project.to_dict() == before
    assert w.act_train.isEnabled()
    w.undo_stack.push(SetSection("name", "still editing"))  # the app goes on
    assert w.project.name == "still editing"


def test_a_nan_run_ends_with_its_message(qtbot, make_window):
    project = iris_project()
    project.training["optimizer"] = {"type": "SGD", "learning_rate": 1e12}
    w = make_window(project)
    with qtbot.waitSignal(w.training_dock.session.failed, timeout=TIMEOUT_MS) as failed:
        w.act_train.trigger()
    assert failed.args[0]["kind"] == "nan"
    title, text = w.errors[0]
    assert "no longer a number" in title
    assert "loss became nan" in text.lower()
    assert "Lower the learning rate" in text
    assert "Error: the loss became nan" in w.training_dock.live.log.toPlainText()


def test_training_settings_are_undoable_edits(qtbot, make_window):
    w = make_window(iris_project())
    panel = w.training_dock.training_panel
    original = json.loads(json.dumps(w.project.training))

    panel.optimizer.setCurrentText("SGD")
    assert w.project.training["optimizer"]["type"] == "SGD"
    assert "momentum" in panel.optimizer_params.editors  # SGD's own parameters appear
    lr = panel.optimizer_params.editors["learning_rate"]
    lr.setText("0.05")
    lr.editingFinished.emit()
    assert w.project.training["optimizer"]["learning_rate"] == 0.05
    panel.epochs.setValue(7)
    assert w.project.training["epochs"] == 7
    mae = panel.metrics.findItems("mae", Qt.MatchFlag.MatchExactly)[0]
    mae.setCheckState(Qt.CheckState.Checked)
    assert w.project.training["metrics"] == ["accuracy", "mae"]
    assert w.undo_stack.undo_text == "Change training settings"
    assert not w.is_clean()

    for _ in range(4):  # one undo step per edit
        w.act_undo.trigger()
    assert w.project.training == original
    assert panel.optimizer.currentText() == "Adam" and panel.epochs.value() == 3
    w.act_redo.trigger()
    w.act_redo.trigger()
    assert panel.optimizer.currentText() == "SGD"
    assert panel.optimizer_params.editors["learning_rate"].text() == "0.05"

    lr = panel.optimizer_params.editors["learning_rate"]
    lr.setText("-1")
    lr.editingFinished.emit()
    assert not panel.problems_label.isHidden()
    assert "learning_rate must be a number > 0; got -1" in panel.problems_label.text()
    w.act_train.trigger()  # refused, with the reason
    assert w.training_dock.state == "idle"
    assert "learning_rate" in w.errors[-1][1]


def test_steps_per_execution_shows_auto_and_keeps_an_old_explicit_one(qtbot, make_window):
    w = make_window(iris_project())
    spin = w.training_dock.training_panel.steps_per_execution
    assert spin.text() == "auto" and "steps_per_execution" not in w.project.training
    spin.setValue(8)
    assert w.project.training["steps_per_execution"] == 8
    spin.setValue(0)  # back to auto: said as such, since the key is now there
    assert spin.text() == "auto" and w.project.training["steps_per_execution"] == "auto"

    old = iris_project()
    old.training["steps_per_execution"] = 1  # a project from before "auto": 1 means 1
    w2 = make_window(old)
    panel = w2.training_dock.training_panel
    assert panel.steps_per_execution.text() == "1"
    panel.epochs.setValue(5)
    assert w2.project.training["steps_per_execution"] == 1


def test_data_panel_says_how_the_data_does_not_fit(qtbot, make_window, tmp_path):
    w = make_window(iris_project(input_shape=5))
    panel = w.training_dock.data_panel
    assert "(5,)" in panel.fit_label.text() and "(4,)" in panel.fit_label.text()
    assert panel.fit_problems
    w.act_train.trigger()
    assert w.training_dock.state == "idle"
    title, text = w.errors[-1]
    assert title == "The data does not fit the model" and "(5,)" in text
    assert not (tmp_path / "iris-runs").exists() or not any((tmp_path / "iris-runs").iterdir())
    assert panel.table.rowCount() == 50 and panel.table.columnCount() == 5  # 4 + target

    with qtbot.waitSignal(panel.loaded, timeout=30_000):
        panel.source.setCurrentIndex(panel.source.findData("builtin:digits"))
    assert w.project.data["source"] == "builtin:digits"
    assert panel.preview.currentWidget() is panel.thumbnails
    assert panel.thumbnails.count() > 10 and panel.thumbnails.item(0).text().isdigit()
    assert "10 classes" in panel.summary.text()
    assert "(8, 8, 1)" in panel.fit_label.text()  # still does not fit: says both shapes

    with qtbot.waitSignal(panel.loaded, timeout=30_000):
        panel.source.setCurrentIndex(panel.source.findData("builtin:adding"))
    assert not panel.form.isRowVisible(panel.noise) and panel.form.isRowVisible(panel.length)
    assert panel.preview.currentWidget() is panel.plot_widget  # sequences as lines
    assert len(panel.plot.listDataItems()) == 4
    assert "regression" in panel.summary.text()

    with qtbot.waitSignal(panel.loaded, timeout=30_000):
        w.act_undo.trigger()
        w.act_undo.trigger()
    assert w.project.data["source"] == "builtin:iris"
    assert panel.source.currentData() == "builtin:iris"
    assert panel.preview.currentWidget() is panel.table


def test_overlaying_two_runs_draws_their_histories(qtbot, make_window, tmp_path):
    w = make_window(iris_project())
    dirs = []
    for name, losses in (("a", [1.0, 0.6]), ("b", [0.9, 0.5, 0.3])):
        d = tmp_path / "iris-runs" / name
        d.mkdir(parents=True)
        (d / "history.json").write_text(json.dumps({"loss": losses, "val_loss": losses}))
        dirs.append(str(d))
    dock = w.training_dock
    dock.overlay_runs(dirs)
    items = dock.live.plots.overlay_items()
    assert sorted(len(i.getData()[0]) for i in items) == [2, 2, 3, 3]
    assert {i.name() for i in items} >= {"a: loss", "b: val_loss"}
    assert dock.view_tabs.currentWidget() is dock.live


def test_csv_source_offers_its_columns_and_previews_a_table(qtbot, make_window, tmp_path):
    rows = ["size,weight,height,kind"] + [
        f"{i % 7},{(i * 3) % 11},{i % 5},{'ab'[i % 2]}" for i in range(60)
    ]
    (tmp_path / "things.csv").write_text("\n".join(rows) + "\n")
    w = make_window(iris_project(input_shape=2))
    panel = w.training_dock.data_panel
    panel._ask_path = lambda source: str(tmp_path / "things.csv")
    panel.source.setCurrentIndex(panel.source.findData("csv"))
    with qtbot.waitSignal(panel.loaded, timeout=30_000):
        panel.browse.click()
    assert w.project.data["path"] == "things.csv"  # relative to the project file
    assert [panel.target.itemText(i) for i in range(panel.target.count())] == [
        "size",
        "weight",
        "height",
        "kind",
    ]
    header = [panel.table.horizontalHeaderItem(i).text() for i in range(panel.table.columnCount())]
    assert header == ["size", "weight", "height", "target"]
    assert panel.table.item(0, 3).text() in ("a", "b")
    assert "2 classes" in panel.summary.text()
    assert "expects (2,); the data gives (3,)" in panel.fit_label.text()


def test_the_data_panel_shows_odd_section_numbers_without_failing(qtbot):
    from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox

    from gui.training.data_panel import set_spin

    seed, split = QSpinBox(), QDoubleSpinBox()
    seed.setRange(0, 2**31 - 1)
    split.setRange(0.0, 0.95)
    for widget in (seed, split):
        qtbot.addWidget(widget)
    set_spin(seed, 10**10, 0)  # the engine takes it; the box shows its largest value
    assert seed.value() == 2**31 - 1
    set_spin(seed, float("inf"), 7)
    assert seed.value() == 7
    set_spin(split, "a", 0.2)
    assert split.value() == 0.2
