"""Numbers said to people: sizes and durations, one formatter each.

The command line, the window and the run history all use these, so a size or a
duration reads the same wherever it appears.
"""

from __future__ import annotations

import math
import signal


def human_size(size: int) -> str:
    """``82000`` -> ``"80.1 KB"`` (1024-based; below 1 KB the exact count of bytes)."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size:,} bytes"


def duration(seconds: float | None) -> str:
    """``"12 s"``, ``"3 min 05 s"``, ``"1 h 02 min"``, or ``"—"`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def signal_name(number: int) -> str:
    """``9`` -> ``"SIGKILL"``; a number with no name -> ``"signal 99"``."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
