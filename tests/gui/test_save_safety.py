"""Saves in the window lose nothing and leak nothing (issue 12, the window's side).

- a received project naming a private file as its weights is saved without copying it,
  with one message naming the file and why;
- a file changed on disk by another window is never overwritten silently, and a
  clean window reloads it by itself;
- a weights copy that fails on a full disk names the weights file and keeps the old one;
- autosave leaves no temporary files, and start-up removes those killed saves left;
- import runs off the UI thread and can be cancelled; a FIFO is refused by Open;
- the restore prompt names the project it restores.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QPushButton

from engine.build import weights as weights_module
from engine.build.weights import GRAPH_KEY
from engine.model.commands import Rename
from engine.model.project import load_project, new_project, save_project
from gui.background_import import ImportJob
from gui.main_window import MainWindow

SECRET = b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot really\n"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "app" / "recovery"))


def _window(qtbot, monkeypatch, **kwargs) -> MainWindow:
    """A window whose questions are answered by the test and whose messages are kept."""
    monkeypatch.setattr(MainWindow, "_ask_save", lambda self: "discard")
    kwargs.setdefault("check_recovery", False)
    kwargs.setdefault("autosave", False)  # two windows in one process share a recovery file
    w = MainWindow(load_tensorflow=False, **kwargs)
    w.warnings = []
    w._warn = lambda title, message: w.warnings.append((title, message))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def _edit(window: MainWindow, new_id: str) -> None:
    nodes = window.project.graph.nodes
    first = next((n for n in nodes if n != "input"), next(iter(nodes)))
    window.undo_stack.push(Rename(first, new_id))


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "tmp" in p.name)


# ----------------------------------------------------------------- the save leak
@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_a_project_naming_a_private_file_saves_without_copying_it(
    qtbot, monkeypatch, tmp_path, how
):
    private = tmp_path / "home" / ".ssh" / "id_rsa"
    private.parent.mkdir(parents=True)
    private.write_bytes(SECRET)
    received = tmp_path / "home" / "received"
    received.mkdir()
    named = {
        "absolute": str(private),
        "dotdot": "../.ssh/id_rsa",
        "symlink": "model.weights.h5",
    }[how]
    if how == "symlink":
        (received / "model.weights.h5").symlink_to(private)
    project = new_project("received")
    project.extra["weights"] = named
    save_project(project, received / "project.json")

    window = _window(qtbot, monkeypatch)
    assert window.open_path(received / "project.json")
    _edit(window, "edited_layer")
    window.act_save.trigger()

    # the project itself is saved, with the edit, and is clean
    saved = load_project(received / "project.json")
    assert "edited_layer" in saved.graph.nodes
    assert window.is_clean() and not window.isWindowModified()
    # the "weights" key is left as it was (the project's own data), nothing was copied
    assert saved.extra["weights"] == named
    assert not (received / "project.weights.h5").exists()
    assert all(SECRET not in p.read_bytes() for p in received.iterdir() if p.is_file()) or (
        how == "symlink"  # the symlink the received project came with still points at it
        and [p.name for p in received.iterdir() if SECRET in p.read_bytes()] == ["model.weights.h5"]
    )
    # one clear message: the full path of the file and why
    [(title, message)] = window.warnings
    assert "without" in title.lower() or "not copied" in message
    assert str(private) in message or str(received / named) in message
    assert "not an HDF5 weights file" in message
    assert "Traceback" not in message

    # Save As into another folder: still nothing copied, still saved, no second dialog
    elsewhere = tmp_path / "shared" / "repo"
    elsewhere.mkdir(parents=True)
    if how == "absolute":
        monkeypatch.setattr(MainWindow, "_ask_save_path", lambda self: str(elsewhere / "m.json"))
        _edit(window, "edited_again")
        assert window.save_as()
        assert "edited_again" in load_project(elsewhere / "m.json").graph.nodes
        assert os.listdir(elsewhere) == ["m.json"]
        assert len(window.warnings) == 1, "the same refusal is said once, then in the status bar"
        assert "without copying" in window.statusBar().currentMessage()


# ------------------------------------------------------- files changed on disk
def _two_windows(qtbot, monkeypatch, tmp_path) -> tuple[MainWindow, MainWindow, Path]:
    path = tmp_path / "shared.json"
    save_project(new_project("shared"), path)
    a = _window(qtbot, monkeypatch)
    b = _window(qtbot, monkeypatch)
    assert a.open_path(path) and b.open_path(path)
    return a, b, path


def test_a_clean_window_reloads_a_file_another_window_saved(qtbot, monkeypatch, tmp_path):
    a, b, path = _two_windows(qtbot, monkeypatch, tmp_path)
    b.undo_stack.push(Rename("input", "from_b"))
    assert b.save()
    qtbot.waitUntil(lambda: "from_b" in a.project.graph.nodes, timeout=5000)
    assert a.is_clean() and "changed on disk and was reloaded" in a.statusBar().currentMessage()
    assert a.changed_bar.isHidden()
    # the watch survives the atomic rename: a second outside save is seen too
    b.undo_stack.push(Rename("from_b", "from_b_again"))
    assert b.save()
    qtbot.waitUntil(lambda: "from_b_again" in a.project.graph.nodes, timeout=5000)
    # b's own save was not reported to b as an outside change
    assert b.changed_bar.isHidden() and b.warnings == []


def test_a_broken_outside_write_is_offered_not_forced_on_a_clean_window(
    qtbot, monkeypatch, tmp_path
):
    a, _b, path = _two_windows(qtbot, monkeypatch, tmp_path)
    before = a.project
    path.write_text('{"format": "layerlab", "version": 1, "graph": ')  # another tool, halfway
    qtbot.waitUntil(lambda: a.changed_bar.isVisible(), timeout=5000)
    assert a.project is before and a.warnings == [], "no popup from a file event"


@pytest.mark.parametrize("answer", ["cancel", "overwrite", "reload", "save_as"])
def test_saving_over_a_file_another_window_saved_asks_first(qtbot, monkeypatch, tmp_path, answer):
    a, b, path = _two_windows(qtbot, monkeypatch, tmp_path)
    _edit(a, "from_a")  # unsaved edits in A
    b.undo_stack.push(Rename("input", "from_b"))
    assert b.save()
    # A has unsaved edits: it offers to reload (a bar), it does not reload by itself
    qtbot.waitUntil(lambda: a.changed_bar.isVisible(), timeout=5000)
    assert (
        "changed on disk" in a.changed_bar.label.text() and str(path) in a.changed_bar.label.text()
    )
    assert "from_a" in a.project.graph.nodes

    asked: list[str] = []

    def ask(self, message):
        asked.append(message)
        return answer

    monkeypatch.setattr(MainWindow, "_ask_changed_on_disk", ask)
    other = tmp_path / "mine.json"
    monkeypatch.setattr(MainWindow, "_ask_save_path", lambda self: str(other))
    saved = a.save()
    assert len(asked) == 1 and str(path) in asked[0] and "changed on disk" in asked[0]
    on_disk = load_project(path).graph.nodes
    if answer == "cancel":
        assert not saved and "from_b" in on_disk and "from_a" not in on_disk
        assert not a.is_clean()
    elif answer == "overwrite":
        assert saved and "from_a" in on_disk and "from_b" not in on_disk
        assert a.is_clean()
    elif answer == "reload":
        assert not saved and "from_b" in a.project.graph.nodes and a.is_clean()
        assert "from_a" not in on_disk
    else:
        assert saved and "from_b" in on_disk, "B's file is left alone"
        assert "from_a" in load_project(other).graph.nodes
        assert Path(a.project.path) == other


def test_the_bar_reloads_and_a_save_after_reload_does_not_ask(qtbot, monkeypatch, tmp_path):
    a, b, path = _two_windows(qtbot, monkeypatch, tmp_path)
    _edit(a, "from_a")
    b.undo_stack.push(Rename("input", "from_b"))
    assert b.save()
    qtbot.waitUntil(lambda: a.changed_bar.isVisible(), timeout=5000)
    a.changed_bar.reload_button.click()
    assert "from_b" in a.project.graph.nodes and a.is_clean() and a.changed_bar.isHidden()
    monkeypatch.setattr(MainWindow, "_ask_changed_on_disk", lambda self, m: pytest.fail(m))
    a.undo_stack.push(Rename("from_b", "then_a"))
    assert a.save() and "then_a" in load_project(path).graph.nodes


def test_a_file_only_touched_is_not_a_change(qtbot, monkeypatch, tmp_path):
    a, _b, path = _two_windows(qtbot, monkeypatch, tmp_path)
    _edit(a, "from_a")
    os.utime(path, (time.time() + 5, time.time() + 5))
    monkeypatch.setattr(MainWindow, "_ask_changed_on_disk", lambda self, m: pytest.fail(m))
    assert a.save() and "from_a" in load_project(path).graph.nodes


# ----------------------------------------------------- a full disk during Save As
def _layerlab_weights(path: Path) -> None:
    """A file as LayerLab's import writes it: HDF5 with the graph stored beside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("weights", data=list(range(4096)))
        f.create_dataset(GRAPH_KEY, data=json.dumps({"nodes": [], "edges": []}))


