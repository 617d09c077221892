"""The Experiments tab (gui/training/experiments_view.py): the search-space editor (one
undo step per change, problems named before anything runs), Start / Stop / resume of
``layerlab tune`` in a child process with live curves, parallel coordinates and
importances, "Apply best trial" as one undo step, and the LR finder (lr_finder.py)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys

from engine.model.commands import UndoStack
from engine.model.project import load_project
from engine.tune.space import parse_search
from engine.tune.study import Search, default_storage
from gui.training.experiments_process import JsonProcess
from gui.training.experiments_view import ExperimentsView
from gui.training.lr_finder import LrFinderDialog
from tests.engine.test_tune import LR, ROOT, iris, write


def test_the_experiments_tab_lists_trials_and_applies_the_best_as_one_undo_step(
    tmp_path, qtbot, monkeypatch
):
    values = iter([0.4, 0.9, 0.6])
    monkeypatch.setattr(Search, "_train", lambda self, *a: ("complete", next(values), None))
    search = {
        "parameters": {"hidden.units": {"choices": [8, 32, 64]}, LR: {"low": 1e-3, "high": 0.1, "log": True}},
        "strategy": "random", "trials": 3, "metric": "val_accuracy", "seed": 3,
    }  # fmt: skip
    path = write(tmp_path, iris(search))
    project = load_project(path)
    result = Search(
        project, parse_search(project.to_dict()), default_storage(project), warm=False
    ).run()
    best = result["best"]
    assert best["trial"] == 1

    stack = UndoStack(project)
    view = ExperimentsView(lambda: (project, stack))
    qtbot.addWidget(view)
    view.resize(900, 300)
    view.show()  # showing it reads the study (in a thread)
    qtbot.waitUntil(lambda: view.table.rowCount() == 3, timeout=20_000)
    headers = [view.table.horizontalHeaderItem(c).text() for c in range(view.table.columnCount())]
    assert headers == ["Trial", "State", "Value", "Epochs", "Time", "hidden.units", LR]
    assert "best: trial 1 (0.9)" in view.status.text()
    if os.environ.get("LAYERLAB_SHOT"):
        view.grab().save(os.environ["LAYERLAB_SHOT"])

    before = project.to_dict()
    view.apply_button.click()
    units = {n["id"]: n for n in project.to_dict()["graph"]["nodes"]}["hidden"]["params"]["units"]
    assert units == best["params"]["hidden.units"]
    assert project.training["optimizer"]["learning_rate"] == best["params"][LR]
    stack.undo()
    assert project.to_dict() == before


def test_the_experiments_tab_says_when_there_is_no_search(tmp_path, qtbot):
    project = load_project(write(tmp_path, {**iris({}), "search": None}))
    project.extra.pop("search", None)
    view = ExperimentsView(lambda: (project, UndoStack(project)))
    qtbot.addWidget(view)
    view.show()
    assert 'no "search" section' in view.status.text() and not view.apply_button.isEnabled()


def test_the_space_editor_is_one_undo_step_per_change_and_names_problems_before_running(
    tmp_path, qtbot
):
    project = load_project(write(tmp_path, {**iris({}), "search": None}))
    project.extra.pop("search", None)
    stack = UndoStack(project)
    view = ExperimentsView(lambda: (project, stack))
    qtbot.addWidget(view)
    view.show()
    assert 'no "search" section' in view.status.text()
    view.space.add_button.click()  # the learning rate first, a log range around 1e-5
    assert project.extra["search"]["parameters"] == {LR: {"low": 1e-6, "high": 1e-4, "log": True}}
    assert view.status.text().startswith("Press Start")  # no longer "no search section"
    view.space.add_button.click()
    assert list(project.extra["search"]["parameters"]) == [LR, "training.optimizer.type"]
    view.space.trials.setValue(7)
    view.space.trials.editingFinished.emit()
    assert project.extra["search"]["trials"] == 7
    stack.undo()
    assert project.extra["search"].get("trials") != 7
    assert view.space.trials.value() != 7  # the editor follows Edit > Undo
    stack.undo()
    stack.undo()
    assert "search" not in project.extra and not stack.can_undo
    stack.redo()
    assert view.space.table.rowCount() == 1

    low = view.space.table.cellWidget(0, 2)
    low.setText("-0.5")
    low.editingFinished.emit()
    assert project.extra["search"]["parameters"][LR]["low"] == -0.5
    named = f"'{LR}': a log range needs low > 0"
    assert named in view.problems.text()
    assert view.start() is None and view.search is None  # refused before anything runs
    assert named in view.status.text()
    stack.undo()
    assert view.problems.text() == ""


def test_the_window_reads_a_study_without_importing_optuna_or_tensorflow(tmp_path, monkeypatch):
    values = iter([0.4, 0.9, 0.6])
    monkeypatch.setattr(Search, "_train", lambda self, *a: ("complete", next(values), None))
    search = {"parameters": {"hidden.units": {"choices": [8, 32, 64]}}, "strategy": "random",
              "trials": 3, "metric": "val_accuracy", "seed": 3}  # fmt: skip
    path = write(tmp_path, iris(search))
    project = load_project(path)
    Search(project, parse_search(project.to_dict()), default_storage(project), warm=False).run()
    script = f"""
