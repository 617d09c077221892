"""The Experiments tab (gui/training/experiments_view.py): the trials of the project's
study in a table, read off the UI thread, and "Apply best trial" as one undo step."""

from __future__ import annotations

import os

from engine.model.commands import UndoStack
from engine.model.project import load_project
from engine.tune.space import parse_search
from engine.tune.study import Search, default_storage
from gui.training.experiments_view import ExperimentsView
from tests.engine.test_tune import LR, iris, write


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
