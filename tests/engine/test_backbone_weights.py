"""A Backbone's weights in ``validate`` (CLI text, ``--json``, the engine service that
feeds the window's Problems list): a missing, unreadable or non-HDF5 weights file is
reported by node and path before any TensorFlow work, and with downloads off, an
ImageNet file that is not in Keras's cache is named with the folder to put it in.

Nothing is downloaded: files are written by the tests; Keras's home is a temp folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.build.backbone import OFFLINE_ENV
from engine.cli.main import main
from engine.model.graph import Edge, Graph, Node
from engine.model.project import Project, save_project
from engine.service.handlers import Engine
from engine.service.protocol import graph_text

ROOT = Path(__file__).resolve().parents[2]


def backbone_project(weights, app: str = "MobileNetV3Small") -> Project:
    g = Graph()
    g.add_node(Node("image", "Input", {"shape": [32, 32, 3]}))
    g.add_node(Node("backbone", "Backbone", {"application": app, "weights": weights}))
    g.add_node(Node("pool", "GlobalAveragePooling2D", {}))
    g.add_node(Node("probs", "Dense", {"units": 3, "activation": "softmax"}))
    g.connect(Edge("image", "backbone"))
    g.connect(Edge("backbone", "pool"))
    g.connect(Edge("pool", "probs"))
    p = Project(name="transfer")
    p.graph = g
    p.data = {"source": "builtin:digits"}
    return p


def saved(tmp_path: Path, weights) -> Path:
    path = tmp_path / "p.json"
    save_project(backbone_project(weights), path)
    return path


def validate_json(path: Path, capsys) -> tuple[int, dict]:
    code = main(["validate", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)


def weights_errors(report: dict) -> list[dict]:
    return [p for p in report["problems"] if "weights" in p["message"]]


# ------------------------------------------------------------- weights files
def test_missing_weights_file_is_a_validate_error_naming_the_node_and_the_path(tmp_path, capsys):
    path = saved(tmp_path, "weights/gone.weights.h5")
    code, report = validate_json(path, capsys)
    assert code == 1 and not report["valid"]
    [problem] = weights_errors(report)
    assert problem["node"] == "backbone" and problem["severity"] == "error"
    assert "Backbone 'backbone'" in problem["message"]
    assert str(tmp_path / "weights" / "gone.weights.h5") in problem["message"]
    assert "not found" in problem["message"]
    # the text form says the same, under the table
    assert main(["validate", str(path)]) == 1
    text = capsys.readouterr().out
    assert "[backbone]" in text and "gone.weights.h5" in text and "not found" in text


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("notes.weights.h5", b"just some text, not weights\n" * 40, "not an HDF5 file"),
        ("empty.h5", b"", "is empty"),
        ("weights.txt", b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "must end in .weights.h5"),
        ("model.keras", b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "not a zip archive"),
    ],
)
def test_a_file_that_is_not_keras_weights_is_refused_by_validate(
    tmp_path, capsys, name, content, says
):
    (tmp_path / name).write_bytes(content)
    code, report = validate_json(saved(tmp_path, name), capsys)
    assert code == 1
    [problem] = weights_errors(report)
    assert problem["node"] == "backbone"
    assert str(tmp_path / name) in problem["message"] and says in problem["message"]


def test_a_folder_named_as_weights_is_refused(tmp_path, capsys):
    (tmp_path / "dir.h5").mkdir()
    code, report = validate_json(saved(tmp_path, "dir.h5"), capsys)
    assert code == 1 and "not a regular file" in weights_errors(report)[0]["message"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_weights_file_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked.weights.h5"
    locked.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    locked.chmod(0)
    try:
        code, report = validate_json(saved(tmp_path, "locked.weights.h5"), capsys)
    finally:
        locked.chmod(0o600)
    assert code == 1 and "cannot be read" in weights_errors(report)[0]["message"]


def test_a_real_weights_file_passes_and_the_check_needs_no_tensorflow(tmp_path):
    import h5py

    with h5py.File(tmp_path / "mine.weights.h5", "w") as f:
        f.create_dataset("x", data=[1.0])
    (tmp_path / "gone").mkdir()
    save_project(backbone_project("mine.weights.h5"), tmp_path / "good.json")
    save_project(backbone_project("gone/no.weights.h5"), tmp_path / "bad.json")
    code = (
        "import sys\n"
        "from engine.model.problems import weights_problems\n"
        "from engine.model.project import load_project\n"
        f"good = load_project({str(tmp_path / 'good.json')!r})\n"
        f"bad = load_project({str(tmp_path / 'bad.json')!r})\n"
        "assert not weights_problems(good.graph, good.base_dir)\n"
        "[p] = weights_problems(bad.graph, bad.base_dir)\n"
        "print(p.node, p.message)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("backbone ") and "no.weights.h5" in out.stdout


def test_the_engine_service_reports_it_for_the_windows_problems_list(tmp_path):
    project = backbone_project("gone.weights.h5")
    engine = Engine()
    text = graph_text(project.graph)
    answer = engine.shapes(text, str(tmp_path))
    [problem] = [p for p in answer["problems"] if p.node == "backbone"]
    assert str(tmp_path / "gone.weights.h5") in problem.message
    (tmp_path / "gone.weights.h5").write_bytes(b"not hdf5")
    again = engine.shapes(text, str(tmp_path / "elsewhere"))  # another folder: re-checked
    assert str(tmp_path / "elsewhere" / "gone.weights.h5") in again["problems"][0].message


# ------------------------------------------------------------ offline ImageNet
@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    from keras.src.backend import config

    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setattr(config, "keras_home", lambda: str(home))
    return home


def test_offline_imagenet_is_a_validate_error_naming_the_file_and_the_folder(
    tmp_path, capsys, empty_keras_home, monkeypatch
):
    path = saved(tmp_path, "imagenet")
    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    code, report = validate_json(path, capsys)
    assert code == 0 and not weights_errors(report)  # online: Keras will download it
    monkeypatch.setenv(OFFLINE_ENV, "1")
    code, report = validate_json(path, capsys)
    assert code == 1
    [problem] = weights_errors(report)
    message = problem["message"]
    assert problem["node"] == "backbone" and OFFLINE_ENV in message
    assert "weights_mobilenet_v3_small" in message and ".h5" in message
    assert str(empty_keras_home / "models") in message
    # the file put where the message says: validate is happy offline
    wanted = message.split("put ")[1].split(" (from")[0]
    (empty_keras_home / "models").mkdir()
    (empty_keras_home / "models" / wanted).write_bytes(b"\x89HDF\r\n\x1a\n")
    code, report = validate_json(path, capsys)
    assert code == 0 and not weights_errors(report)
