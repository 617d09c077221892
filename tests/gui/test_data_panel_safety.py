"""The data panel reads user files only off the UI thread: a FIFO, a huge image or a
slow file never freezes the window, and the refusal is shown."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from engine.model.commands import SetSection, UndoStack
from engine.model.project import new_project
from gui.training.data_panel import DataPanel


def _unblock_later(fifo: Path, seconds: float = 10.0) -> None:
    """Should anything open the FIFO for reading, let it go after a while (so a
    regression fails the test instead of hanging it)."""

    def run() -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.05)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return  # no reader: nobody was blocked
        os.close(fd)

    threading.Thread(target=run, daemon=True).start()


def _panel(qtbot, tmp_path: Path, data: dict) -> DataPanel:
    project = new_project()
    project.path = tmp_path / "p.json"
    project.data = data
    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.set_project(project, UndoStack(project))
    return panel


@pytest.mark.parametrize("source", ["csv", "npz"])
def test_a_fifo_as_the_data_file_does_not_block_the_ui_thread(qtbot, tmp_path, source):
    fifo = tmp_path / f"pipe.{source}"
    os.mkfifo(fifo)
    _unblock_later(fifo)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    start = time.monotonic()
    panel = _panel(qtbot, tmp_path, {"source": source, "path": str(fifo)})
    assert time.monotonic() - start < 1.0, "opening the panel waited for the FIFO"
    qtbot.waitUntil(lambda: bool(ticks), timeout=200)  # the event loop keeps running
    qtbot.waitUntil(lambda: not panel.busy, timeout=5_000)
    timer.stop()
    assert ticks[0] - start < 1.0
    assert "is not a regular file (a FIFO" in panel.load_error
    assert "is not a regular file" in panel.message.text()
    assert panel.dataset is None


def test_the_preview_shows_a_busy_indicator_and_the_last_edit_wins(qtbot, tmp_path):
    csv = tmp_path / "things.csv"
    csv.write_text("a,b,kind\n" + "".join(f"{i},{i * 2},{'xy'[i % 2]}\n" for i in range(40)))
    npz = tmp_path / "arrays.npz"
    np.savez(npz, x=np.zeros((30, 3), np.float32), y=np.arange(30) % 3)
    panel = _panel(qtbot, tmp_path, {"source": "csv", "path": "things.csv"})
    assert panel.busy and panel.spinner.isVisibleTo(panel)
    # a second edit before the first load ends: only its result is shown
    panel.undo_stack.push(SetSection("data", {"source": "npz", "path": "arrays.npz"}, "npz"))
    qtbot.waitUntil(lambda: not panel.busy, timeout=10_000)
    assert not panel.spinner.isVisibleTo(panel)
    assert panel.dataset is not None and panel.dataset.input_shape == (3,)
    assert [panel.x_array.itemText(i) for i in range(panel.x_array.count())] == ["x", "y"]
    assert panel.load_error == ""


def test_csv_columns_fill_the_target_picker_from_the_background(qtbot, tmp_path):
    (tmp_path / "things.csv").write_text(
        "a,b,kind\n" + "".join(f"{i},{i * 2},{'xy'[i % 2]}\n" for i in range(40))
    )
    panel = _panel(qtbot, tmp_path, {"source": "csv", "path": "things.csv"})
    qtbot.waitUntil(lambda: not panel.busy, timeout=10_000)
    assert [panel.target.itemText(i) for i in range(panel.target.count())] == ["a", "b", "kind"]
    assert panel.dataset is not None and panel.dataset.num_classes == 2


def test_the_evaluation_view_refuses_a_fifo_evaluation_file_without_blocking(qtbot, tmp_path):
    from gui.training.evaluation_view import EvaluationView

    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / "evaluation.json")
    _unblock_later(run / "evaluation.json")
    view = EvaluationView()
    qtbot.addWidget(view)
    start = time.monotonic()
    view.show_run(run)
    assert time.monotonic() - start < 1.0, "show_run waited for the FIFO"
    assert view.evaluation == {} and view.message()  # shown as a run without an evaluation


def test_the_source_list_names_each_built_in_set_in_whole_words(qtbot):
    panel = DataPanel()
    qtbot.addWidget(panel)
    texts = [panel.source.itemText(i) for i in range(panel.source.count())]
    assert "moons — Two interleaving half circles in 2-D" in texts
    assert all(t.count("(") == t.count(")") for t in texts), texts  # no "... in 2-D (2"
