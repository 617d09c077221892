"""Before the window opens on Linux: the system libraries Qt's xcb plugin needs.

When one is missing Qt prints "Could not load the Qt platform plugin xcb" and aborts
the process, so the launcher asks first and names what to install. Nothing here
imports Qt: it reads the plugin's dependencies with ``ldd``.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Qt 6.5+ opens libxcb-cursor at run time, so ldd does not list it.
RUNTIME_LIBRARIES = ("libxcb-cursor.so.0",)


def uses_xcb() -> bool:
    """True when Qt will pick its X11 (xcb) platform plugin on this machine."""
    if not sys.platform.startswith("linux"):
        return False
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.startswith("xcb")
    return bool(os.environ.get("DISPLAY")) and not os.environ.get("WAYLAND_DISPLAY")


def xcb_plugin() -> Path | None:
    """PySide6's ``libqxcb.so``, or None when it is not where PySide6 keeps it."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or spec.origin is None:
        return None
    plugin = Path(spec.origin).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def not_found(ldd_output: str) -> list[str]:
    """The libraries ``ldd`` reports as ``=> not found``."""
    return [line.split("=>")[0].strip() for line in ldd_output.splitlines() if "not found" in line]


def loadable(library: str) -> bool:
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def missing_libraries() -> list[str]:
    """The system libraries the xcb plugin needs that this machine lacks ([] when unknown)."""
    plugin = xcb_plugin()
    if plugin is None or shutil.which("ldd") is None:
        return []
    try:
        out = subprocess.run(
            ["ldd", str(plugin)], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    missing = set(not_found(out))
    missing.update(lib for lib in RUNTIME_LIBRARIES if not loadable(lib))
    return sorted(missing)


def debian_package(library: str) -> str:
    """``libxcb-cursor.so.0`` -> ``libxcb-cursor0``; ``libxkbcommon-x11.so.0`` -> ``...-x11-0``."""
    stem, _, version = library.partition(".so.")
    version = version.split(".")[0]
    if not version:
        return stem
    return f"{stem}-{version}" if stem[-1].isdigit() else f"{stem}{version}"


def missing_message(libraries: list[str]) -> str:
    packages = " ".join(debian_package(lib) for lib in libraries)
    return (
        "error: the window cannot open: Qt's X11 plugin needs system libraries this machine "
        f"lacks ({', '.join(libraries)}).\n"
        f"Install them once (Debian/Ubuntu): sudo apt-get install {packages}\n"
        "or run headless with QT_QPA_PLATFORM=offscreen."
    )
