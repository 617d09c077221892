"""Issue 15: a project's runs are keyed by its FILE, not its name; unsaved projects
each get their own folder; the command line and the window use one rule."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from engine.cli.train import project_and_run_dir
from engine.model.project import Project, load_project, new_project, save_project
from engine.train.history import list_runs
from engine.train.lock import acquire
from engine.train.runs import (
    adopt_runs,
    file_key,
    project_run_dir,
    runs_root,
    write_json,
)


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv("LAYERLAB_RUNS_DIR", raising=False)


def fake_run(run_dir: Path) -> Path:
    """What a run leaves that :func:`list_runs` reads: its project snapshot."""
    write_json(run_dir / "project.json", {"name": "p", "graph": {"nodes": [], "edges": []}})
    return run_dir


def test_saved_runs_follow_the_file_not_the_name(tmp_path, monkeypatch):
    a = Project(name="Untitled", path=tmp_path / "a" / "iris.json")
    b = Project(name="Untitled", path=tmp_path / "b" / "digits.json")
    assert runs_root(a, tmp_path / "data") == tmp_path / "a" / "iris-runs"
    assert runs_root(a, tmp_path / "data") != runs_root(b, tmp_path / "data")
    a.name = "renamed"
    assert runs_root(a, tmp_path / "data") == tmp_path / "a" / "iris-runs"

    # under one shared folder: the stem and a hash of the path, never the name
    monkeypatch.setenv("LAYERLAB_RUNS_DIR", str(tmp_path / "all"))
    same_stem = Project(name="renamed", path=tmp_path / "b" / "iris.json")
    ra, rb = runs_root(a, None), runs_root(same_stem, None)
    assert ra.parent == rb.parent == tmp_path / "all"
    assert ra != rb and ra.name.startswith("iris-") and rb.name.startswith("iris-")
    assert ra.name == file_key(tmp_path / "a" / "iris.json") and len(ra.name) == len("iris-") + 6
    a.name = "Untitled again"
    assert runs_root(a, None) == ra


def test_each_unsaved_project_has_its_own_runs(tmp_path):
    first, second = new_project(), new_project()
    assert first.name == second.name == "Untitled"
    r1, r2 = runs_root(first, tmp_path), runs_root(second, tmp_path)
    assert r1 != r2 and r1.parent == r2.parent == tmp_path / "runs"
    assert runs_root(first, tmp_path) == r1  # stable for one project
    fake_run(project_run_dir(first, tmp_path))
    assert len(list_runs(runs_root(first, tmp_path))) == 1
    assert list_runs(runs_root(second, tmp_path)) == []
    assert list_runs(runs_root(new_project(), tmp_path)) == []


@pytest.mark.parametrize("shared", [False, True])
def test_cli_and_window_pick_the_same_folder(tmp_path, monkeypatch, shared):
    if shared:
        monkeypatch.setenv("LAYERLAB_RUNS_DIR", str(tmp_path / "all"))
    path = tmp_path / "iris.json"
    save_project(new_project("iris"), path)
    monkeypatch.chdir(tmp_path / "..")
    args = types.SimpleNamespace(project=str(path), resume=None, out=None)
    _, cli_dir = project_and_run_dir(args)
    assert not cli_dir.exists()  # the command line creates it only when the run starts
    window_dir = project_run_dir(load_project(path), tmp_path / "data")
    assert cli_dir.parent.resolve() == window_dir.parent.resolve()
    assert json.loads((window_dir / "origin.json").read_text())["project"] == str(path)


def test_adopt_runs_moves_finished_runs_and_leaves_busy_ones(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    done = fake_run(old / "20260101-100000")
    busy = fake_run(old / "20260101-110000")
    fake_run(new / "20260101-100000")  # a name already taken
    lock = acquire(busy)
    try:
        moved, kept = adopt_runs(old, new)
    finally:
        lock.release()
    assert kept == [busy] and busy.is_dir()
    assert moved == [new / "20260101-100000-2"] and not done.exists()
    assert len(list_runs(new)) == 2
    # nothing left: the old folder goes
    moved, kept = adopt_runs(old, new)
    assert [p.name for p in moved] == ["20260101-110000"] and kept == []
    assert not old.exists()
