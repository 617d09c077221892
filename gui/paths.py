"""Where the window keeps things: the app's data folder (recovery files, imported
weights) and a project's runs (the rule of :mod:`engine.train.runs`, shared with
``layerlab train``), and what a project's first save does to them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QStandardPaths

from engine.model.project import save_project
from engine.train.runs import adopt_runs, project_run_dir, runs_root

DEFAULT_NAME = "Untitled"
"""The name of a project nobody named (File > New)."""


def app_data_dir() -> Path:
    """Qt's writable app data location, or ``~/.layerlab`` when Qt has none."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".layerlab")


def blocks_dir() -> Path:
    """Where "My blocks" are saved: ``<app data>/blocks`` (one small JSON file per block,
    :mod:`engine.model.block_files`). Not created until a block is saved."""
    return app_data_dir() / "blocks"


def project_runs_root(project: Any) -> Path:
    """Where the window puts ``project``'s runs (:func:`engine.train.runs.runs_root`:
    keyed by its file; an unsaved project's go under the app's data folder)."""
    return runs_root(project, app_data_dir())


def new_project_run_dir(project: Any) -> Path:
    """A fresh, created ``<project_runs_root>/<YYYYmmdd-HHMMSS>`` folder for the next run,
    with ``origin.json`` naming the project file."""
    return project_run_dir(project, app_data_dir())


def save_project_as(project: Any, path: str | os.PathLike) -> list[Path]:
    """Save ``project`` to ``path`` (:func:`engine.model.project.save_project`); on an
    unsaved project's first save, name it after the file (``iris.json`` -> "iris")
    unless someone named it, and move the runs it made so far to its file's runs
    folder. A failed save leaves the name and the runs as they were.

    Returns:
        The runs left where they were because they are still in use (training).
    """
    first = getattr(project, "path", None) is None
    old_root = project_runs_root(project) if first else None
    old_name = project.name
    if first and (not (old_name or "").strip() or old_name == DEFAULT_NAME):
        project.name = Path(path).stem or old_name
    try:
        save_project(project, path)
    except BaseException:
        project.name = old_name
        raise
    if old_root is None:
        return []
    return adopt_runs(old_root, project_runs_root(project))[1]