def _imported_project(tmp_path: Path):
    source = tmp_path / "app" / "imports" / "model-1234.weights.h5"
    _layerlab_weights(source)
    project = new_project("imported")
    project.extra["weights"] = str(source)
    return project


def test_save_as_on_a_full_disk_names_the_weights_and_keeps_the_old_ones(
    qtbot, monkeypatch, tmp_path
):
    window = _window(qtbot, monkeypatch)
    window._replace_project(_imported_project(tmp_path), clean=False)
    folder = tmp_path / "projects"
    folder.mkdir()
    (folder / "mine.weights.h5").write_bytes(b"the weights saved last week")

    def full_disk(src, dst, length=0):
        dst.write(src.read(1000))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(weights_module.shutil, "copyfileobj", full_disk)
    monkeypatch.setattr(MainWindow, "_ask_save_path", lambda self: str(folder / "mine.json"))
    assert not window.save_as()
    assert (folder / "mine.weights.h5").read_bytes() == b"the weights saved last week"
    assert sorted(os.listdir(folder)) == ["mine.weights.h5"], "no project, no temporary file"
    [(_title, message)] = window.warnings
    assert message.startswith(str(folder / "mine.weights.h5"))
    assert "No space left on device" in message and "unchanged" in message
    assert "mine.json:" not in message
    assert not window.is_clean()


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (needs root; skipped elsewhere)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {done.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def test_save_as_onto_a_really_full_disk(qtbot, monkeypatch, tmp_path, tiny_disk):
    project = _imported_project(tmp_path)
    big = Path(project.extra["weights"])
    with h5py.File(big, "a") as f:
        f.create_dataset("more", data=list(range(20_000)))  # > 64 KiB
    window = _window(qtbot, monkeypatch)
    window._replace_project(project, clean=False)
    (tiny_disk / "mine.weights.h5").write_bytes(b"old")
    monkeypatch.setattr(MainWindow, "_ask_save_path", lambda self: str(tiny_disk / "mine.json"))
    assert not window.save_as()
    assert (tiny_disk / "mine.weights.h5").read_bytes() == b"old"
    assert sorted(os.listdir(tiny_disk)) == ["mine.weights.h5"]
    [(_title, message)] = window.warnings
    assert message.startswith(str(tiny_disk / "mine.weights.h5"))
    assert "No space left on device" in message


def test_save_as_copies_large_weights_while_the_window_stays_responsive(
    qtbot, monkeypatch, tmp_path
):
    project = _imported_project(tmp_path)
    source = Path(project.extra["weights"])
    with h5py.File(source, "a") as f:
        f.create_dataset("big", data=np.arange(4 << 20, dtype="float32"))  # 16 MiB
    real_copy = weights_module.shutil.copyfileobj
    copying = threading.Event()

    def slow_drive(src, dst, length=0):  # a network drive: 1 MiB each 30 ms
        copying.set()
        while chunk := src.read(1 << 20):
            dst.write(chunk)
            time.sleep(0.03)

    monkeypatch.setattr(weights_module.shutil, "copyfileobj", slow_drive)
    window = _window(qtbot, monkeypatch)
    window._replace_project(project, clean=False)
    _edit(window, "before_save")
    folder = tmp_path / "projects"
    folder.mkdir()
    monkeypatch.setattr(MainWindow, "_ask_save_path", lambda self: str(folder / "big.json"))
    ticks: list[float] = []  # the probe's ticks while the copy runs

    def tick() -> None:
        if copying.is_set():
            ticks.append(time.perf_counter())

    probe = QTimer()
    probe.setInterval(10)
    probe.timeout.connect(tick)
    probe.start()
    try:
        started = time.perf_counter()
        assert window.save_as()
        took = time.perf_counter() - started
    finally:
        probe.stop()
        monkeypatch.setattr(weights_module.shutil, "copyfileobj", real_copy)
    assert took > 0.4, "the copy was slow enough to matter"
    late_ms = [(b - a) * 1000 - 10 for a, b in zip(ticks, ticks[1:])]
    assert len(late_ms) > 20, "the UI thread ran while the weights were copied"
    assert max(late_ms) < 100, f"the UI thread stalled {max(late_ms):.0f} ms"
    copied = folder / "big.weights.h5"
    assert copied.read_bytes() == source.read_bytes()
    saved = load_project(folder / "big.json")
    assert saved.extra["weights"] == "big.weights.h5" and "before_save" in saved.graph.nodes
    assert window.project.extra["weights"] == "big.weights.h5" and window.is_clean()
    assert not window.warnings and sorted(os.listdir(folder)) == ["big.json", "big.weights.h5"]


# ---------------------------------------------------------- autosave and temps
def test_a_failed_autosave_leaves_no_temporary_file(qtbot, monkeypatch, tmp_path):
    window = _window(qtbot, monkeypatch, autosave=True)
    _edit(window, "edited")
    folder = window.autosaver.folder
    real_replace = os.replace

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    try:
        assert window.autosaver.save_now() is False
    finally:
        monkeypatch.setattr(os, "replace", real_replace)
    assert _temps(folder) == []
    assert window.autosaver.save_now() and _temps(folder) == []
    assert json.loads(window.autosaver.file.read_text())["project"]["name"]
    assert window.autosaver.file.stat().st_mode & 0o777 == 0o600, "unsaved work stays private"


def _plant(folder: Path, name: str, age_s: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"half a save")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_start_up_removes_stale_temps_and_keeps_fresh_ones(qtbot, monkeypatch, tmp_path):
    recovery = tmp_path / "app" / "recovery"
    projects = tmp_path / "projects"
    projects.mkdir()
    save_project(new_project("p"), projects / "p.json")
    stale = [
        _plant(recovery, ".recovery-abc123.tmp", 7200),
        _plant(recovery, ".recovery-1.json.layerlab-tmp-x1y2z3", 7200),
        _plant(tmp_path / "app" / "imports", ".m.weights.h5.layerlab-tmp-k9", 7200),
        _plant(projects, ".p.json.layerlab-tmp-abcdef", 7200),
        _plant(projects, ".p.json.a1b2c3.tmp", 7200),
    ]
    fresh = [
        _plant(recovery, ".recovery-def456.tmp", 5),  # another window saving right now
        _plant(projects, ".p.json.layerlab-tmp-fresh1", 5),
    ]
    mine = _plant(projects, "notes.tmp", 7200)  # not a LayerLab temp name
    monkeypatch.setattr(MainWindow, "_ask_restore", lambda self, q: False)
    window = _window(
        qtbot, monkeypatch, project=load_project(projects / "p.json"), check_recovery=True
    )
    qtbot.waitUntil(lambda: not any(p.exists() for p in stale), timeout=5000)
    assert all(p.exists() for p in fresh) and mine.exists()
    assert window.isVisible()


def test_opening_a_project_removes_stale_temps_beside_it(qtbot, monkeypatch, tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    save_project(new_project("q"), folder / "q.json")
    stale = _plant(folder, ".q.json.layerlab-tmp-old000", 7200)
    fresh = _plant(folder, ".q.json.layerlab-tmp-new000", 1)
    window = _window(qtbot, monkeypatch)
    assert window.open_path(folder / "q.json")
    qtbot.waitUntil(lambda: not stale.exists(), timeout=5000)
    assert fresh.exists()


# --------------------------------------------------------------------- import
def test_import_runs_off_the_ui_thread_and_cancel_discards_it(qtbot, monkeypatch, tmp_path):
    release = threading.Event()
    started = threading.Event()
    seen_threads: list[str] = []

    def slow_import(path, weights_out=None):
        seen_threads.append(threading.current_thread().name)
        started.set()
        release.wait(20)
        Path(weights_out).parent.mkdir(parents=True, exist_ok=True)
        Path(weights_out).write_bytes(b"weights")
        project = new_project("imported")
        project.extra["weights"] = str(weights_out)
        return project, []

    monkeypatch.setattr(ImportJob, "local", True)  # in this process: the fake counts
    monkeypatch.setattr("engine.io.importing.rebuild.import_model_with_notes", slow_import)
    window = _window(qtbot, monkeypatch)
    before = window.project
    model = tmp_path / "big.keras"
    model.write_bytes(b"PK")

    t0 = time.monotonic()
    job = window.import_path(model)
    assert time.monotonic() - t0 < 1.0, "import_path returned at once"
    assert started.wait(5)
    assert seen_threads and seen_threads[0] != threading.main_thread().name
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(20)
    qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=3000)  # the event loop keeps running
    timer.stop()
    assert window.import_progress.isVisible()
    assert "big.keras" in window.import_progress.labelText()

    with qtbot.waitSignal(job.finished, timeout=3000) as signal:
        window.import_progress.findChild(QPushButton).click()  # its Cancel button
    assert signal.args == [False]
    assert window.import_progress is None
    assert "cancelled" in window.statusBar().currentMessage()
    weights = job.weights
    release.set()
    qtbot.wait(300)  # the result arrives, and is dropped with its weights file
    qtbot.waitUntil(lambda: not weights.exists(), timeout=5000)
    assert window.project is before and window.warnings == []


def test_import_that_finishes_replaces_the_project(qtbot, monkeypatch, tmp_path):
    def quick_import(path, weights_out=None):
        return new_project("from_import"), []

    monkeypatch.setattr(ImportJob, "local", True)  # in this process: the fake counts
    monkeypatch.setattr("engine.io.importing.rebuild.import_model_with_notes", quick_import)
    window = _window(qtbot, monkeypatch)
    with qtbot.waitSignal(window.import_path(tmp_path / "m.keras").finished) as signal:
        pass
    assert signal.args == [True]
    assert window.project.name == "from_import" and not window.is_clean()


def test_import_that_runs_out_of_memory_says_so(qtbot, monkeypatch, tmp_path):
    def bomb(path, weights_out=None):
        raise MemoryError

    monkeypatch.setattr(ImportJob, "local", True)  # in this process: the fake counts
    monkeypatch.setattr("engine.io.importing.rebuild.import_model_with_notes", bomb)
    window = _window(qtbot, monkeypatch)
    with qtbot.waitSignal(window.import_path(tmp_path / "bomb.keras").finished) as signal:
        pass
    assert signal.args == [False]
    [(_title, message)] = window.warnings
    assert "bomb.keras" in message and "memory" in message


def test_importing_a_fifo_never_freezes_the_window(qtbot, monkeypatch, tmp_path):
    fifo = tmp_path / "model.keras"
    os.mkfifo(fifo)
    window = _window(qtbot, monkeypatch)
    before = window.project
    job = window.import_path(fifo)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(20)
    qtbot.waitUntil(lambda: len(ticks) >= 5 or job.done, timeout=3000)
    timer.stop()
    if not job.done:
        job.cancel()
    try:  # let a reader blocked on the FIFO go
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass
    assert job.done and window.project is before


def test_open_refuses_a_fifo_with_the_engines_message(qtbot, monkeypatch, tmp_path):
    fifo = tmp_path / "project.json"
    os.mkfifo(fifo)
    window = _window(qtbot, monkeypatch)
    before = window.project
    t0 = time.monotonic()
    assert not window.open_path(fifo)
    assert time.monotonic() - t0 < 2.0
    [(title, message)] = window.warnings
    assert title == "Cannot open project"
    assert str(fifo) in message and "not a regular file" in message
    assert window.project is before


# ------------------------------------------------------------- restore prompt
@pytest.mark.parametrize("path", ["/work/projects/mnist.json", None])
def test_the_restore_prompt_names_the_project(qtbot, monkeypatch, tmp_path, path):
    recovery = tmp_path / "app" / "recovery"
    recovery.mkdir(parents=True)
    project = new_project("MNIST classifier").to_dict()
    (recovery / "recovery-999999.json").write_text(
        json.dumps({"saved_at": time.time(), "pid": 999999, "path": path, "project": project})
    )
    asked: list[str] = []
    monkeypatch.setattr(MainWindow, "_ask_restore", lambda self, q: asked.append(q) or True)
    window = _window(qtbot, monkeypatch)
    assert window.offer_recovery()
    [question] = asked
    assert "MNIST classifier" in question
    if path:
        assert "mnist.json" in question and path in question
    else:
        assert "unsaved project" in question
    assert window.project.name == "MNIST classifier"
