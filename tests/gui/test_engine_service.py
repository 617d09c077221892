"""The engine service seen from the window (issue 17): no TensorFlow in the window's
process, shapes across the process boundary, a restart after a kill, and an edit
storm where the last edit wins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.model.commands import SetParams
from engine.model.project import load_project
from gui.engine_service import EngineService
from gui.main_window import MainWindow
from gui.validation_controller import RESTARTED_MESSAGE

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "presets" / "lenet5.json"
TIMEOUT_MS = 180_000


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "recovery"))
    monkeypatch.setenv("LAYERLAB_RUNS_DIR", str(tmp_path / "runs"))


WINDOW_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from PySide6.QtCore import QElapsedTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from engine.model.project import load_project
    from gui.main_window import MainWindow
    from gui.training.evaluation_view import EvaluationView

    def wait(cond, what, ms=180_000):
        clock = QElapsedTimer(); clock.start()
        while not cond():
            if clock.elapsed() > ms:
                raise SystemExit(f"timed out waiting for {what}")
            app.processEvents(); time.sleep(0.005)

    out = {}
    w = MainWindow(load_project(sys.argv[1]), check_recovery=False, use_settings=False,
                   autosave=False)
    w.show()
    wait(lambda: w.validation.ready, "shapes")
    out["shape"] = list(w.validation.info["output"].output_shape)
    out["params"] = w.params_label.text()
    out["canvas"] = w.scene.node_item("conv1").shape_text
    out["service_pid"] = w.validation.service.client.pid
    w.set_perspective("train")
    panel = w.training_dock.training_panel
    wait(lambda: panel.lr_curve.getData()[1] is not None, "the learning-rate plot")
    out["lr_note"] = panel.lr_note.text()
    wait(lambda: not panel._device_job.busy, "the device list")
    out["devices"] = [panel.device.itemText(i) for i in range(panel.device.count())]
    out["devices_asked"] = panel._device_job._service is not None
    view = EvaluationView()
    view.show_run(sys.argv[2])
    wait(lambda: not view.is_loading(), "the evaluation's samples")
    out["gallery"] = view.gallery_status.text()
    out["tensorflow"] = "tensorflow" in sys.modules
    out["keras"] = "keras" in sys.modules
    print(json.dumps(out), flush=True)
    w.undo_stack.set_clean()
    import os; os._exit(0)
""")


