"""``layerlab inspect`` (issue 19): PNGs and JSON for every layer of a tiny trained run.

LeNet-5 (the preset) trains 2 epochs on digits; an xor MLP gives the decision
boundary. The command runs in-process through ``engine.cli.main.main``.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine.cli.main import main
from engine.model.project import load_project
from engine.train.fit import run_training
from presets import presets_dir
from tests.engine.test_inside import xor_project


def read_png(path: Path) -> np.ndarray:
    """An RGB PNG written by the command, decoded (8-bit, filter 0 rows)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, size = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0]
        assert zlib.crc32(kind + body) == crc
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h = size
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    return raw[:, 1:].reshape(h, w, 3)


def non_blank(path: Path) -> bool:
    image = read_png(path)
    return len(np.unique(image.reshape(-1, 3), axis=0)) > 2


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    project = load_project(presets_dir() / "lenet5.json").to_dict()
    project["training"].update(epochs=2, batch_size=64, tensorboard=False)
    run_dir = tmp_path_factory.mktemp("lenet") / "run"
    assert run_training(project, run_dir)["event"] == "done"
    return run_dir


def test_inspect_writes_pngs_and_json_for_every_layer(lenet_run, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["inspect", str(lenet_run), "--sample", "3", "--out", str(out), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"run", "sample", "layers"} and report["sample"] == 3
    names = [row["name"] for row in report["layers"]]
    assert names == ["input", "conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "fc2", "output"]
    keys = {"name", "output_shape", "mean", "std", "zero_fraction", "weight_norm", "gradient_norm"}
    for row in report["layers"]:
        assert set(row) == keys
    rows = {row["name"]: row for row in report["layers"]}
    assert rows["conv1"]["output_shape"] == [8, 8, 6]
    assert rows["output"]["mean"] == pytest.approx(0.1, abs=1e-5)  # softmax over 10
    assert rows["conv1"]["weight_norm"] > 0 and rows["conv1"]["gradient_norm"] > 0
    assert rows["pool1"]["weight_norm"] is None and rows["pool1"]["gradient_norm"] is None
    pictures = sorted((out / "activations").glob("*.png"))
    assert len(pictures) == len(names)
    for picture in [*pictures, out / "filters.png", out / "grad_cam.png"]:
        assert non_blank(picture), picture
    assert not (out / "decision_boundary.png").exists()  # images are not two features


def test_inspect_arrays_for_the_window(lenet_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["inspect", str(lenet_run), "--out", str(out), "--arrays"]) == 0
    manifest = json.loads((out / "inside.json").read_text())
    assert [row["kind"] for row in manifest["layers"]][:2] == ["maps", "maps"]
    conv = np.load(out / "arrays" / manifest["layers"][1]["array"])
    assert conv.shape == (6, 8, 8)
    assert np.load(out / "arrays" / "grad_cam.npy").shape == (8, 8)
    assert manifest["health"][-1]["epoch"] == 2 and manifest["filters"]["layer"] == "conv1"
    assert "pictures in" in capsys.readouterr().out


def test_inspect_draws_the_decision_boundary_of_two_feature_data(tmp_path, capsys):
    run_dir = tmp_path / "xor"
    assert run_training(xor_project(epochs=5), run_dir)["event"] == "done"
    assert main(["inspect", str(run_dir), "--out", str(tmp_path / "out"), "--json"]) == 0
    assert non_blank(tmp_path / "out" / "decision_boundary.png")
    assert not (tmp_path / "out" / "grad_cam.png").exists()
    assert len(json.loads(capsys.readouterr().out)["layers"]) == 3


def test_inspect_refuses_a_folder_without_a_run(tmp_path, capsys):
    assert main(["inspect", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model.keras: not found" in err
    assert "Traceback" not in err
