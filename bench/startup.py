"""How long from launching LayerLab until its window is shown.

Launches ``python -m gui`` in a subprocess with ``LAYERLAB_STARTUP_PROBE`` set
(the app writes a timestamp when the window is first shown), measures from
just before the launch, stops the app, and prints JSON:
``{"window_shown_s": ..., "runs": [...], "goal_s": 1.5}``.

Usage: ``python bench/startup.py [--runs 3]`` (offscreen unless a display is set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure_once(timeout: float = 30.0) -> float:
    """Seconds from launch to the window's first show, in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "shown.txt"
        env = dict(os.environ, LAYERLAB_STARTUP_PROBE=str(probe),
                   LAYERLAB_SETTINGS=str(Path(tmp) / "settings.ini"),
                   LAYERLAB_RECOVERY_DIR=str(Path(tmp) / "recovery"),
                   PYTHONPATH=str(ROOT))
        if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
            env.setdefault("QT_QPA_PLATFORM", "offscreen")
        start = time.time()
        proc = subprocess.Popen([sys.executable, "-m", "gui"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not probe.exists() or not probe.read_text().strip():
                if proc.poll() is not None:
                    raise RuntimeError(f"the app exited with status {proc.returncode} "
                                       "before showing its window")
                if time.time() - start > timeout:
                    raise RuntimeError(f"no window within {timeout:.0f} s")
                time.sleep(0.005)
            shown = float(probe.read_text().strip())
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        return shown - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [measure_once() for _ in range(max(1, args.runs))]
    print(json.dumps({"window_shown_s": round(statistics.median(runs), 3),
                      "runs": [round(r, 3) for r in runs], "goal_s": 1.5}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
