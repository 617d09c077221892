"""The window from the command line: ``layerlab [open] [PROJECT]``, ``layerlab
screenshot``, and ``layerlab run-default`` (the window, or with no display the
default preset trained headless).

The one place the engine imports :mod:`gui`, lazily in :func:`_gui_app`, so the
headless sub-commands never load Qt.
"""

from __future__ import annotations

import argparse
import os
import sys
from types import ModuleType

from engine.cli.qt_libraries import missing_libraries, missing_message, uses_xcb
from engine.cli.train import cli_train
from engine.model.project import load_project
from presets import presets_dir


def _gui_app() -> ModuleType:
    """:mod:`gui.app`, imported only when a window is wanted (the engine's one import
    of gui; pyproject.toml's import contracts allow exactly this one)."""
    import gui.app

    return gui.app


def cli_open(args: argparse.Namespace) -> int:
    """Open the window, on ``args.project`` if given; return the exit status."""
    return open_window(getattr(args, "project", None))


def open_window(project: str | None) -> int:
    """Open the window on ``project`` (None: the default one) and run until it closes."""
    if not has_display():  # Qt would abort without one
        print(
            "error: no display to open the window on (set DISPLAY, or QT_QPA_PLATFORM="
            "offscreen to run without one)",
            file=sys.stderr,
        )
        return 2
    missing = missing_libraries() if uses_xcb() else []
    if missing:  # Qt would abort with "Could not load the Qt platform plugin xcb"
        print(missing_message(missing), file=sys.stderr)
        return 2
    if project is not None:
        load_project(project)  # a bad file is reported here, before Qt starts
    return int(_gui_app().main(project) or 0)


def cli_screenshot(args: argparse.Namespace) -> int:
    """Render the main window with ``args.project`` to the PNG ``args.out``."""
    return int(_gui_app().screenshot(args.project, args.out, args.size) or 0)


def has_display() -> bool:
    """True when a window can be shown (an X/Wayland display or an explicit Qt platform)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    )


def cli_run_default(args: argparse.Namespace) -> int:
    """``make run``: the window, or with no display the default preset trained headless."""
    if has_display():
        return open_window(None)
    preset = presets_dir() / "lenet5.json"
    print(
        "No display found, so the window cannot open. Training the default preset "
        f"({preset.name}) headless instead; open the window on a machine with a screen "
        "with `make run`.",
        flush=True,
    )
    args = argparse.Namespace(
        project=str(preset),
        epochs=None,
        out="runs/default",
        device=None,
        json=False,
        resume=None,
        cluster=None,
        index=0,
    )
    return cli_train(args)
