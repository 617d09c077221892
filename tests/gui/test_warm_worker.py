"""The warm training worker seen from the window (issue 17): started on request,
handed the next run, a spare started while that run trains and handed the run after
it, replaced when killed while waiting, none when "Keep a training worker ready" is
off."""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest

from engine.model.project import Project, save_project
from gui.file_actions import settings
from gui.main_window import WARM_WORKER_KEY, MainWindow
from gui.training import session as session_module
from gui.training.session import TrainingSession
from tests.gui.test_training_session import iris_project

TIMEOUT_MS = 120_000


def warm_processes() -> list:
    return [p for p in multiprocessing.active_children() if p.name == "layerlab-training-warm"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "recovery"))
    monkeypatch.setenv("LAYERLAB_RUNS_DIR", str(tmp_path / "runs"))


def make_window(qtbot, tmp_path, use_settings=False, epochs=2) -> MainWindow:
    path = tmp_path / "iris.json"
    project = Project.from_dict(iris_project(epochs=epochs, batch_size=2).to_dict(), path=path)
    save_project(project, path)
    w = MainWindow(project, load_tensorflow=False, check_recovery=False, use_settings=use_settings)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_option_is_on_by_default_in_the_app(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, use_settings=True)
    try:
        assert w.act_warm_worker.isChecked()
    finally:
        w.undo_stack.set_clean()
        w.close()


def test_option_off_means_no_worker_process(qtbot, tmp_path):
    settings().setValue(WARM_WORKER_KEY, False)
    w = make_window(qtbot, tmp_path, use_settings=True)
    try:
        assert not w.act_warm_worker.isChecked()
        assert "Keep a Training Worker Ready" in [
            a.text().replace("&", "") for a in w.view_menu.actions()
        ]
        w.start_warm_worker()
        assert w.training_dock.session.warm is None and warm_processes() == []
        w.act_warm_worker.setChecked(True)  # turned on: one starts, and the choice is kept
        assert w.training_dock.session.warm is not None and len(warm_processes()) == 1
        assert str(settings().value(WARM_WORKER_KEY)).lower() == "true"
        w.act_warm_worker.setChecked(False)  # off again: it ends
        assert w.training_dock.session.warm is None
        qtbot.waitUntil(lambda: warm_processes() == [], timeout=10_000)
        assert str(settings().value(WARM_WORKER_KEY)).lower() == "false"
    finally:
        w.undo_stack.set_clean()
        w.close()


@pytest.mark.slow
def test_train_uses_the_ready_worker_and_a_fresh_one_replaces_it(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(session_module, "SPARE_AFTER_S", 0.0)  # these runs are short
    w = make_window(qtbot, tmp_path)
    session = w.training_dock.session
    try:
        assert not w.act_warm_worker.isChecked()  # a window without settings: off
        w.start_warm_worker()
        assert session.warm is None
        w.act_warm_worker.setChecked(True)
        qtbot.waitUntil(lambda: session.warm_state == "ready", timeout=TIMEOUT_MS)
        assert w.statusBar().currentMessage() == "Training worker ready"
        first = session.warm.pid
        spares: list[tuple] = []  # (pid, state of the run, label shown) when one started
        session.warm_changed.connect(
            lambda state: (
                state == "starting"
                and spares.append((session.warm.pid, session.state, w.worker_label.isVisible()))
            )
        )
        with qtbot.waitSignal(session.started, timeout=TIMEOUT_MS):
            assert w.training_dock.train()
        assert session.pid == first  # handed over, not spawned
        with qtbot.waitSignal(session.finished, timeout=TIMEOUT_MS) as done:
            pass
        assert done.args[0]["epochs_done"] == 2 and session.last_run_warm
        # a spare was started while the run trained, and it is the one waiting now
        [(second, when, label_shown)] = spares
        assert when == "running" and second != first and session.warm.pid == second
        assert not label_shown, "the status bar says nothing of it while the run trains"
        qtbot.waitUntil(lambda: session.warm_state == "ready", timeout=TIMEOUT_MS)
        qtbot.waitUntil(lambda: [p.pid for p in warm_processes()] == [second], timeout=10_000)
        assert w.worker_label.text() == "Ready to train"
        # pressed right after: the spare trains the next run, and its own spare waits after
        with qtbot.waitSignal(session.finished, timeout=TIMEOUT_MS):
            assert w.training_dock.train()
            qtbot.waitUntil(lambda: session.pid == second, timeout=10_000)
        assert session.last_run_warm and session.warm.pid not in (first, second)
        qtbot.waitUntil(lambda: len(warm_processes()) == 1, timeout=10_000)  # one idle
        qtbot.waitUntil(lambda: session.warm_state == "ready", timeout=TIMEOUT_MS)
        second = session.warm.pid
        # killed while it waits: noticed and replaced, Train still answers
        os.kill(second, signal.SIGKILL)
        qtbot.waitUntil(
            lambda: session.warm is not None and session.warm.pid != second, timeout=10_000
        )
        third = session.warm.pid
        with qtbot.waitSignal(session.finished, timeout=TIMEOUT_MS):
            assert w.training_dock.train()
        assert session.last_run_warm  # the replacement trained it
        qtbot.waitUntil(
            lambda: session.warm is not None and session.warm.pid != third, timeout=10_000
        )
    finally:
        w.undo_stack.set_clean()
        w.close()  # ends the waiting worker
    qtbot.waitUntil(lambda: warm_processes() == [], timeout=10_000)


@pytest.mark.slow
def test_no_worker_waits_during_or_after_a_run_with_the_option_off(qtbot, tmp_path):
    session = TrainingSession()
    said: list[str] = []
    session.warm_changed.connect(said.append)
    try:
        with qtbot.waitSignal(session.started, timeout=TIMEOUT_MS):
            session.start(iris_project(epochs=2, batch_size=2).to_dict(), tmp_path / "run")
        with qtbot.waitSignal(session.finished, timeout=TIMEOUT_MS):
            assert warm_processes() == []
        qtbot.wait(300)  # the run's end would have started one by now
        assert session.warm is None and warm_processes() == [] and said == []
        assert not session.last_run_warm
    finally:
        session.shutdown()


@pytest.mark.slow
def test_session_device_change_starts_the_right_worker(qtbot, tmp_path):
    session = TrainingSession()
    try:
        session.keep_warm("cpu")
        qtbot.waitUntil(lambda: session.warm_state == "ready", timeout=TIMEOUT_MS)
        cpu = session.warm.pid
        session.keep_warm("auto")  # the same set-up on a machine without a GPU: kept
        assert session.warm.pid == cpu
        with qtbot.waitSignal(session.failed, timeout=TIMEOUT_MS) as failed:
            session.start(iris_project().to_dict(), tmp_path / "run", device="gpu:0")
        assert failed.args[0]["kind"] == "config"  # a fresh process said it, as before
        assert not session.last_run_warm
        # the next warm worker is set up for what the last run asked
        qtbot.waitUntil(lambda: session.warm is not None, timeout=10_000)
        assert session.warm.pid != cpu and session.warm.device == "gpu:0"
    finally:
        session.shutdown()
    assert session.warm is None