import sys, time
from PySide6.QtWidgets import QApplication
app = QApplication([])
from engine.model.commands import UndoStack
from engine.model.project import load_project
from gui.training.experiments_process import JsonProcess
from gui.training.experiments_view import ExperimentsView
project = load_project({str(path)!r})
view = ExperimentsView(lambda: (project, UndoStack(project)))
view.show()
end = time.time() + 60
while view.table.rowCount() < 3 and time.time() < end:
    app.processEvents(); time.sleep(0.02)
print(view.table.rowCount(), "optuna" in sys.modules, "tensorflow" in sys.modules)
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.stdout.split() == ["3", "False", "False"], out.stderr


def test_start_stop_and_resume_a_search_from_the_window_with_live_curves(tmp_path, qtbot):
    """Start runs `layerlab tune` in a child process: the table and the curves move
    with each epoch; Stop keeps the finished trial; Start again resumes the study and
    finishes it; the importances and the parallel coordinates show the whole study."""
    search = {
        "parameters": {"hidden.units": {"choices": [4, 16]}, LR: {"low": 1e-3, "high": 0.1, "log": True}},
        "strategy": "random", "trials": 3, "metric": "val_accuracy", "pruner": "none", "seed": 0,
    }  # fmt: skip
    path = write(tmp_path, iris(search, epochs=2, lr=0.01))
    project = load_project(path)
    stack = UndoStack(project)
    view = ExperimentsView(lambda: (project, stack))
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.show()
    qtbot.waitUntil(lambda: "No trials yet" in view.status.text(), timeout=60_000)
    assert view.start() is not None and not view.start_button.isEnabled()
    # live: trial 0's epochs reach the curves while it trains
    qtbot.waitUntil(lambda: len(view.curves.points.get(0, {})) >= 1, timeout=180_000)
    assert view.table.item(0, 1).text() in ("running", "complete")
    qtbot.waitUntil(lambda: view.trials.get(1, {}).get("state") == "running", timeout=180_000)
    assert view.trials[0]["state"] == "complete" and len(view.curves.points[0]) == 2
    kept = view.trials[0]["value"]
    assert view.trials[0]["time_s"] > 0 and view.table.item(0, 4).text()  # its time, live
    with qtbot.waitSignal(view.search_ended, timeout=60_000) as ended:
        view.stop_button.click()
    assert ended.args == [130]
    qtbot.waitUntil(lambda: view.status.text().startswith("Stopped"), timeout=60_000)
    assert view.start_button.isEnabled() and 0 in view.trials

    with qtbot.waitSignal(view.search_ended, timeout=300_000) as ended:
        view.start_button.click()
    assert ended.args == [0]
    assert view.importances  # from the search's last line: no second read
    trials = view.summary["trials"]
    assert len(trials) == 3 and all(t["state"] == "complete" for t in trials)
    assert trials[0]["trial"] == 0 and trials[0]["value"] == kept  # the finished trial kept
    assert view.table.rowCount() == 3 and "best: trial" in view.status.text()
    assert set(view.importances) == {"hidden.units", LR}
    assert len(view.parallel.lines) == 3
    assert [a.name for a in view.parallel.axes] == ["hidden.units", LR]
    assert view.parallel.axes[0].categories == [4, 16] and view.parallel.axes[1].log
    assert all(len(view.curves.points[t["trial"]]) == 2 for t in trials)
    assert view.curves.best == view.summary["best"]["trial"]
    if os.environ.get("LAYERLAB_SHOT"):
        view.grab().save(os.environ["LAYERLAB_SHOT"])


