"""The promise in the README: LeNet-5 learns the built-in digits through `layerlab train`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_lenet5_reaches_95_percent_within_20_epochs_via_layerlab_train(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "train",
            str(ROOT / "presets" / "lenet5.json"),
            "--json",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout[-800:] + out.stderr[-800:]
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    epochs = [e for e in events if e["event"] == "epoch"]
    done = events[-1]
    assert done["event"] == "done"
    assert 1 <= len(epochs) <= 20
    assert epochs[-1]["logs"]["val_accuracy"] >= 0.95
    assert (tmp_path / "run" / "model.keras").is_file()
