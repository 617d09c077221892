"""``layerlab inspect`` (issue 19): PNGs and JSON for every layer of a tiny trained run.

LeNet-5 (the preset) trains 2 epochs on digits; an xor MLP gives the decision
boundary; a small conv net learns bars on noise (npz, 8 epochs) for a dropped file's
Grad-CAM. The command runs in-process through ``engine.cli.main.main``.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine.cli.inspect import png
from engine.cli.main import main
from engine.model.project import load_project
from engine.train.fit import run_training
from engine.train.inside import open_run
from presets import presets_dir
from tests.engine.test_inside import SIDE, bar_images, xor_project


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


@pytest.fixture(scope="module")
def xor_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("xor") / "run"
    assert run_training(xor_project(epochs=5), run_dir)["event"] == "done"
    return run_dir


def test_inspect_draws_the_decision_boundary_of_two_feature_data(xor_run, tmp_path, capsys):
    assert main(["inspect", str(xor_run), "--out", str(tmp_path / "out"), "--json"]) == 0
    assert non_blank(tmp_path / "out" / "decision_boundary.png")
    assert not (tmp_path / "out" / "grad_cam.png").exists()
    assert len(json.loads(capsys.readouterr().out)["layers"]) == 3


def test_inspect_refuses_a_folder_without_a_run(tmp_path, capsys):
    assert main(["inspect", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model.keras: not found" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------ an input from a file


def bar_project(path: Path) -> dict:
    layers = [
        ("conv1", "Conv2D", {"filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"}),
        ("conv2", "Conv2D", {"filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"}),
        ("pool", "GlobalMaxPooling2D", {}),
        ("out", "Dense", {"units": 2, "activation": "softmax"}),
    ]  # fmt: skip
    nodes = [{"id": "input", "type": "Input", "params": {"shape": [SIDE, SIDE, 1]}}]
    nodes += [{"id": name, "type": kind, "params": params} for name, kind, params in layers]
    ids = [n["id"] for n in nodes]
    return {
        "format": "layerlab",
        "version": 1,
        "name": "bars",
        "graph": {
            "nodes": nodes,
            "edges": [{"source": a, "target": b, "port": 0} for a, b in zip(ids, ids[1:])],
        },
        "data": {"source": "npz", "path": str(path), "validation_split": 0.2, "seed": 0},
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": 0.01},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "batch_size": 32,
            "epochs": 8,
            "seed": 0,
            "tensorboard": False,
            "health": False,
        },
    }


@pytest.fixture(scope="module")
def bar_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bars")
    x, y, _ = bar_images(400)
    np.savez(root / "bars.npz", x=x, y=y)
    run_dir = root / "run"
    final = run_training(bar_project(root / "bars.npz"), run_dir)
    assert final["event"] == "done", final
    return run_dir


def bar_png(folder: Path, seed: int) -> tuple[Path, np.ndarray, int]:
    """A bar-on-noise picture as a PNG file, its pixels (0..1) and the bar's row."""
    x, y, rows = bar_images(2, seed=seed)
    pixels = np.round(x[1, :, :, 0] * 255).astype(np.uint8)  # sample 1: class 1, a bar
    path = folder / f"bar{seed}.png"
    path.write_bytes(png(np.repeat(pixels[:, :, None], 3, -1)))
    return path, pixels.astype(np.float32)[:, :, None] / 255, int(rows[1])