def test_the_lr_finder_plots_loss_against_rate_and_applies_its_suggestion(tmp_path, qtbot):
    path = tmp_path / "mlp.json"
    shutil.copy(ROOT / "presets" / "mlp.json", path)
    project = load_project(path)
    stack = UndoStack(project)
    view = ExperimentsView(lambda: (project, stack))
    qtbot.addWidget(view)
    dialog = view.open_lr_finder()
    qtbot.addWidget(dialog)
    assert isinstance(dialog, LrFinderDialog)
    with qtbot.waitSignal(dialog.finished_run, timeout=180_000) as done:
        pass
    assert done.args == [True], dialog.status.text()
    lr = dialog.result["suggested_lr"]
    assert 1e-5 < lr < 1.0
    xs, ys = dialog.curve.getData()
    assert len(xs) == len(dialog.result["lrs"]) > 20
    assert dialog.mark.isVisible() and math.isclose(dialog.mark.value(), math.log10(lr))
    assert "Suggested learning rate" in dialog.status.text()
    if os.environ.get("LAYERLAB_SHOT_LR"):
        dialog.resize(1280, 800)
        dialog.grab().save(os.environ["LAYERLAB_SHOT_LR"])
    before = json.loads(json.dumps(project.training))
    dialog.apply_button.click()
    assert project.training["optimizer"]["learning_rate"] == float(f"{lr:.3g}")
    stack.undo()  # one step
    assert project.training == before and not stack.can_undo
    dialog.close()


def test_showing_the_tab_again_reads_the_study_only_when_its_file_changed(
    tmp_path, qtbot, monkeypatch
):
    """Each read is a child process (~1 s of CPU): showing the tab again reads nothing
    while the study file is unchanged; a changed file, or Refresh, reads it."""
    monkeypatch.setattr(Search, "_train", lambda self, *a: ("complete", 0.5, None))
    search = {"parameters": {LR: {"low": 1e-3, "high": 0.1, "log": True}},
              "strategy": "random", "trials": 2, "seed": 3}  # fmt: skip
    path = write(tmp_path, iris(search))
    project = load_project(path)
    space = parse_search(project.to_dict())
    Search(project, space, default_storage(project), warm=False).run()
    stack = UndoStack(project)
    view = ExperimentsView(lambda: (project, stack))
    qtbot.addWidget(view)
    view.show()
    qtbot.waitUntil(lambda: view.table.rowCount() == 2, timeout=20_000)
    first = view.reader
    qtbot.waitUntil(lambda: not first.running(), timeout=20_000)
    view.hide()
    view.show()
    assert view.reader is first  # nothing changed: no second read
    Search(project, space, default_storage(project), trials=3, warm=False).run()
    view.hide()
    view.show()
    assert view.reader is not first  # the study file changed
    qtbot.waitUntil(lambda: view.table.rowCount() == 3, timeout=20_000)
    second = view.reader
    qtbot.waitUntil(lambda: not second.running(), timeout=20_000)
    view.refresh_button.click()
    assert view.reader is not second  # Refresh always reads


