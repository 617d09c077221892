"""The live curves while a run goes on (no TensorFlow: events are fed by hand).

The y axis stands still while the curves fit it (a tick redraws the curves, not the
axis), follows a curve that leaves it or shrinks, leaves a range the user zoomed to
alone (during and after the run), and otherwise goes back to fitting the data once
the run ends; the progress bar shows
the last batch."""

from __future__ import annotations

from gui.training.live_view import Y_FILL, LiveView


def _batch(view: LiveView, step: int, loss: float, steps: int = 100) -> None:
    view.on_batch(
        {"epoch": 1, "step": step, "steps": steps, "logs": {"loss": loss}, "samples_per_s": 900.0}
    )


def _tick(view: LiveView) -> tuple[float, float]:
    view.plots.flush()
    view._update_progress()
    return tuple(view.plots.loss_plot.getViewBox().viewRange()[1])


def _inside(range_: tuple[float, float], *values: float) -> bool:
    return all(range_[0] <= v <= range_[1] for v in values)


def test_the_loss_axis_holds_still_follows_the_curve_and_respects_a_zoom(qtbot):
    view = LiveView()
    qtbot.addWidget(view)
    view.resize(900, 400)
    view.show()
    view.on_started({"epochs": 1, "steps_per_epoch": 100, "samples": 3200, "batch_size": 32})
    view.plots.reset()
    for step in range(1, 6):
        _batch(view, step, 2.0 - 0.01 * step)
    first = _tick(view)
    assert _inside(first, 1.95, 1.99)
    for step in range(6, 12):  # new lows and highs, within the range: the axis stays
        _batch(view, step, (first[0] + 1.95) / 2 if step % 2 else (first[1] + 1.99) / 2)
    assert _tick(view) == first
    assert "step 11/100" in view.progress.format() and view.progress.value() == 11

    _batch(view, 12, 4.0)  # a spike leaves the range: the axis follows it
    spiked = _tick(view)
    assert _inside(spiked, 1.95, 4.0)
    for step in range(13, 60):  # the loss falls far below: it follows, and fits it again
        _batch(view, step, 4.0 / step)
    fallen = _tick(view)
    lows = [4.0 / step for step in range(13, 60)]
    assert _inside(fallen, min(lows), 4.0)

    # the user zooms: the axis is theirs until the run ends
    box = view.plots.loss_plot.getViewBox()
    box.setYRange(1.0, 1.5, padding=0)
    box.sigRangeChangedManually.emit([False, True])
    _batch(view, 60, 9.0)
    assert _tick(view) == (1.0, 1.5)

    view.on_finished({"epochs_done": 1, "model": "", "run_dir": ""})
    assert _tick(view) == (1.0, 1.5), "still theirs after the run"


def test_hidden_plots_are_not_redrawn_until_shown(qtbot):
    view = LiveView()
    qtbot.addWidget(view)
    view.on_started({"epochs": 1, "steps_per_epoch": 100})
    view.plots.reset()
    _batch(view, 1, 1.0)
    _batch(view, 2, 0.9)
    curve = view.plots.curve("batch:loss")
    qtbot.wait(250)  # a few refresh ticks
    assert curve.getData()[0] is None or len(curve.getData()[0]) == 0
    view.show()
    qtbot.waitUntil(lambda: list(curve.getData()[1]) == [1.0, 0.9], timeout=2_000)


def test_a_curve_that_shrinks_gets_a_tighter_range(qtbot):
    view = LiveView()
    qtbot.addWidget(view)
    view.show()
    view.on_started({"epochs": 1, "steps_per_epoch": 100})
    view.plots.reset()
    _batch(view, 1, 10.0)
    _batch(view, 2, 0.0)
    wide = _tick(view)
    assert _inside(wide, 0.0, 10.0)
    view.plots.reset()  # the next run: small values only
    for step in range(1, 5):
        _batch(view, step, 1.0 + 0.01 * step)
    narrow = _tick(view)
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 100
    assert _inside(narrow, 1.01, 1.04) and 1.04 - 1.01 >= Y_FILL * (narrow[1] - narrow[0])
    view.on_finished({"epochs_done": 1, "model": "", "run_dir": ""})
    box = view.plots.loss_plot.getViewBox()
    assert box.autoRangeEnabled()[1], "after the run the axis fits the data again"
