"""Cancel in the export dialog (issue 17): it kills the export's process, leaves
nothing at the target (no file, no temporary file) and says "Export cancelled".
Exports run in a real child process here (TensorFlow never loads in this one)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from engine.files import TEMP_MARK
from engine.model.project import Project
from gui.engine_service import EngineJob
from gui.training import export_dialog
from gui.training.export_dialog import ExportDialog, wait_for_exports
from tests.engine.test_fine_tune import tiny_project_dict


@pytest.fixture
def dialog(qtbot, monkeypatch):
    # a real process even when another test module loaded Keras into this one
    monkeypatch.setattr(export_dialog, "EngineJob", functools.partial(EngineJob, local=False))
    widget = ExportDialog(Project.from_dict(tiny_project_dict({"epochs": 1})))
    qtbot.addWidget(widget)
    widget.resize(1280, 800)
    widget.show()
    yield widget
    wait_for_exports()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMP_MARK in p.name)


def test_cancel_right_after_start_kills_the_process_and_says_so(dialog, tmp_path, qtbot):
    out = tmp_path / "model.keras"
    # what an earlier writer killed mid-write would have left beside the target
    stale = tmp_path / f".model.keras{TEMP_MARK}abc123.keras"
    stale.write_bytes(b"partial")
    dialog.set_format("keras")
    dialog.path_edit.setText(str(out))
    finished: list[tuple[bool, str]] = []
    dialog.finished_export.connect(lambda ok, text: finished.append((ok, text)))

    dialog.export_button.click()
    assert dialog.is_running()
    assert dialog.cancel_button.isVisible() and not dialog.export_button.isVisible()
    dialog.grab().save(str(tmp_path.parent / "export_busy.png"))
    job = dialog._thread.job
    qtbot.waitUntil(lambda: job.pid is not None, timeout=10_000)

    dialog.cancel_button.click()
    assert not dialog.is_running()
    assert "Export cancelled" in dialog.message()
    assert finished == [(False, "Export cancelled")]
    assert dialog.export_button.isVisible() and dialog.export_button.isEnabled()
    assert not dialog.cancel_button.isVisible() and not dialog.progress.isVisible()
    assert job.wait(10)  # the reader saw the process end
    assert job._process.exitcode is not None
    assert not out.exists() and leftovers(tmp_path) == []
    qtbot.wait(100)  # nothing arrives after the cancel
    assert dialog.result is None and dialog.error is None
    assert "Export cancelled" in dialog.message()


def test_cancel_while_a_savedmodel_is_being_written_leaves_nothing(dialog, tmp_path, qtbot):
    out = tmp_path / "model_savedmodel"
    dialog.set_format("savedmodel")
    dialog.path_edit.setText(str(out))
    dialog.verify_box.setChecked(False)
    dialog.export_button.click()
    job = dialog._thread.job
    # the child has imported TensorFlow and started writing its temporary folder
    qtbot.waitUntil(lambda: bool(leftovers(tmp_path)) or job.done(), timeout=90_000)
    assert not job.done(), "the export finished before it could be cancelled"
    dialog.cancel_button.click()
    assert job.wait(10)
    assert not out.exists() and leftovers(tmp_path) == []
    assert "Export cancelled" in dialog.message()
