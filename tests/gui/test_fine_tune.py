"""Fine-tuning in two phases (issue 14) in the window: the "Fine-tune after" option of
the training panel, the marker on the live curves and the note in the Runs tab. No
TensorFlow: the live view is fed the events a fine-tuning run sends."""

from __future__ import annotations

import json
from pathlib import Path

from engine.model.commands import UndoStack
from engine.model.project import Project
from gui.training.live_view import LiveView
from gui.training.runs_panel import RunsPanel
from gui.training.training_panel import TrainingPanel


def feed(view: LiveView, epochs: int = 5, first_phase_two: int = 4) -> None:
    view.on_run_starting("demo")
    view.on_started(
        {
            "epochs": epochs,
            "steps_per_epoch": 2,
            "samples": 32,
            "batch_size": 16,
            "devices": ["CPU:0"],
            "total_params": 10,
            "fine_tune": {
                "after_epoch": first_phase_two - 1,
                "unfreeze": "all",
                "learning_rate_factor": 0.1,
                "phase": 1,
                "from_epoch": 0,
            },
        }
    )
    for epoch in range(1, epochs + 1):
        phase = (
            {"phase": 2, "fine_tune_from": first_phase_two}
            if epoch >= first_phase_two
            else {"phase": 1}
        )
        for step in (1, 2):
            view.on_batch(
                {"epoch": epoch, "step": step, "steps": 2, "logs": {"loss": 1.0 / epoch}, **phase}
            )
        view.on_epoch(
            {"epoch": epoch, "logs": {"loss": 1.0 / epoch, "val_loss": 1.1 / epoch}, **phase}
        )


def test_live_view_marks_where_fine_tuning_begins(qtbot):
    view = LiveView()
    qtbot.addWidget(view)
    feed(view)
    plots = view.plots
    assert plots.phase_epoch == 4
    assert len(plots.phase_markers) == 2  # one on the loss plot, one on the metrics plot
    for plot, line in zip((plots.loss_plot, plots.metric_plot), plots.phase_markers, strict=True):
        assert line in plot.items
        assert line.value() == 3  # after epoch 3, where epoch 4's batches start
        assert line.label.textItem.toPlainText() == "fine-tune"
    log = view.log.toPlainText()
    assert "Fine-tuning after epoch 3" in log
    assert log.count("Fine-tuning from epoch 4") == 1  # once, however many events say so

    view.on_run_starting("next")  # a new run: the line goes
    assert plots.phase_markers == [] and plots.phase_epoch == 0
    assert not any(getattr(item, "label", None) for item in plots.loss_plot.items)


def test_a_run_resumed_in_phase_two_is_marked_from_its_start(qtbot):
    view = LiveView()
    qtbot.addWidget(view)
    view.on_run_starting("demo", resume=True)
    view.on_started(
        {
            "epochs": 6,
            "initial_epoch": 4,
            "steps_per_epoch": 2,
            "fine_tune": {"after_epoch": 3, "phase": 2, "from_epoch": 4},
        }
    )
    assert view.plots.phase_epoch == 4 and len(view.plots.phase_markers) == 2


def test_a_run_without_fine_tuning_has_no_marker(qtbot):
    view = LiveView()
    qtbot.addWidget(view)
    view.on_run_starting("demo")
    view.on_started({"epochs": 2, "steps_per_epoch": 2})
    view.on_batch({"epoch": 1, "step": 1, "steps": 2, "logs": {"loss": 1.0}})
    view.on_epoch({"epoch": 1, "logs": {"loss": 1.0}})
    assert view.plots.phase_markers == []


def test_training_panel_fine_tune_option_round_trips_through_undo(qtbot):
    project = Project(name="t")
    project.training = {"epochs": 10}
    stack = UndoStack(project)
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.set_project(project, stack)
    assert not panel.fine.isChecked()
    assert panel.ft_after.value() == 5  # half the epochs, ready for when it is ticked
    assert panel.ft_unfreeze.text() == "all frozen layers"

    panel.fine.setChecked(True)
    assert project.training["fine_tune"] == {
        "after_epoch": 5,
        "unfreeze": "all",
        "learning_rate_factor": 0.1,
    }
    panel.ft_unfreeze.setValue(3)
    panel.ft_after.setValue(7)
    assert project.training["fine_tune"]["unfreeze"] == 3
    assert project.training["fine_tune"]["after_epoch"] == 7
    assert "epochs 1-7" in panel.ft_note.text()

    panel.ft_after.setValue(10)  # phase 2 would get no epoch: the panel says why
    assert any("fine_tune after_epoch" in p for p in panel.problems)
    assert panel.problems_label.isVisibleTo(panel)

    stack.undo()
    assert project.training["fine_tune"]["after_epoch"] == 7
    assert panel.ft_after.value() == 7
    panel.fine.setChecked(False)
    assert "fine_tune" not in project.training


def _fake_run(root: Path, name: str, status: dict, epochs: int) -> Path:
    run = root / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "project.json").write_text(json.dumps({"name": "p", "training": {"epochs": epochs}}))
    (run / "status.json").write_text(json.dumps(status))
    history = {"loss": [1.0 / (i + 1) for i in range(epochs)]}
    history["val_loss"] = history["loss"]
    (run / "history.json").write_text(json.dumps(history))
    return run


def test_runs_tab_notes_where_fine_tuning_began(qtbot, tmp_path):
    _fake_run(
        tmp_path,
        "20260101-100000",
        {"state": "done", "epochs_done": 3},
        3,
    )
    _fake_run(
        tmp_path,
        "20260101-110000",
        {"state": "done", "epochs_done": 5, "fine_tune_from": 4},
        5,
    )
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_root(tmp_path)
    rows = panel.row_texts()
    assert rows[0]["Epochs"] == "5 (fine-tune from 4)"
    assert rows[1]["Epochs"] == "3"
    assert [row["Status"] for row in rows] == ["finished", "finished"]
    item = panel.table.item(0, 4)
    assert "phase 2 (fine-tuning): epochs 4-5" in item.toolTip()
