"""The command line: exit codes, JSON shape, readable tables, clear refusals."""

import json

import pytest

from engine.cli.main import main
from engine.model.graph import Edge, Node
from engine.model.project import new_project, save_project
from presets import presets_dir

LENET = str(presets_dir() / "lenet5.json")


@pytest.fixture
def broken(tmp_path):
    p = new_project("broken")
    p.graph.nodes["conv"] = Node("conv", "Conv2D", {"filters": 4, "kernel_size": 3})
    p.graph.nodes["dense"] = Node("dense", "Dense", {"units": -3})
    p.graph.edges += [Edge("input", "conv"), Edge("conv", "dense")]
    path = tmp_path / "broken.json"
    save_project(p, path)
    return str(path)


def test_cli_validate_prints_summary_table(capsys):
    assert main(["validate", LENET]) == 0
    out = capsys.readouterr().out
    assert "conv1 (Conv2D)" in out and "(None, 8, 8, 6)" in out
    assert "Total params: 19,754" in out
    assert "No problems found." in out


def test_cli_validate_json_matches_design(capsys):
    assert main(["validate", LENET, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d) >= {
        "valid",
        "total_params",
        "trainable_params",
        "non_trainable_params",
        "layers",
        "problems",
    }
    assert d["valid"] is True and d["problems"] == []
    first = d["layers"][0]
    assert first["id"] == "input" and first["output_shape"] == [None, 8, 8, 1]
    assert sum(layer["params"] for layer in d["layers"]) == d["total_params"]


def test_cli_validate_reports_the_broken_node(capsys, broken):
    assert main(["validate", broken, "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["valid"] is False
    assert any(p["node"] == "dense" and "-3" in p["message"] for p in d["problems"])
    assert main(["validate", broken]) == 1
    assert "[dense]" in capsys.readouterr().out


def test_cli_unreadable_project_exits_2_with_message(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "not valid JSON" in err and "Traceback" not in err


def test_cli_export_python_writes_a_script(capsys, tmp_path):
    out = tmp_path / "lenet.py"
    assert main(["export", LENET, "--format", "python", "--out", str(out)]) == 0
    assert "def build_model" in out.read_text()
    assert str(out) in capsys.readouterr().out


def test_cli_presets_lists_lenet(capsys):
    assert main(["presets"]) == 0
    assert "lenet5" in capsys.readouterr().out


def test_cli_validate_keeps_tensorflow_start_up_chatter_off_the_terminal():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "engine.cli.main", "validate", LENET],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0
    assert "Total params: 19,754" in out.stdout
    assert out.stderr.strip() == ""


def test_cli_open_without_a_display_says_so_and_exits_2(capsys, monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert main([LENET]) == 2
    assert "no display to open the window on" in capsys.readouterr().err
