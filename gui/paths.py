"""Where the window keeps things: the app's data folder (recovery files, imported
weights) and a project's runs (the window's rule of :mod:`engine.train.runs`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QStandardPaths

from engine.train.runs import new_run_dir, runs_root


def app_data_dir() -> Path:
    """Qt's writable app data location, or ``~/.layerlab`` when Qt has none."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".layerlab")


def project_runs_root(project: Any) -> Path:
    """Where the window puts ``project``'s runs (:func:`engine.train.runs.runs_root`;
    an unsaved project's go under the app's data folder)."""
    return runs_root(project, app_data_dir())


def new_project_run_dir(project: Any) -> Path:
    """A fresh, created ``<project_runs_root>/<YYYYmmdd-HHMMSS>`` folder for the next run,
    with ``origin.json`` naming the project file."""
    return new_run_dir(
        None,
        project_runs_root(project),
        create=True,
        project_file=getattr(project, "path", None),
    )