@pytest.mark.slow
def test_the_window_never_imports_tensorflow(tmp_path):
    """Shapes, the learning-rate preview, the device list and an evaluation's
    predictions all come from the engine service: the window's process (a fresh
    interpreter, so no other test's imports count) never loads TensorFlow or Keras."""
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        PYTHONPATH=str(ROOT),
        TF_CPP_MIN_LOG_LEVEL="2",
        LAYERLAB_SETTINGS=str(tmp_path / "s.ini"),
        LAYERLAB_RECOVERY_DIR=str(tmp_path / "recovery"),
    )
    run = tmp_path / "run"
    trained = subprocess.run(
        [sys.executable, "-m", "engine.cli", "train", str(LENET), "--epochs", "1"]
        + ["--out", str(run)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert trained.returncode == 0, trained.stderr
    done = subprocess.run(
        [sys.executable, "-c", WINDOW_SCRIPT, str(LENET), str(run)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["shape"] == [None, 10]
    assert out["canvas"] == "8×8×6"
    assert "params" in out["params"]
    assert "steps per epoch" in out["lr_note"]
    assert "CPU" in out["devices"] and out["devices_asked"]
    assert "misclassified" in out["gallery"]
    assert out["service_pid"] and out["service_pid"] != os.getpid()
    assert out["tensorflow"] is False and out["keras"] is False


# ------------------------------------------------------ the service process itself


@pytest.fixture(scope="module")
def service(qapp):
    """One engine service process for this module's tests (whatever is imported here)."""
    svc = EngineService(local=False)
    yield svc
    svc.close()


def open_window(qtbot, service) -> MainWindow:
    w = MainWindow(
        load_project(LENET),
        load_tensorflow=True,
        check_recovery=False,
        use_settings=False,
        autosave=False,
    )
    qtbot.addWidget(w)
    w.validation.service = service
    with qtbot.waitSignal(w.validation.tensorflow_ready, timeout=TIMEOUT_MS):
        w.show()
    return w


def units_shape(w: MainWindow, node: str) -> tuple:
    return tuple(w.validation.info[node].output_shape)


def test_shapes_cross_the_process_boundary(qtbot, service):
    w = open_window(qtbot, service)
    try:
        assert not service.local and service.client.pid != os.getpid()
        assert units_shape(w, "fc1") == (None, 120)
        assert w.scene.node_item("fc1").shape_text == "120"
        node = w.project.graph.nodes["fc1"]
        w.undo_stack.push(SetParams("fc1", {**node.params, "units": 33}))
        qtbot.waitUntil(lambda: units_shape(w, "fc1") == (None, 33), timeout=10_000)
        assert w.scene.node_item("fc1").shape_text == "33"
        assert not w.validation.in_flight()
    finally:
        w.undo_stack.set_clean()
        w.close()


def test_the_service_restarts_after_a_kill_and_the_next_edit_gets_shapes(qtbot, service):
    w = open_window(qtbot, service)
    messages: list[str] = []
    w.validation.status.connect(messages.append)
    try:
        old = service.client.pid
        with qtbot.waitSignal(service.restarted, timeout=20_000):
            os.kill(old, signal.SIGKILL)
        qtbot.waitUntil(lambda: RESTARTED_MESSAGE in messages, timeout=5_000)
        assert w.statusBar().currentMessage() == RESTARTED_MESSAGE
        assert service.client.pid != old
        node = w.project.graph.nodes["fc2"]
        w.undo_stack.push(SetParams("fc2", {**node.params, "units": 21}))
        qtbot.waitUntil(lambda: units_shape(w, "fc2") == (None, 21), timeout=TIMEOUT_MS)
        assert w.scene.node_item("fc2").shape_text == "21"
        assert units_shape(w, "output") == (None, 10)  # nothing else was lost
    finally:
        w.undo_stack.set_clean()
        w.close()


def test_killed_while_a_request_is_in_flight_the_request_is_answered(qtbot, service):
    w = open_window(qtbot, service)
    try:
        node = w.project.graph.nodes["fc1"]
        w.undo_stack.push(SetParams("fc1", {**node.params, "units": 44}))
        w.validation.flush()  # sent now
        os.kill(service.client.pid, signal.SIGKILL)
        qtbot.waitUntil(lambda: units_shape(w, "fc1") == (None, 44), timeout=TIMEOUT_MS)
        assert service.client.restarts >= 1
    finally:
        w.undo_stack.set_clean()
        w.close()


def test_an_edit_storm_draws_only_the_last_graphs_shapes(qtbot, service):
    """Fifty edits sent one after another while earlier ones are in flight: the
    shapes applied are those of the last graph, never an older one's."""
    w = open_window(qtbot, service)
    applied: list[int] = []
    w.validation.updated.connect(
        lambda: "fc1" in w.validation.info and applied.append(units_shape(w, "fc1")[1])
    )
    try:
        base = dict(w.project.graph.nodes["fc1"].params)
        for units in range(50, 100):
            w.undo_stack.push(SetParams("fc1", {**base, "units": units}))
            w.validation.flush()  # a request per edit, none waiting for the debounce
        qtbot.waitUntil(lambda: not w.validation.in_flight(), timeout=TIMEOUT_MS)
        qtbot.wait(200)  # any late answer to an older request would arrive now
        assert units_shape(w, "fc1") == (None, 99)
        assert w.scene.node_item("fc1").shape_text == "99"
        new = applied[applied.index(99) :] if 99 in applied else []
        assert new and set(new) == {99}, applied[-10:]
        stale = [u for u in applied if 50 <= u < 99]
        assert not stale, f"shapes of older graphs were drawn: {stale[:5]}"
    finally:
        w.undo_stack.set_clean()
        w.close()


def test_computing_shapes_shows_in_the_status_bar_while_a_request_waits(qtbot, service):
    w = open_window(qtbot, service)
    try:
        w.validation.busy.emit(True)
        assert w.shapes_label.isVisible() and w.shapes_label.text() == "Computing shapes…"
        node = w.project.graph.nodes["fc1"]
        w.undo_stack.push(SetParams("fc1", {**node.params, "units": 7}))
        qtbot.waitUntil(lambda: units_shape(w, "fc1") == (None, 7), timeout=10_000)
        assert not w.shapes_label.isVisible()
    finally:
        w.undo_stack.set_clean()
        w.close()


def test_the_status_bar_says_when_the_training_engine_is_starting_and_ready(qtbot):
    w = MainWindow(load_tensorflow=False, check_recovery=False, use_settings=False)
    qtbot.addWidget(w)
    w.show()
    session = w.training_dock.session
    assert not w.worker_label.isVisible()
    session.warm_changed.emit("starting")
    assert w.worker_label.isVisible() and w.worker_label.text() == "Training engine starting…"
    session.warm_changed.emit("ready")
    assert w.worker_label.text() == "Ready to train"
    session.warm_changed.emit("off")
    assert not w.worker_label.isVisible()