def test_the_importance_bars_follow_a_running_search(tmp_path, qtbot):
    """`layerlab tune --json` sends the importances after each complete trial (from the
    3rd): the bars move with them, before the search ends."""
    path = write(tmp_path, iris({"parameters": {LR: {"choices": [0.1, 0.01]}}}))
    project = load_project(path)
    view = ExperimentsView(lambda: (project, UndoStack(project)))
    qtbot.addWidget(view)
    search = view.search = JsonProcess(["--version"], view)  # not started: events fed
    view._event(search, {"event": "importances", "complete": 3, "time_s": 0.01,
                         "importances": {LR: 0.7, "hidden.units": 0.3}})  # fmt: skip
    assert view.importance.importances == {LR: 0.7, "hidden.units": 0.3}
    view._event(search, {"event": "importances", "complete": 4, "time_s": 0.01,
                         "importances": {"hidden.units": 0.6, LR: 0.4}})  # fmt: skip
    assert list(view.importance.importances) == ["hidden.units", LR]


def test_parallel_coordinate_labels_are_short_and_stay_in_their_slot(qtbot):
    """A log axis is labelled at its decades (``1e-3``, never ``0.00316``); every tick
    label stays between its axis and the next one, and the axis names fit their slot,
    even in a narrow plot."""
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QFontMetrics

    from gui.training.experiments_parallel import ParallelCoordinates

    plot = ParallelCoordinates()
    qtbot.addWidget(plot)
    plot.resize(330, 300)
    plot.show()
    space = {"hidden.units": {"choices": [4, 16, 64]}, LR: {"low": 1e-4, "high": 0.1, "log": True},
             "drop.rate": {"low": 0.0, "high": 0.5}}  # fmt: skip
    rows = [(16, 0.001, 0.1, 0.71), (64, 0.05, 0.3, 0.8), (4, 1e-4, 0.0, 0.2222)]
    trials = [{"trial": i, "params": {"hidden.units": u, LR: lr, "drop.rate": d}, "value": v}
              for i, (u, lr, d, v) in enumerate(rows)]  # fmt: skip
    plot.set_trials(trials, space, "val_accuracy")
    qtbot.wait(50)
    assert [label for _, label in plot.axes[1].ticks()] == ["1e-4", "1e-3", "0.01", "0.1"]
    vb = plot.plot.getViewBox()
    x = [vb.mapViewToScene(QPointF(i, 0)).x() for i in range(5)]
    texts = [it for it in plot.plot.items if hasattr(it, "toPlainText")]
    assert len(texts) == 3 + 4 + 3 + 3
    for item in texts:
        i = round(item.pos().x())
        box = item.sceneBoundingRect()
        assert x[i] <= box.left() and box.right() < x[i + 1], item.toPlainText()
    bottom = plot.plot.getAxis("bottom")
    metrics = QFontMetrics(bottom.style.get("tickFont") or plot.font())
    names = [label for _, label in bottom._tickLevels[0]]
    assert len(names) == 4 and names[2] == "drop.rate"
    assert all(metrics.horizontalAdvance(n) < x[1] - x[0] for n in names)


def test_a_long_parameter_name_is_elided_in_the_middle_with_the_full_name_as_tooltip(
    tmp_path, qtbot
):
    """``training.optimizer.learning_rate`` in a narrow column shows both ends
    (``training.…rate``), never only its tail; its tooltip is the whole path."""
    from gui.training.experiments_space import SpaceEditor

    search = {"parameters": {LR: {"low": 1e-4, "high": 0.1, "log": True}}}
    project = load_project(write(tmp_path, iris(search)))
    editor = SpaceEditor()
    qtbot.addWidget(editor)
    editor.resize(440, 300)
    editor.show()
    editor.set_section(search, project.to_dict())
    editor.add_button.setFocus()
    qtbot.waitExposed(editor)
    qtbot.wait(50)  # laid out: the column has its width
    combo = editor.table.cellWidget(0, 0)
    assert combo.currentText() == LR and not combo.lineEdit().hasFocus()
    assert combo.toolTip().splitlines()[0] == LR
    shown = combo.lineEdit().displayed_text()
    assert shown.startswith("train") and shown.endswith("rate") and "…" in shown
    combo.lineEdit().setFocus()
    qtbot.waitUntil(lambda: combo.lineEdit().hasFocus(), timeout=2000)
    assert combo.lineEdit().displayed_text() == LR  # editing: the whole text
    assert combo.view().minimumWidth() > combo.fontMetrics().horizontalAdvance(LR)