def test_inspect_a_dropped_image_file(bar_run, tmp_path, capsys):
    import keras

    path, pixels, _ = bar_png(tmp_path, seed=5)
    out = tmp_path / "out"
    args = ["inspect", str(bar_run), "--file", str(path), "--out", str(out), "--json", "--arrays"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sample"] is None and report["file"] == str(path)
    names = [row["name"] for row in report["layers"]]
    assert names == ["input", "conv1", "conv2", "pool", "out"]
    # the activations are a Keras sub-model's outputs for the picture, standardised
    run = open_run(bar_run)
    x = run.data.transform(pixels[None])
    for row in report["layers"][1:]:
        expected = keras.Model(run.model.inputs[0], run.model.get_layer(row["name"]).output)(x)
        expected = np.asarray(expected)[0]
        assert row["output_shape"] == list(expected.shape)
        assert row["mean"] == pytest.approx(float(expected.mean()), rel=1e-4, abs=1e-6)
    manifest = json.loads((out / "inside.json").read_text())
    assert manifest["file"] == str(path) and manifest["sample"] is None
    conv1 = np.asarray(keras.Model(run.model.inputs[0], run.model.get_layer("conv1").output)(x))
    np.testing.assert_allclose(
        np.load(out / "arrays" / manifest["layers"][1]["array"]),
        np.moveaxis(conv1[0], -1, 0),
        rtol=1e-4,
        atol=1e-5,
    )
    np.testing.assert_allclose(np.load(out / "arrays" / "input.npy"), x[0], rtol=1e-5, atol=1e-5)
    assert non_blank(out / "grad_cam.png")


def test_grad_cam_of_a_dropped_picture_peaks_on_its_bar(bar_run, tmp_path, capsys):
    hits = 0
    for seed in range(6):
        path, _, row = bar_png(tmp_path, seed)
        out = tmp_path / f"out{seed}"
        args = ["inspect", str(bar_run), "--file", str(path), "--out", str(out)]
        assert main([*args, "--arrays", "--class", "1"]) == 0
        heat = np.load(out / "arrays" / "grad_cam.npy")
        assert heat.shape == (SIDE, SIDE)
        peak_row, _ = np.unravel_index(np.argmax(heat), heat.shape)
        hits += row - 1 <= peak_row <= row + 2
    assert hits >= 5, hits


def test_a_npy_sample_and_a_csv_row(lenet_run, xor_run, tmp_path, capsys):
    digit = np.zeros((8, 8), np.float32)  # a drawn digit: no channel axis
    digit[1:7, 3:5] = 1.0
    np.save(tmp_path / "drawn.npy", digit)
    out = tmp_path / "out"
    assert main(["inspect", str(lenet_run), "--file", str(tmp_path / "drawn.npy"), "--out",
                 str(out), "--arrays", "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["file"].endswith("drawn.npy")
    run = open_run(lenet_run)
    np.testing.assert_allclose(
        np.load(out / "arrays" / "input.npy"), run.data.transform(digit[None, :, :, None])[0]
    )
    (tmp_path / "point.csv").write_text("x1,x2\n0.6,-0.6\n")
    assert main(["inspect", str(xor_run), "--file", str(tmp_path / "point.csv"), "--out",
                 str(tmp_path / "out2"), "--json"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["file"].endswith("point.csv") and report["layers"][0]["output_shape"] == [2]
    assert report["layers"][-1]["output_shape"] == [2]


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("gone.png", None, "no such file (the model takes 8×8×1 images"),
        ("text.png", b"just some text", "not an image"),
        ("wrong.npy", np.zeros((28, 28)), "an array of shape (28, 28); the model takes one sample of shape (8, 8, 1)"),
        ("objects.npy", np.array(["a", "b"]), "not an array of numbers"),
        ("notes.txt", b"hello", "8×8×1 images"),
    ],
)  # fmt: skip
def test_a_bad_file_is_refused_by_name(lenet_run, tmp_path, capsys, name, content, said):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.save(path, content)
    code = main(["inspect", str(lenet_run), "--file", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {path}: ") and said in err, err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_bad_csv_row_is_refused_by_name(xor_run, tmp_path, capsys):
    for text, said in (("1,2,3\n", "3 values; the model takes 2 feature values"),
                       ("1,2\n3,4\n", "2 rows of values"),
                       ("1,abc\n", "'abc' is not a number")):  # fmt: skip
        path = tmp_path / "row.csv"
        path.write_text(text)
        code = main(["inspect", str(xor_run), "--file", str(path), "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith(f"error: {path}: ") and said in err, err


def test_file_and_sample_exclude_each_other(lenet_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["inspect", str(lenet_run), "--sample", "0", "--file", "x.png", "--out", "o"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
