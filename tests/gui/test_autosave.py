"""Crash recovery: autosave writes a recovery file; the next start offers it back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.model.commands import Rename
from gui.autosave import find_recovery
from gui.file_actions import default_project
from gui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "recovery"))


def _window(qtbot, monkeypatch, restore: bool | None = None) -> MainWindow:
    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")
    asked = []
    if restore is not None:

        def ask(self, question):
            asked.append(question)
            return restore

        monkeypatch.setattr(MainWindow, "_ask_restore", ask)
    window = MainWindow(load_tensorflow=False, check_recovery=restore is not None)
    window.asked = asked
    qtbot.addWidget(window)
    return window


CRASHING_SESSION = textwrap.dedent("""
    import os, time
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from engine.model.commands import Rename
    from gui.file_actions import default_project
    from gui.main_window import MainWindow
    w = MainWindow(load_tensorflow=False, check_recovery=False)
    w.show()
    first = next(iter(w.project.graph.nodes))
    w.undo_stack.push(Rename(first, "renamed_before_crash"))
    deadline = time.time() + 10
    while not w.autosaver.file.exists() and time.time() < deadline:
        app.processEvents()
        time.sleep(0.02)
    os._exit(0)  # killed: no clean-exit path runs
""")


def test_autosave_survives_a_kill_and_restart_offers_restore(qtbot, monkeypatch, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_SESSION],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    files = list((tmp_path / "recovery").glob("recovery-*.json"))
    assert len(files) == 1, "the killed session left no recovery file"

    window = _window(qtbot, monkeypatch, restore=True)
    window.show()
    qtbot.waitUntil(lambda: bool(window.asked), timeout=3000)
    assert "renamed_before_crash" in window.project.graph.nodes
    assert window.isWindowModified(), "restored work must count as unsaved"
    assert not files[0].exists(), "the restored recovery file is not offered twice"


def test_autosave_writes_recovery_after_an_edit_and_clean_exit_removes_it(qtbot, monkeypatch):
    window = _window(qtbot, monkeypatch)
    first = next(iter(window.project.graph.nodes))
    window.undo_stack.push(Rename(first, "edited"))
    qtbot.waitUntil(window.autosaver.file.exists, timeout=5000)
    saved = json.loads(window.autosaver.file.read_text())
    assert "edited" in [n["id"] for n in saved["project"]["graph"]["nodes"]]
    window.close()
    assert not window.autosaver.file.exists(), "a clean exit must delete the recovery file"


def test_declining_restore_discards_the_recovery(qtbot, monkeypatch, tmp_path):
    folder = tmp_path / "recovery"
    folder.mkdir()
    stale = folder / "recovery-999999.json"
    project = default_project().to_dict()
    stale.write_text(json.dumps({"saved_at": 1.0, "pid": 999999, "path": None, "project": project}))
    window = _window(qtbot, monkeypatch, restore=False)
    assert window.offer_recovery() is False
    assert window.asked, "the user was not asked"
    assert not stale.exists()
    assert find_recovery(folder) is None


def test_saving_clears_the_recovery_file(qtbot, monkeypatch, tmp_path):
    window = _window(qtbot, monkeypatch)
    first = next(iter(window.project.graph.nodes))
    window.undo_stack.push(Rename(first, "edited"))
    assert window.autosaver.save_now()
    assert window.autosaver.file.exists()
    monkeypatch.setattr(MainWindow, "_ask_save_path", lambda self: str(tmp_path / "m.json"))
    assert window.save()
    assert not window.autosaver.file.exists()
    window.undo_stack.undo()
    assert window.isWindowModified()
