"""Training on several machines from the window: the cluster dialog and a real run.

The dialog and the device combo run without TensorFlow; a port already taken on
this machine fails without starting TensorFlow; one slow test trains a tiny iris
model on a real two-worker loopback cluster (the other worker started with
``python -m engine.cli.main worker``), pressing Train in the dock.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication

from engine.model.commands import UndoStack
from engine.model.graph import Edge, Node
from engine.model.project import Project, save_project
from engine.train.cluster import free_ports, worker_commands
from gui.training.cluster_dialog import ClusterDialog
from gui.training.dock import PAUSE_CLUSTER_TIP, TrainingDock
from gui.training.errors import TITLES
from gui.training.training_panel import EDIT_CLUSTER, TrainingPanel

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_MS = 120_000


def iris_project(path: Path) -> Project:
    """A tiny iris classifier saved at ``path`` (2 epochs)."""
    project = Project(name="iris")
    project.graph.add_node(Node("input", "Input", {"shape": [4]}, (0, 0)))
    project.graph.add_node(Node("hidden", "Dense", {"units": 8, "activation": "relu"}, (0, 120)))
    project.graph.add_node(Node("out", "Dense", {"units": 3, "activation": "softmax"}, (0, 240)))
    project.graph.connect(Edge("input", "hidden", 0))
    project.graph.connect(Edge("hidden", "out", 0))
    project.data = {"source": "builtin:iris", "validation_split": 0.2}
    project.training.update(
        batch_size=12,
        epochs=2,
        seed=0,
        metrics=["accuracy"],
        loss="sparse_categorical_crossentropy",
    )
    save_project(project, path)
    return project


def choose_cluster(qtbot, panel: TrainingPanel) -> ClusterDialog:
    """Pick ``Cluster…`` in the device combo, as a user does; the dialog opens."""
    panel.device.setCurrentIndex(panel.device.findData(EDIT_CLUSTER))
    dialog = panel.cluster_dialog
    assert dialog is not None
    qtbot.waitExposed(dialog)
    return dialog


def test_dialog_shows_each_machines_command_and_refuses_an_unsaved_project(qtbot, tmp_path):
    path = tmp_path / "my project.json"
    dialog = ClusterDialog({"batch_size": 16}, path)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.ok_button.isEnabled()  # no worker listed yet
    assert "this machine" in dialog.problems_label.text()

    dialog.local_count.setValue(3)
    dialog.fill_localhost()
    workers = dialog.workers()
    assert len(workers) == 3 and all(w.startswith("localhost:") for w in workers)
    shown = dialog.commands_view.toPlainText().splitlines()
    lines = [line for line in shown if not line.startswith("#")]
    assert lines == worker_commands(path, workers, 0)
    assert [line for line in shown if line.startswith("#")] == [
        f"# on {workers[1]} (worker 1)",
        f"# on {workers[2]} (worker 2)",
    ]
    assert [line.rsplit(" ", 1)[1] for line in lines] == ["1", "2"]  # not this machine
    assert all(f"'{path}'" in line and ",".join(workers) in line for line in lines)
    assert dialog.global_batch.value() == 48  # batch size 16 x 3 workers
    assert dialog.ok_button.isEnabled() and not dialog.problems_label.isVisible()
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == "\n".join(lines)

    dialog.workers_edit.setPlainText("\n".join(workers[:2] + ["gpu-box"]))
    assert "'gpu-box'" in dialog.problems_label.text() and dialog.problems_label.isVisible()
    assert not dialog.ok_button.isEnabled() and dialog.commands_view.toPlainText() == ""
    dialog.workers_edit.setPlainText(f"{workers[0]}\n{workers[0]}")
    assert "listed twice" in dialog.problems_label.text()

    unsaved = ClusterDialog({"batch_size": 16}, None)
    qtbot.addWidget(unsaved)
    unsaved.fill_localhost()
    assert "Save the project first" in unsaved.commands_note.text()
    assert unsaved.commands_view.toPlainText() == ""
    assert not unsaved.ok_button.isEnabled() and not unsaved.copy_button.isEnabled()


def test_ok_stores_the_cluster_in_one_undo_step_and_a_device_removes_it(qtbot, tmp_path):
    project = iris_project(tmp_path / "iris.json")
    stack = UndoStack(project)
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.set_project(project, stack)
    panel.device.setCurrentIndex(panel.device.findData("cpu"))
    assert project.training["device"] == "cpu" and stack.can_undo

    dialog = choose_cluster(qtbot, panel)
    assert panel.device.currentData() == "cpu"  # the combo keeps its choice meanwhile
    addresses = [f"127.0.0.1:{p}" for p in free_ports(3)]
    dialog.workers_edit.setPlainText("\n".join(addresses))
    dialog.timeout.setValue(20)
    before = project.to_dict()
    dialog.ok_button.click()
    cluster = project.training["cluster"]
    assert cluster["workers"] == addresses and cluster["global_batch_size"] == 36
    assert cluster["timeout_s"] == 20
    assert panel.device.currentText() == "Cluster (3 workers)"
    assert "cluster of 3 workers" in stack.undo_text
    assert panel.problems == []

    stack.undo()  # one step takes the whole cluster away
    assert project.to_dict() == before
    assert panel.device.currentData() == "cpu"
    stack.redo()
    assert panel.device.currentText() == "Cluster (3 workers)"

    # editing another setting keeps the cluster
    panel.epochs.setValue(5)
    assert project.training["cluster"]["workers"] == addresses

    # choosing a device again trains on this machine alone (one step)
    with_cluster = project.to_dict()
    panel.device.setCurrentIndex(panel.device.findData("auto"))
    assert "cluster" not in project.training and project.training["device"] == "auto"
    assert panel.device.findText("Cluster (3 workers)") < 0
    stack.undo()
    assert project.to_dict() == with_cluster

    # Cancel changes nothing
    dialog = choose_cluster(qtbot, panel)
    dialog.fill_localhost()
    dialog.reject()
    assert project.to_dict() == with_cluster
    assert panel.device.currentText() == "Cluster (3 workers)"


@pytest.fixture
def dock(qtbot, tmp_path, monkeypatch):
    """A shown training dock on a saved iris project; its error dialogs are recorded."""
    monkeypatch.delenv("LAYERLAB_RUNS_DIR", raising=False)
    errors: list[tuple[str, str]] = []
    monkeypatch.setattr(TrainingDock, "_show_error", lambda self, t, m: errors.append((t, m)))
    project = iris_project(tmp_path / "iris.json")
    stack = UndoStack(project)
    dock = TrainingDock()
    dock.errors = errors
    qtbot.addWidget(dock)
    dock.set_project(project, stack)
    dock.show()
    dock.build()
    qtbot.waitUntil(lambda: not dock.data_panel.busy, timeout=30_000)
    yield dock
    dock.shutdown()


def use_cluster(qtbot, dock: TrainingDock, addresses: list[str]) -> None:
    """Configure ``addresses`` in the dialog and save the project, as a user does."""
    dialog = choose_cluster(qtbot, dock.training_panel)
    dialog.workers_edit.setPlainText("\n".join(addresses))
    dialog.ok_button.click()
    assert dock.training_panel.cluster is not None


def test_train_refuses_unsaved_changes_names_a_busy_port_and_stops_while_waiting(qtbot, dock):
    addresses = [f"127.0.0.1:{p}" for p in free_ports(2)]
    use_cluster(qtbot, dock, addresses)
    assert not dock.train()  # the other machines would read an older project file
    assert dock.errors[-1][0] == "Save the project first"
    assert str(dock.project.path) in dock.errors[-1][1]

    save_project(dock.project, dock.project.path)
    dock.undo_stack.set_clean()
    busy = socket.socket()
    busy.bind(("127.0.0.1", int(addresses[0].rsplit(":", 1)[1])))
    busy.listen()
    try:
        with qtbot.waitSignal(dock.session.failed, timeout=30_000) as failed:
            assert dock.train()
    finally:
        busy.close()
    assert failed.args[0]["kind"] == "cluster"
    title, text = dock.errors[-1]
    assert title == TITLES["cluster"] and addresses[0] in text and "in use" in text
    assert dock.live.progress.format() == "Failed"
    assert dock.live.train_button.isEnabled()

    # with the port free it starts and waits for worker 1; Stop ends it, no error box
    shown = len(dock.errors)
    with qtbot.waitSignal(dock.session.waiting, timeout=60_000) as waiting:
        assert dock.train()
    assert waiting.args[0] == [addresses[1]]
    assert dock.live.progress.format() == f"Waiting for workers: {addresses[1]}"
    with qtbot.waitSignal(dock.session.failed, timeout=30_000) as failed:
        dock.live.stop_button.click()
    assert (
        failed.args[0]["stopped"]
        and "before every worker had joined" in dock.live.log.toPlainText()
    )
    assert len(dock.errors) == shown and dock.state == "idle"
    assert dock.live.progress.format() == "Stopped before every worker joined"


def launch_worker(project: Path, addresses: list[str], index: int) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "worker",
            str(project),
            "--cluster",
            ",".join(addresses),
            "--index",
            str(index),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def end_worker(proc: subprocess.Popen, timeout: float = 30) -> str:
    """The worker's output once it ended (killed, with its children, if it did not)."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = proc.communicate()
    return out


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_two_worker_cluster_run_from_the_dock_draws_the_same_curves(qtbot, dock):
    use_cluster(qtbot, dock, [f"127.0.0.1:{p}" for p in free_ports(2)])
    addresses = dock.training_panel.cluster["workers"]
    save_project(dock.project, dock.project.path)
    dock.undo_stack.set_clean()
    waiting: list[list] = []
    dock.session.waiting.connect(waiting.append)
    statuses: list[str] = []
    dock.status_text.connect(statuses.append)

    worker = None
    try:
        with qtbot.waitSignal(dock.session.finished, timeout=RUN_TIMEOUT_MS) as finished:
            assert dock.train()
            live = dock.live
            assert not live.pause_button.isEnabled()
            assert live.pause_button.toolTip() == PAUSE_CLUSTER_TIP
            log = live.log.toPlainText()
            assert "--index 1" in log and str(dock.project.path) in log
            # the chief says whom it waits for, until the other worker starts
            qtbot.waitUntil(lambda: bool(waiting), timeout=60_000)
            assert waiting[0] == [addresses[1]]
            assert f"Waiting for workers: {addresses[1]}" in live.log.toPlainText()
            worker = launch_worker(dock.project.path, addresses, 1)
        output = end_worker(worker)
    finally:
        if worker is not None and worker.poll() is None:
            end_worker(worker, timeout=0.1)
    done = finished.args[0]
    assert dock.errors == []
    assert done["workers"] == 2 and done["epochs_done"] == 2
    assert worker.returncode == 0, output
    plots = dock.live.plots
    for key in ("epoch:loss", "epoch:val_loss", "epoch:val_accuracy"):
        assert list(plots.curve(key).getData()[0]) == [1, 2], key
    assert dock.live.progress.format().startswith("Done: 2 epoch")
    assert any(s.startswith("Training: waiting for workers") for s in statuses)
    run_dir = dock.session.run_dir
    for name in (
        "project.json",
        "model.keras",
        "checkpoints/last.keras",
        "history.json",
        "evaluation.json",
    ):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "status.json").read_text())["state"] == "done"
    assert len(json.loads((run_dir / "history.json").read_text())["loss"]) == 2
    assert dock.live.train_button.isEnabled()
    assert dock.live.pause_button.toolTip() != PAUSE_CLUSTER_TIP
