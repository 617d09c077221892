"""The Inside tab's Try it panel, the live decision boundary, a card's activations and
the refresh when a run ends (issue 19), in the window (pytest-qt, offscreen).

The digits MLP preset trains 2 epochs in this process (Keras loaded here, so the
engine service answers on a thread: ``LocalClient``); an xor run's ``boundary``
events are fed to the Live tab. TensorFlow starts once.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.cli.inspect import inspect_run
from engine.model.project import load_project
from engine.train.fit import run_training
from presets import presets_dir
from tests.engine.test_inside import xor_project

TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    project = load_project(presets_dir() / "mlp.json").to_dict()
    project["training"].update(epochs=2, tensorboard=False, health=False)
    run_dir = tmp_path_factory.mktemp("digits") / "run"
    final = run_training(project, run_dir)
    assert final["event"] == "done", final
    return run_dir


@pytest.fixture(scope="module")
def xor_events(tmp_path_factory):
    events: list[dict] = []
    final = run_training(
        xor_project(30), tmp_path_factory.mktemp("xor") / "run", emit=events.append
    )
    assert final["event"] == "done", final
    return [e for e in events if e["event"] == "boundary"]


@pytest.fixture
def inside(qtbot):
    from gui.training.inside_view import InsideView

    view = InsideView()
    view.resize(1000, 700)
    qtbot.addWidget(view)
    view.show()
    return view


def test_drawing_a_digit_shows_class_bars(digits_run, inside, qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(type(inside), "compute", lambda self: None)  # only Try it here
    try_it = inside.try_it
    inside.tabs.setCurrentWidget(try_it)
    with qtbot.waitSignal(try_it.answered, timeout=TIMEOUT_MS):
        inside.show_run(digits_run)
    assert try_it.info["kind"] == "draw" and try_it.canvas is not None
    assert try_it.bar_item is None  # nothing drawn yet: no bars
    with qtbot.waitSignal(try_it.answered, timeout=TIMEOUT_MS) as answer:
        try_it.canvas.stroke([(0.56, 0.1), (0.56, 0.5), (0.56, 0.9)])  # a "1"
        try_it.canvas.stroke([(0.35, 0.25), (0.56, 0.1)])
    probabilities = answer.args[0]["probabilities"]
    assert len(probabilities) == 10 and abs(sum(probabilities) - 1) < 1e-4
    assert try_it.bar_item is not None
    assert list(np.round(try_it.bar_item.opts["width"], 6)) == list(
        np.round(probabilities, 6)
    )  # classes 0..9 top-down
    ticks = try_it.bars.getAxis("left")._tickLevels[0]
    assert [name for _, name in ticks] == [str(i) for i in range(10)]
    assert try_it.result.text().startswith("<span") and "Prediction" in try_it.result.text()
    pixels = try_it.canvas.pixels()
    assert pixels.shape == (8, 8) and pixels[:, 4].max() > 0.9 and pixels[:, 0].max() == 0
    # what the engine answered is model.predict on the same drawing
    from engine.train.inside import open_run

    run = open_run(digits_run)
    expected = run.model.predict(pixels.reshape(1, 8, 8, 1), verbose=0)[0]
    np.testing.assert_allclose(try_it.bar_heights(), expected, rtol=1e-4, atol=1e-6)
    # strokes are debounced: several quick strokes make one request
    count = []
    try_it.answered.connect(lambda a: count.append(a))
    for k in range(5):
        try_it.canvas.stroke([(0.2 + 0.1 * k, 0.6), (0.3 + 0.1 * k, 0.6)])
    qtbot.waitUntil(lambda: len(count) >= 1, timeout=TIMEOUT_MS)
    qtbot.wait(300)
    assert len(count) == 1
    # an image file dropped (or chosen): answered, and what the model took is shown
    from engine.cli.inspect import png

    picture = np.zeros((40, 40, 3), np.uint8)
    picture[5:35, 18:24] = 255
    path = tmp_path / "one.png"
    path.write_bytes(png(picture))
    with qtbot.waitSignal(try_it.answered, timeout=TIMEOUT_MS) as answer:
        try_it.try_image(path)
    assert np.shape(answer.args[0]["raw"]) == (8, 8, 1)
    assert not try_it.seen.pixmap().isNull()
    # a run that cannot be read: said in words, no bars
    with qtbot.waitSignal(try_it._request.failed, timeout=TIMEOUT_MS):
        try_it.set_run(str(tmp_path / "gone"))
    assert "no such run directory" in try_it.result.text()
    assert try_it.bar_item is None and try_it.canvas is None


def test_the_live_tab_draws_the_boundary_of_a_run_on_two_features(xor_events, qtbot):
    from gui.training.live_view import LiveView

    live = LiveView()
    live.resize(1280, 500)
    qtbot.addWidget(live)
    live.show()
    live.on_run_starting("/tmp/run")
    assert not live.boundary.isVisible()
    for event in xor_events:
        live.on_boundary(event)
    qtbot.waitUntil(lambda: live.boundary.epoch == 30, timeout=5000)
    assert live.boundary.isVisible()
    assert 1 <= live.boundary.drawn <= len(xor_events)  # redraws are throttled
    assert "epoch 30" in live.boundary.plot.plotItem.titleLabel.text
    image = live.boundary.image.image
    assert image.shape == (192, 192, 3)  # 48x48, drawn smoothed
    classes = live.boundary.classes
    # both classes appear and the training points are drawn
    assert set(np.unique(classes)) == {0, 1}
    assert len(live.boundary.points.data) == len(xor_events[0]["points"])
    # a new run starts blank
    live.on_run_starting("/tmp/run2")
    assert not live.boundary.isVisible() and live.boundary.classes is None


def test_selecting_a_card_scrolls_to_its_activations(digits_run, qtbot, tmp_path, monkeypatch):
    from gui.training.inside_view import InsideView

    view = InsideView()
    view.resize(900, 400)
    qtbot.addWidget(view)
    view.show()
    inspect_run(digits_run, 0, tmp_path / "out", arrays=True)
    assert view.show_layer("output") is False  # not computed yet: remembered
    view.load(tmp_path / "out")
    qtbot.waitUntil(lambda: view.highlighted == "output", timeout=5000)
    bar = view.activations_scroll.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() > 0  # the last card is scrolled to
    assert "#fde68a" in view.cards["output"][0].text
    assert view.show_layer("input") is True
    assert view.highlighted == "input" and bar.value() < 20
    assert "#fde68a" not in view.cards["output"][0].text
    assert view.show_layer("no-such-layer") is False


def test_show_activations_from_a_card_opens_the_inside_tab(canvas, qtbot, monkeypatch):
    scene, _view, _stack = canvas
    menu = scene.context_menu(scene.node_item("dense").sceneBoundingRect().center())
    action = next(a for a in menu.actions() if a.text() == "Show Activations")
    with qtbot.waitSignal(scene.activations_requested) as asked:
        action.trigger()
    assert asked.args == ["dense"]


def test_the_window_links_the_canvas_to_the_activations(
    digits_run, xor_events, qtbot, tmp_path, monkeypatch
):
    from gui.main_window import MainWindow

    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "recovery"))
    project = load_project(presets_dir() / "mlp.json")
    w = MainWindow(
        project, load_tensorflow=False, check_recovery=False, use_settings=False, autosave=False
    )
    qtbot.addWidget(w)
    w.show()
    dock = w.training_dock
    dock.build()
    monkeypatch.setattr(type(dock.inside_view), "compute", lambda self: None)
    inspect_run(digits_run, 0, tmp_path / "out", arrays=True)
    dock.inside_view.load(tmp_path / "out")
    w.scene.activations_requested.emit("hidden")  # the card menu's Show Activations
    assert dock.view_tabs.currentWidget() is dock.inside_view
    qtbot.waitUntil(lambda: dock.inside_view.isVisible(), timeout=5000)
    assert dock.inside_view.highlighted == "hidden"
    w.scene.select_ids(["output"])  # selecting another card follows it
    qtbot.waitUntil(lambda: dock.inside_view.highlighted == "output", timeout=5000)
    # a run ends while the Inside tab is shown: it shows that run, not the stale one
    dock.inside_view.latest_run = lambda: tmp_path / "runs" / "new"
    dock.run_finished.emit(str(tmp_path / "runs" / "new"))
    assert dock.inside_view.run_dir == str(tmp_path / "runs" / "new")
    # a run's boundary events reach the Live tab through the session
    dock.session._dispatch(xor_events[0])
    assert dock.live.boundary.isVisibleTo(dock.live) and dock.live.boundary.drawn == 1
    assert dock.inside_view.boundary_view.drawn == 1  # and the Inside tab's view
    dock.shutdown()


def test_the_inside_tab_shows_the_newest_run_when_a_run_ends(qtbot, monkeypatch):
    from gui.training.inside_view import InsideView

    newest = ["/runs/1"]
    computed: list[str] = []
    monkeypatch.setattr(InsideView, "compute", lambda self: computed.append(self.run_dir))
    view = InsideView(lambda: newest[0])
    qtbot.addWidget(view)
    view.show()
    assert computed == ["/runs/1"]
    newest[0] = "/runs/2"
    view.run_ended()  # shown: looks inside the new run now
    assert computed[-1] == "/runs/2" and "2" in view.run_label.text()
    view.hide()
    newest[0] = "/runs/3"
    view.run_ended()  # hidden: when next shown
    assert computed[-1] == "/runs/2"
    view.show()
    assert computed[-1] == "/runs/3"
    view.run_ended()  # nothing newer: nothing recomputed
    assert computed.count("/runs/3") == 1


def test_see_inside_shows_the_activations_of_the_drawing(digits_run, inside, qtbot):
    try_it = inside.try_it
    inside.tabs.setCurrentWidget(try_it)
    with qtbot.waitSignal(try_it.answered, timeout=TIMEOUT_MS):
        inside.try_it.set_run(str(digits_run))
        inside.run_dir = str(digits_run)
    assert not try_it.inside_button.isEnabled()  # nothing drawn yet
    with qtbot.waitSignal(try_it.answered, timeout=TIMEOUT_MS):
        try_it.canvas.stroke([(0.56, 0.1), (0.56, 0.9)])
    assert try_it.inside_button.isEnabled()
    drawn = try_it.canvas.pixels()
    with qtbot.waitSignal(inside.finished, timeout=TIMEOUT_MS) as done:
        try_it.inside_button.click()
    assert done.args == [True]
    assert inside.tabs.currentIndex() == 0  # the Activations view
    assert inside.input_row.source_label.text().startswith("file input-")
    assert inside.input_row.source_label.text().endswith(".npy")
    np.testing.assert_allclose(np.load(inside.manifest["file"]), drawn)
    assert [row["name"] for row in inside.manifest["layers"]][-1] == "output"
    assert len(inside.cards) == len(inside.manifest["layers"])


def test_the_canvas_ink_follows_the_training_data(inside):
    from gui.training.try_it import DrawCanvas

    dark = DrawCanvas(8, "dark")
    assert dark.pixels().min() == 1.0  # white paper
    dark.stroke([(0.56, 0.1), (0.56, 0.9)])
    assert dark.pixels()[:, 4].min() < 0.1 and dark.pixels()[:, 0].min() == 1.0
    dark.stroke([(0.56, 0.1), (0.56, 0.9)], erase=True)
    assert dark.pixels().min() == 1.0
    info = {"kind": "draw", "shape": [8, 8, 1], "ink": "dark", "class_names": [], "task": ""}
    inside.try_it._setup(info)
    assert inside.try_it.canvas.paper == 255
