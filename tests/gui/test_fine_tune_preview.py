"""The learning-rate preview draws fine-tuning's phase 2 (issue 14): the drop at
``after_epoch`` and the schedule started again x the factor, computed as the run
computes it, with a marker at the phase change. One TensorFlow start (a tiny run)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.model.commands import UndoStack
from engine.model.project import Project
from engine.train.schedule_preview import lr_curve, phase_change_epoch
from gui.training.training_panel import TrainingPanel
from tests.engine.test_fine_tune import tiny_project_dict

LR, FACTOR = 0.01, 0.1
SECTION = {
    "epochs": 4,
    "batch_size": 16,
    "seed": 0,
    "optimizer": {"type": "Adam", "learning_rate": LR},
    "schedule": {"type": "cosine"},
    "fine_tune": {"after_epoch": 2, "learning_rate_factor": FACTOR},
    "tensorboard": False,
}


def at_epochs(x: np.ndarray, y: np.ndarray, epochs: int) -> list[float]:
    """The plotted rate at the end of each epoch (phase 1's value where the phases meet:
    the run logs an epoch's rate before phase 2 recompiles)."""
    return [float(y[np.flatnonzero(np.isclose(x, e))[0]]) for e in range(1, epochs + 1)]


def test_preview_equals_the_learning_rate_a_two_phase_run_logs(tmp_path):
    from engine.train.fit import run_training

    events: list[dict] = []
    final = run_training(
        tiny_project_dict(SECTION), tmp_path / "run", base_dir=tmp_path, emit=events.append
    )
    assert final["event"] == "done", final
    assert final["fine_tune_from"] == 3
    steps = next(e for e in events if e.get("event") == "started")["steps_per_epoch"]
    logged = final["history"]["learning_rate"]

    x, y = lr_curve(SECTION, steps, 4, points=10_000)  # every step
    assert at_epochs(x, y, 4) == pytest.approx(logged, rel=1e-5)
    # the drop: at epoch 2 the curve holds phase 1's last rate, then phase 2's first
    at_two = y[np.isclose(x, 2.0)]
    assert len(at_two) == 2 and at_two[1] == pytest.approx(LR * FACTOR)
    assert y.max() == pytest.approx(LR)
    assert y[x > 2].max() < LR * FACTOR  # phase 2 decays from its start


def test_without_fine_tune_the_preview_is_one_schedule():
    plain = {k: v for k, v in SECTION.items() if k != "fine_tune"}
    assert phase_change_epoch(plain, 4) is None
    x, y = lr_curve(plain, 5, 4, points=21)
    assert np.all(np.diff(x) > 0) and y[0] == pytest.approx(LR)
    assert phase_change_epoch({**SECTION, "fine_tune": {"after_epoch": 4}}, 4) is None


def test_panel_marks_the_phase_change_on_the_preview(qtbot, monkeypatch):
    project = Project(name="t")
    project.training = dict(SECTION)
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.set_project(project, UndoStack(project))
    sent: list[dict] = []
    monkeypatch.setattr(panel._lr_job, "submit", lambda kind, args: sent.append(args) or True)
    panel.update_lr_plot()
    args = sent[-1]
    panel._on_lr_ready(lr_curve(args["section"], args["steps_per_epoch"], args["epochs"]))

    line = panel.lr_phase_line
    assert line.isVisible() and line.value() == 2
    assert line in panel.lr_plot.items
    assert line.label.textItem.toPlainText() == "phase 2 (×0.1)"
    assert "phase 2 from epoch 3" in panel.lr_note.text()
    # an empty length field says what the run uses: the schedule spans phase 1
    decay = panel.schedule_params.editors["decay_epochs"].placeholderText()
    assert decay == "2 (phase 1; phase 2: 2)"
    _, y = panel.lr_curve.getData()
    assert min(y) < LR * FACTOR * 1.01 and max(y) == pytest.approx(LR)
    panel.resize(420, 1400)
    panel.show()
    panel.grab().save("/tmp/h12/preview_panel.png")

    panel.fine.setChecked(False)  # no fine-tuning: no marker
    panel.update_lr_plot()
    args = sent[-1]
    panel._on_lr_ready(lr_curve(args["section"], args["steps_per_epoch"], args["epochs"]))
    assert not line.isVisible()
