"""Import, export and Expand run in a child process of their own (issue 17): the
window never loads TensorFlow for them, each still works, Cancel kills the process,
and a process that dies is said in one line."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from engine.io.importing.read import UnreadableModelError
from engine.service.jobs import Job, JobError, portable

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "presets" / "lenet5.json"

WINDOW_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from PySide6.QtCore import QElapsedTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from engine.analysis.shapes import LayerInfo
    from engine.model.commands import UndoStack
    from engine.model.graph import Edge, Node
    from engine.model.project import Project, load_project
    from gui.main_window import MainWindow
    from gui.training.export_dialog import ExportDialog

    def wait(cond, what, ms=400_000):
        clock = QElapsedTimer(); clock.start()
        while not cond():
            if clock.elapsed() > ms:
                raise SystemExit(f"timed out waiting for {what}")
            app.processEvents(); time.sleep(0.005)

    tmp = Path(sys.argv[2])
    out, said = {}, []
    w = MainWindow(load_project(sys.argv[1]), check_recovery=False, use_settings=False,
                   autosave=False)
    w._warn = lambda title, message: said.append(message)
    w._inform = lambda title, message: said.append(message)
    w.show()
    wait(lambda: w.validation.ready, "shapes")
    out["types"] = sorted(n.type for n in w.project.graph.nodes.values())

    # File > Export of the untrained project, verified
    dialog = ExportDialog(Project.from_dict(w.project.to_dict(), path=w.project.path), w)
    dialog.path_edit.setText(str(tmp / "lenet.keras"))
    dialog.start_export()
    wait(lambda: not dialog.is_running(), "the export")
    out["export"] = dialog.message()
    out["verified"] = bool(dialog.result is not None and dialog.result.verified)

    # File > Import of what was exported
    ended = []
    job = w.import_path(tmp / "lenet.keras")
    out["import_pid"] = job.pid
    job.finished.connect(ended.append)
    wait(lambda: ended, "the import")
    out["imported"] = ended[0]
    out["imported_types"] = sorted(n.type for n in w.project.graph.nodes.values())
    out["imported_edges"] = len(w.project.graph.edges)

    # the inspector's Expand of a Backbone
    project = Project(name="t")
    project.graph.nodes = {
        "image": Node("image", "Input", {"shape": [32, 32, 3]}),
        "backbone": Node("backbone", "Backbone", {"application": "VGG16", "weights": None},
                         (0, 120)),
        "pool": Node("pool", "GlobalAveragePooling2D", {}, (0, 240)),
    }
    project.graph.edges = [Edge("image", "backbone"), Edge("backbone", "pool")]
    inspector = w.inspector
    inspector.set_project(project, UndoStack(project))
    inspector.set_analysis({"image": LayerInfo("image", "Input", (None, 32, 32, 3))})
    inspector.show_nodes(["backbone"])
    messages = []
    inspector.message.connect(messages.append)
    inspector.expand_button.click()
    wait(lambda: messages, "the expansion")
    out["expanded"] = messages[-1]
    out["expand_pid"] = inspector.expand_job.job.pid
    out["layers_after_expand"] = len(project.graph.nodes)
    out["said"] = said
    out["tensorflow"] = "tensorflow" in sys.modules
    out["keras"] = "keras" in sys.modules
    out["h5py"] = "h5py" in sys.modules
    print(json.dumps(out), flush=True)
    w.undo_stack.set_clean()
    import os; os._exit(0)
""")


def test_import_export_and_expand_leave_no_tensorflow_in_the_window(tmp_path):
    """A fresh interpreter opens the window, exports LeNet-5 (verified), imports the
    file back and expands a VGG16 Backbone: each works, each in a process of its own,
    and the window's process never loads TensorFlow, Keras or h5py."""
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        PYTHONPATH=str(ROOT),
        TF_CPP_MIN_LOG_LEVEL="2",
        LAYERLAB_SETTINGS=str(tmp_path / "s.ini"),
        LAYERLAB_RECOVERY_DIR=str(tmp_path / "recovery"),
        LAYERLAB_RUNS_DIR=str(tmp_path / "runs"),
    )
    done = subprocess.run(
        [sys.executable, "-c", WINDOW_SCRIPT, str(LENET), str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["verified"], out["export"]
    assert out["export"].startswith("Verified") and "lenet.keras" in out["export"]
    assert out["imported"] is True, out["said"]
    assert out["imported_types"] == out["types"]
    assert out["imported_edges"] == len(out["types"]) - 1  # a chain
    assert "expanded into 18 layers" in out["expanded"]
    assert out["layers_after_expand"] == 20
    assert out["import_pid"] and out["expand_pid"]
    assert os.getpid() not in (out["import_pid"], out["expand_pid"])
    assert out["tensorflow"] is False and out["keras"] is False and out["h5py"] is False


# ------------------------------------------------- the job process, seen from here


def _collect() -> tuple[list[dict], threading.Event, object]:
    events: list[dict] = []
    last = threading.Event()

    def on_event(event: dict) -> None:
        events.append(event)
        if event["event"] in ("done", "failed"):
            last.set()

    return events, last, on_event


def test_a_bad_file_is_said_naming_it_without_waiting_for_tensorflow(tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip at all")
    events, last, on_event = _collect()
    start = time.monotonic()
    args = {"path": str(bad), "weights": str(tmp_path / "w.h5")}
    job = Job("import", args, on_event, local=False)  # whatever this process has loaded
    job.start()
    assert job.pid != os.getpid()
    assert last.wait(60)
    error = events[-1]["error"]
    assert isinstance(error, UnreadableModelError)  # the importer's own kind, pickled back
    assert "broken.keras" in str(error)
    assert time.monotonic() - start < 30  # no TensorFlow import before reading the file


def test_cancel_kills_the_process_and_nothing_more_is_said(tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"PK")
    events, last, on_event = _collect()
    args = {"path": str(model), "weights": str(tmp_path / "w.h5")}
    job = Job("import", args, on_event, local=False)
    job.start()
    job.cancel()
    assert job.wait(10)
    assert not job._process.is_alive()
    assert events == [] and job.cancelled


def test_a_job_whose_process_dies_says_so_in_one_line(tmp_path):
    events, last, on_event = _collect()
    args = {"path": str(tmp_path / "m.keras"), "weights": "w.h5"}
    job = Job("import", args, on_event, local=False)
    job.start()
    os.kill(job.pid, signal.SIGKILL)
    assert last.wait(10)
    error = events[-1]["error"]
    assert isinstance(error, JobError)
    assert str(error) == "the import process was ended by SIGKILL (out of memory?)"


def test_an_exception_that_cannot_travel_keeps_its_words_and_type_name():
    class Odd(Exception):
        def __init__(self, a, b):
            super().__init__(f"{a} and {b}")

    sent = portable(Odd(1, 2))
    assert isinstance(sent, JobError) and sent.type_name == "Odd" and str(sent) == "1 and 2"
    back = pickle.loads(pickle.dumps(sent))
    assert back.type_name == "Odd" and str(back) == "1 and 2"
    assert portable(ValueError("x")).__class__ is ValueError


def test_a_job_that_cannot_start_is_said_as_a_failure(qtbot, monkeypatch, tmp_path):
    from gui.engine_service import EngineJob

    def refuse(self):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr("multiprocessing.context.SpawnProcess.start", refuse)
    args = {"source": str(tmp_path), "fmt": "keras", "out": "m.keras"}
    job = EngineJob("export", args, local=False)
    with qtbot.waitSignal(job.failed, timeout=5000) as failed:
        job.start()
    assert isinstance(failed.args[0], OSError) and job.wait(0)
