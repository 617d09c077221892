"""``layerlab new --backbone``: a transfer-learning project that validates and trains as it is.

Offline: the projects use ``--weights none`` or a weights file the test writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.catalog.backbones import BACKBONES
from engine.cli.main import main
from engine.cli.new import NewProjectError, new_from_pretrained
from engine.model.project import load_project

ROOT = Path(__file__).resolve().parents[2]


def write_png(path: Path, pixels: np.ndarray) -> None:
    """A PNG without TensorFlow or Pillow: one uncompressed-filter zlib stream."""
    import struct
    import zlib

    h, w, c = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    head = struct.pack(">IIBBBBB", w, h, 8, 2 if c == 3 else 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", head)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Three classes of 6 tiny pictures each: reddish, greenish, bluish."""
    folder = tmp_path / "pictures"
    rng = np.random.default_rng(0)
    for k, name in enumerate(["blue", "green", "red"]):
        (folder / name).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 80, (40, 40, 3))
            pixels[..., 2 - k] += 150
            write_png(folder / name / f"{i}.png", pixels)
    (folder / ".thumbnails").mkdir()  # hidden: not a class
    return folder


def test_new_from_pretrained_builds_the_transfer_learning_graph(image_folder, tmp_path):
    project = new_from_pretrained("ResNet50", image_folder, base_dir=tmp_path)
    nodes = project.graph.nodes
    order = project.graph.topological_order()
    assert [nodes[n].type for n in order] == [
        "Input",
        "RandomFlip",
        "RandomRotation",
        "BackbonePreprocessing",
        "Backbone",
        "GlobalAveragePooling2D",
        "Dropout",
        "Dense",
    ]
    assert nodes["image"].params["shape"] == [224, 224, 3]  # ResNet50's ImageNet size
    assert nodes["preprocess"].params == {"mode": "caffe", "pixel_max": 1}
    assert nodes["backbone"].params == {"application": "ResNet50", "weights": "imagenet"}
    assert nodes["backbone"].trainable is False
    assert nodes["probs"].params == {"units": 3, "activation": "softmax"}
    assert project.data["path"] == "pictures" and project.data["source"] == "images"
    assert project.training["optimizer"] == {"type": "Adam", "learning_rate": 0.001}
    assert project.training["early_stopping"]["restore_best_weights"] is True
    assert "3 classes" in project.description and "blue, green, red" in project.description
    assert (
        new_from_pretrained("MobileNetV2", image_folder).graph.nodes["preprocess"].params["mode"]
        == BACKBONES["MobileNetV2"].preprocess
    )


def test_new_refuses_bad_choices_with_one_clear_message(image_folder, tmp_path):
    with pytest.raises(NewProjectError, match="did you mean MobileNetV2"):
        new_from_pretrained("MobilenetV2", image_folder)
    with pytest.raises(NewProjectError, match="at least 75x75"):
        new_from_pretrained("InceptionV3", image_folder, size=32)
    with pytest.raises(NewProjectError, match="image folder not found"):
        new_from_pretrained("VGG16", tmp_path / "nowhere")
    (tmp_path / "one" / "only").mkdir(parents=True)
    with pytest.raises(NewProjectError, match="1 class sub-folder"):
        new_from_pretrained("VGG16", tmp_path / "one")


def test_cli_new_exit_2_names_the_problem_and_never_overwrites(image_folder, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["new", "--backbone", "Nope", "--data", str(image_folder), "--out", str(out)]) == 2
    assert "unknown backbone 'Nope'" in capsys.readouterr().err
    assert not out.exists()
    out.write_text("{}")
    code = main(["new", "--backbone", "VGG16", "--data", str(image_folder), "--out", str(out)])
    assert code == 2 and "already exists" in capsys.readouterr().err
    assert out.read_text() == "{}"


def test_layerlab_new_project_validates_and_trains_one_epoch(image_folder, tmp_path):
    """The front door, end to end: new -> validate -> train 1 epoch (no download)."""
    out = tmp_path / "work" / "flowers.json"
    out.parent.mkdir()
    cmd = [sys.executable, "-m", "engine.cli"]
    env_run = {"cwd": ROOT, "capture_output": True, "text": True, "timeout": 600}
    new = subprocess.run(
        [*cmd, "new", "--backbone", "MobileNetV3Small", "--data", str(image_folder),
         "--out", str(out), "--size", "32", "--weights", "none"],
        **env_run,
    )  # fmt: skip
    assert new.returncode == 0, new.stderr
    assert "wrote" in new.stdout and "3 classes" in new.stdout
    assert load_project(out).data["path"] == "../pictures"
    check = subprocess.run([*cmd, "validate", str(out), "--json"], **env_run)
    assert check.returncode == 0, check.stdout + check.stderr
    report = json.loads(check.stdout)
    assert report["valid"] and report["trainable_params"] < report["total_params"]
    train = subprocess.run(
        [*cmd, "train", str(out), "--epochs", "1", "--out", str(tmp_path / "run")], **env_run
    )
    assert train.returncode == 0, train.stdout + train.stderr
    assert (tmp_path / "run" / "model.keras").exists()
