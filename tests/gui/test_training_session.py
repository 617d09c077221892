"""TrainingSession: a worker process supervised from a background thread, as Qt signals.

One real run (TensorFlow starts once in its child process): pause, resume and
stop it, and load the model it keeps. The live plots' buffers and overlay are
checked without TensorFlow.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.model.graph import Edge, Node
from engine.model.project import Project
from gui.training.errors import error_text
from gui.training.live_view import LivePlots, Series
from gui.training.session import TrainingSession

TIMEOUT_MS = 120_000


def iris_project(epochs: int = 3, batch_size: int = 16, **training) -> Project:
    """Iris with a small Dense model: 4 -> 8 relu -> 3 softmax."""
    project = Project(name="iris")
    project.graph.add_node(Node("input", "Input", {"shape": [4]}, (0, 0)))
    project.graph.add_node(Node("hidden", "Dense", {"units": 8, "activation": "relu"}, (0, 120)))
    project.graph.add_node(Node("out", "Dense", {"units": 3, "activation": "softmax"}, (0, 240)))
    project.graph.connect(Edge("input", "hidden", 0))
    project.graph.connect(Edge("hidden", "out", 0))
    project.data = {"source": "builtin:iris", "validation_split": 0.2}
    project.training.update(batch_size=batch_size, epochs=epochs, **training)
    return project


@pytest.fixture
def session():
    s = TrainingSession()
    yield s
    s.shutdown()


def test_session_pause_resume_and_stop_keep_a_usable_model(qtbot, tmp_path, session):
    # batch 2 and many epochs: the run lasts until it is stopped
    project = iris_project(epochs=500, batch_size=2)
    states: list[str] = []
    batches: list[dict] = []
    epochs: list[dict] = []
    session.state_changed.connect(states.append)
    session.batch.connect(batches.append)
    session.epoch.connect(epochs.append)
    run_dir = tmp_path / "run"

    with qtbot.waitSignal(session.started, timeout=TIMEOUT_MS):
        session.start(project.to_dict(), run_dir)
    assert session.state == "running"
    # past the first epoch, TensorFlow has traced its functions: batches are quick
    qtbot.waitUntil(lambda: bool(epochs) and batches[-1]["epoch"] >= 2, timeout=30_000)

    asked = time.monotonic()
    with qtbot.waitSignal(session.paused, timeout=5_000):
        session.pause()
    assert time.monotonic() - asked < 1.5, "pause should act within a second (+ noise)"
    assert session.state == "paused"
    qtbot.wait(400)
    held = len(batches)
    qtbot.wait(600)
    assert len(batches) == held, "no batches may run while paused"

    with qtbot.waitSignal(session.resumed, timeout=5_000):
        session.resume()
    assert session.state == "running"
    qtbot.waitUntil(lambda: len(batches) > held, timeout=10_000)

    asked = time.monotonic()
    with qtbot.waitSignal(session.finished, timeout=30_000) as done:
        session.stop()
        assert session.state == "stopping"
    assert time.monotonic() - asked < 5.0
    event = done.args[0]
    assert event["stopped"] is True
    assert session.state == "idle"
    assert states[:2] == ["starting", "running"]
    assert ["paused", "running", "stopping", "idle"] == states[2:]

    import keras  # the kept model loads and predicts one class per sample

    model = keras.models.load_model(event["model"])
    prediction = model.predict(np.zeros((2, 4), dtype="float32"), verbose=0)
    assert prediction.shape == (2, 3)
    np.testing.assert_allclose(prediction.sum(axis=1), 1.0, rtol=1e-4)


def test_session_refuses_a_second_run_while_one_runs(qtbot, tmp_path, session):
    # a run into a folder that already holds a run fails at once, before TensorFlow
    (tmp_path / "old" / "checkpoints").mkdir(parents=True)
    (tmp_path / "old" / "model.keras").write_bytes(b"")  # a finished run
    with qtbot.waitSignal(session.failed, timeout=20_000) as failed:
        session.start(iris_project().to_dict(), tmp_path / "old")
        with pytest.raises(RuntimeError, match="already going on"):
            session.start(iris_project().to_dict(), tmp_path / "other")
    assert failed.args[0]["kind"] == "config"
    assert "already holds a run" in failed.args[0]["message"]
    assert session.state == "idle"


def test_series_grows_by_doubling_and_keeps_every_point():
    series = Series(capacity=4)
    for i in range(1000):
        series.append(i, i * i)
    x, y = series.data()
    assert len(x) == 1000 and len(series.x) == 1024
    assert y[999] == 999 * 999


def test_live_plots_draw_on_the_timer_not_per_event(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.show()  # hidden plots are not redrawn
    plots.reset()
    for step in range(1, 11):
        plots.add_batch(
            {
                "epoch": 1,
                "step": step,
                "steps": 10,
                "logs": {"loss": 1.0 / step, "accuracy": step / 10},
            }
        )
    plots.add_epoch({"epoch": 1, "logs": {"loss": 0.3, "val_loss": 0.4, "learning_rate": 0.001}})
    loss = plots.curve("batch:loss")
    assert loss.getData()[0] is None or len(loss.getData()[0]) == 0  # not drawn yet
    qtbot.waitUntil(
        lambda: loss.getData()[0] is not None and len(loss.getData()[0]) == 10, timeout=2_000
    )
    assert len(plots.curve("epoch:val_loss").getData()[0]) == 1
    assert plots.curve("epoch:learning_rate") is None
    smooth = plots.curve("smooth:loss").getData()[1]
    assert smooth[-1] > 1.0 / 10  # the moving average lags behind the falling loss
    assert "val_loss 0.4" in plots.readout_at(1.2)
    plots.log_scale.setChecked(True)
    assert plots.loss_plot.ctrl.logYCheck.isChecked()  # the loss axis is logarithmic
    plots.finish()
    assert not plots.timer.isActive()


def test_overlay_shows_each_run_dashed_in_its_own_colour(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.overlay(
        {
            "run-a": {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]},
            "run-b": {"loss": [0.9, 0.4, 0.2], "accuracy": [0.5, 0.7, 0.9]},
        }
    )
    items = plots.overlay_items()
    assert len(items) == 4
    colours = {item.opts["pen"].color().name() for item in items if item.name().startswith("run-a")}
    others = {item.opts["pen"].color().name() for item in items if item.name().startswith("run-b")}
    assert len(colours) == 1 and colours.isdisjoint(others)
    solid = Qt.PenStyle.SolidLine  # issue 15: one colour per run, one dash per split
    assert all(
        (i.opts["pen"].style() == solid) != i.name().split(": ")[1].startswith("val_")
        for i in items
    )
    assert [len(i.getData()[0]) for i in items] == [2, 2, 3, 3]
    plots.overlay({})
    assert plots.overlay_items() == []


@pytest.mark.parametrize("kind", ["nan", "oom", "died", "data"])
def test_error_text_says_what_happened_and_what_to_try(kind):
    title, text = error_text(
        {
            "event": "error",
            "kind": kind,
            "message": "it broke at step 3",
            "hint": "Try a smaller batch_size.",
        },
        "/runs/r1",
    )
    assert title and "It broke at step 3." in text
    assert "What to try: Try a smaller batch_size." in text
    assert "/runs/r1" in text


def test_schedule_plot_shows_the_learning_rate_over_the_planned_steps(qtbot):
    import keras  # noqa: F401 - the plot waits for TensorFlow; load it here

    from engine.model.commands import UndoStack
    from engine.train.schedule_preview import lr_curve
    from gui.training.training_panel import TrainingPanel

    section = {
        "optimizer": {"type": "Adam", "learning_rate": 0.01},
        "epochs": 6,
        "schedule": {"type": "cosine", "warmup_epochs": 1},
    }
    x, lr = lr_curve(section, steps_per_epoch=10, epochs=6)
    assert x[0] == 0 and x[-1] == 6
    assert lr[0] == 0.0 and abs(lr.max() - 0.01) < 1e-6
    assert abs(x[lr.argmax()] - 1.0) < 0.1  # warm-up ends after one epoch
    assert lr[-1] < 1e-4

    project = iris_project(epochs=6)
    project.training["schedule"] = {"type": "step", "factor": 0.5, "every_epochs": 2}
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.set_project(project, UndoStack(project))
    panel.set_train_samples(120)  # iris: 8 steps of 16 per epoch
    qtbot.waitUntil(
        lambda: panel.lr_curve.getData()[0] is not None and len(panel.lr_curve.getData()[0]) > 10,
        timeout=10_000,
    )
    _, y = panel.lr_curve.getData()
    assert sorted({round(v, 6) for v in y}, reverse=True) == [0.001, 0.0005, 0.00025, 0.000125]
    assert "8 steps per epoch" in panel.lr_note.text()
