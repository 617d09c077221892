"""Issue 15, the training views: the schedule's real defaults and axis, plots that
keep their legends off the curves and follow the theme, one click from a finished run
to its export, and an early stop that says so."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.model.commands import UndoStack
from engine.model.project import new_project
from engine.train.schedule_preview import default_lengths, lr_axis_range, lr_curve
from gui.training.live_view import LivePlots, LiveView, early_stop_text
from gui.training.training_panel import TrainingPanel


# ------------------------------------------------------------ schedule (item 4)
def test_default_lengths_are_what_the_schedule_uses():
    cosine = {"epochs": 30, "schedule": {"type": "cosine"}}
    assert default_lengths(cosine, 30) == {"decay_epochs": 30}
    warm = {"schedule": {"type": "cosine", "warmup_epochs": 5}}
    assert default_lengths(warm, 30) == {"decay_epochs": 25}
    assert default_lengths({"schedule": "polynomial"}, 12) == {"decay_epochs": 12}
    assert default_lengths({"schedule": "exponential"}, 12) == {"decay_epochs": 1}
    assert default_lengths({}, 12) == {}


def test_cosine_plot_decays_over_the_default_it_shows():
    section = {"optimizer": {"type": "Adam", "learning_rate": 0.01}, "schedule": "cosine"}
    x, y = lr_curve(section, steps_per_epoch=4, epochs=20)
    decay = default_lengths(section, 20)["decay_epochs"]
    assert y[0] == pytest.approx(0.01)
    assert x[int(np.argmin(y))] == pytest.approx(decay), "the minimum is where the field says"


def test_lr_axis_starts_at_zero_for_a_constant_rate():
    low, high = lr_axis_range(np.full(10, 0.001))
    assert low == 0 and 0.001 < high < 0.002
    assert lr_axis_range(np.array([0.01, 0.001])) == (0.0, pytest.approx(0.0115))


def test_training_panel_decay_field_shows_the_run_length_and_follows_epochs(qtbot):
    project = new_project()
    project.training["epochs"] = 40
    project.training["schedule"] = {"type": "cosine"}
    stack = UndoStack(project)
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.set_project(project, stack)
    field = panel.schedule_params.editors["decay_epochs"]
    assert field.text() == "" and field.placeholderText().startswith("40 ")
    panel.epochs.setValue(15)
    assert panel.schedule_params.editors["decay_epochs"].placeholderText().startswith("15 ")


def test_training_panel_lr_plot_has_no_negative_axis_and_an_uncut_title(qtbot):
    import keras  # noqa: F401  (the panel plots once Keras is loaded)

    project = new_project()
    stack = UndoStack(project)
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.resize(400, 800)
    panel.show()
    panel.set_project(project, stack)
    panel.update_lr_plot()
    qtbot.waitUntil(lambda: panel.lr_curve.getData()[1] is not None, timeout=10_000)
    low, high = panel.lr_plot.viewRange()[1]
    assert low == 0 and high > 0.001
    assert panel.lr_plot.titleLabel.text == "learning rate"
    assert not panel.lr_plot.getAxis("left").label.isVisible(), "no rotated, cut label"


# ------------------------------------------------------------- plots (item 6)
def test_legends_sit_outside_the_data_and_overlay_styles_runs_and_splits(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.resize(900, 400)
    plots.show()
    plots.add_epoch({"epoch": 1, "logs": {"loss": 1.0, "val_loss": 1.2}})
    plots.overlay(
        {
            "#1 first run": {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]},
            "#2 lr 0.01→0.001": {"loss": [0.9, 0.4], "val_loss": [1.0, 0.6]},
        }
    )
    plots.flush()
    qtbot.wait(20)
    legend = plots.legends["Loss"]
    view = plots.loss_plot.vb
    legend_rect = legend.mapRectToScene(legend.boundingRect())
    data_rect = view.mapRectToScene(view.boundingRect())
    assert not legend_rect.intersects(data_rect), (legend_rect, data_rect)
    labels = plots.legend_labels("Loss")
    assert "loss" in labels and "#2 lr 0.01→0.001: val_loss" in labels
    items = {i.name(): i.opts["pen"] for i in plots.overlay_items()}
    assert items["#1 first run: loss"].style() == Qt.PenStyle.SolidLine
    assert items["#1 first run: val_loss"].style() == Qt.PenStyle.DashLine
    assert items["#1 first run: loss"].color() == items["#1 first run: val_loss"].color()
    assert items["#1 first run: loss"].color() != items["#2 lr 0.01→0.001: loss"].color()


def test_plots_follow_the_dark_theme(qtbot):
    from PySide6.QtWidgets import QApplication

    from gui.theme import DARK, apply_theme

    app = QApplication.instance()
    apply_theme(app, True)
    try:
        plots = LivePlots()
        qtbot.addWidget(plots)
        axis = plots.loss_plot.getAxis("bottom")
        assert axis.textPen().color().name() == DARK["text"]
        assert axis.pen().color().name() == DARK["plot_axis"]
    finally:
        apply_theme(app, False)


# ------------------------------------------------------- export, early stop (7, 8)
def _finish(view: LiveView, run_dir, event: dict) -> None:
    view.on_run_starting(run_dir)
    view.on_started({"epochs": 100, "steps_per_epoch": 2})
    view.on_finished({"run_dir": str(run_dir), "model": str(run_dir / "model.keras"), **event})


def test_export_this_run_is_one_click_from_the_live_tab(qtbot, tmp_path):
    view = LiveView()
    qtbot.addWidget(view)
    assert not view.export_button.isEnabled()
    _finish(view, tmp_path, {"epochs_done": 100, "stopped": False})
    assert view.export_button.isEnabled()
    with qtbot.waitSignal(view.export_requested, timeout=1000) as signal:
        view.export_button.click()
    assert signal.args == [str(tmp_path)]
    view.on_run_starting(tmp_path / "next")
    assert not view.export_button.isEnabled(), "nothing to export while a run starts"


def test_export_button_opens_the_dialog_when_nobody_listens(qtbot, tmp_path, monkeypatch):
    import gui.training.live_view as live_view

    opened = []

    class FakeDialog:
        def __init__(self, run_dir, parent):
            opened.append(run_dir)

        def setAttribute(self, *_a):
            pass

        def open(self):
            pass

    monkeypatch.setattr(live_view, "ExportDialog", FakeDialog)
    view = LiveView()
    qtbot.addWidget(view)
    _finish(view, tmp_path, {"epochs_done": 100, "stopped": False})
    view.export_button.click()
    assert opened == [str(tmp_path)]


def test_early_stop_says_when_why_and_which_weights(qtbot, tmp_path):
    es = {"monitor": "val_loss", "patience": 3, "restore_best_weights": True}
    (tmp_path / "project.json").write_text(json.dumps({"training": {"early_stopping": es}}))
    history = {"loss": [1, 0.8, 0.7, 0.6, 0.5, 0.4], "val_loss": [1, 0.7, 0.5, 0.6, 0.55, 0.58]}
    view = LiveView()
    qtbot.addWidget(view)
    _finish(view, tmp_path, {"epochs_done": 6, "stopped": False, "history": history})
    log = view.log.toPlainText()
    assert "Stopped early at epoch 6 of 100" in log
    assert "no val_loss improvement for 3 epochs" in log
    assert "restored the weights of epoch 3" in log
    assert "early" in view.progress.format() and "Done: 6" not in view.progress.format()


def test_early_stop_text_uses_the_engine_fields_and_stays_quiet_otherwise():
    event = {
        "epochs_done": 9,
        "early_stopping": {
            "stopped_epoch": 9,
            "restored_epoch": 4,
            "monitor": "loss",
            "patience": 5,
        },
    }
    text = early_stop_text(event, 50, {})
    assert "epoch 9" in text and "epoch 4" in text and "loss" in text
    assert early_stop_text({"epochs_done": 50}, 50, {"early_stopping": {}}) == ""
    assert early_stop_text({"epochs_done": 7, "stopped": True}, 50, {"early_stopping": {}}) == ""
    assert early_stop_text({"epochs_done": 7}, 50, {}) == "", "no early stopping: no claim"
