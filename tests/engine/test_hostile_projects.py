"""Project files built to exhaust memory or time are refused by name, before the work."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.model.project import Project, ProjectError, load_project, new_project, save_project

ROOT = Path(__file__).resolve().parents[2]


def _dict(**graph):
    project = new_project("p").to_dict()
    project["graph"].update(graph)
    return project


def _write(tmp_path, text, name="hostile.json"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_deep_nesting_is_refused_before_json_recurses(tmp_path):
    path = _write(tmp_path, '{"format": "layerlab", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(
        ProjectError,
        match=r"hostile\.json: .*nest more than 64 deep.*"
        r"LAYERLAB_MAX_JSON_DEPTH",
    ):
        load_project(path)


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path):
    project = new_project("[[[[" * 40)
    project.description = '{"[' * 100 + '\\"]]'
    save_project(project, tmp_path / "ok.json")
    assert load_project(tmp_path / "ok.json").name == project.name


def test_the_depth_limit_can_be_raised(tmp_path, monkeypatch):
    d = _dict()
    d["deep"] = json.loads("[" * 70 + "]" * 70)
    path = _write(tmp_path, json.dumps(d))
    with pytest.raises(ProjectError, match="LAYERLAB_MAX_JSON_DEPTH"):
        load_project(path)
    monkeypatch.setenv("LAYERLAB_MAX_JSON_DEPTH", "100")
    assert load_project(path).extra["deep"]


def test_a_huge_integer_is_refused_by_name(tmp_path):
    d = _dict()
    text = json.dumps(d).replace('"version": 1', '"version": ' + "9" * 5000)
    path = _write(tmp_path, text)
    with pytest.raises(
        ProjectError,
        match=r"hostile\.json: an integer has 5,000 digits.*"
        r"LAYERLAB_MAX_INT_DIGITS",
    ):
        load_project(path)


def test_a_duplicate_key_is_refused_naming_the_key_and_where(tmp_path):
    text = json.dumps(_dict()).replace('"type": "Input"', '"type": "Input", "type": "Dense"')
    path = _write(tmp_path, text)
    with pytest.raises(
        ProjectError,
        match=r'hostile\.json: the key "type" appears twice in '
        r"graph\.nodes\[0\]",
    ):
        load_project(path)


def test_a_duplicate_top_level_key_is_refused(tmp_path):
    path = _write(tmp_path, json.dumps(_dict())[:-1] + ', "name": "other"}')
    with pytest.raises(ProjectError, match='"name" appears twice in the top-level object'):
        load_project(path)


def test_a_file_too_large_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = _write(tmp_path, json.dumps(_dict()) + " " * 2_000_000)
    monkeypatch.setenv("LAYERLAB_MAX_PROJECT_MB", "1")
    with pytest.raises(
        ProjectError,
        match=r"hostile\.json: the file is 2\.0 MB, more than the "
        r"limit of 1 MB \(set LAYERLAB_MAX_PROJECT_MB to raise it\)",
    ):
        load_project(path)
    monkeypatch.setenv("LAYERLAB_MAX_PROJECT_MB", "3")
    assert load_project(path).name == "p"


def test_a_bad_limit_setting_is_named(tmp_path, monkeypatch):
    path = _write(tmp_path, json.dumps(_dict()))
    monkeypatch.setenv("LAYERLAB_MAX_PROJECT_MB", "lots")
    with pytest.raises(ProjectError, match="LAYERLAB_MAX_PROJECT_MB must be a whole number"):
        load_project(path)


def test_too_many_nodes_or_edges_are_refused_before_the_graph_is_built(monkeypatch):
    nodes = [{"id": f"n{i}", "type": "Dense"} for i in range(11)]
    monkeypatch.setenv("LAYERLAB_MAX_NODES", "10")
    with pytest.raises(
        ProjectError,
        match=r"the graph has 11 nodes, more than the limit of 10 "
        r"nodes \(set LAYERLAB_MAX_NODES",
    ):
        Project.from_dict(_dict(nodes=nodes), source="big.json")
    edges = [{"source": "a", "target": "b", "port": i} for i in range(6)]
    monkeypatch.setenv("LAYERLAB_MAX_EDGES", "5")
    with pytest.raises(ProjectError, match="big.json: the graph has 6 edges.*LAYERLAB_MAX_EDGES"):
        Project.from_dict(_dict(edges=edges), source="big.json")


def test_by_default_a_graph_the_window_would_take_minutes_to_open_is_refused(monkeypatch):
    """20,000 nodes took 21 s to open in the window here, and it grows faster than the
    count: the default stops at 10,000 (the largest keras.applications network has 1,041)."""
    monkeypatch.delenv("LAYERLAB_MAX_NODES", raising=False)
    nodes = [{"id": f"n{i}", "type": "Dense"} for i in range(15_000)]
    with pytest.raises(ProjectError, match="15,000 nodes, more than the limit of 10,000"):
        Project.from_dict(_dict(nodes=nodes), source="big.json")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.json"
    os.mkfifo(path)
    with pytest.raises(ProjectError, match=r"pipe\.json: not a regular file"):
        load_project(path)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('{"a": ' + "[" * 1000 + "]" * 1000 + "}", "nest more than 64 deep"),
        ('{"format": "layerlab", "version": ' + "1" * 5000 + "}", "an integer has 5,000 digits"),
    ],
)
def test_layerlab_validate_says_one_line_and_exits_2(tmp_path, capsys, text, fragment):
    # the command's own code in this process (no second TensorFlow start); that its
    # start-up chatter stays off the terminal is test_cli's subprocess test
    from engine.cli.main import main

    path = _write(tmp_path, text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and fragment in lines[0], err


# --------------------------------------------------------------------------- generated script


@pytest.mark.parametrize(
    "name, shown",
    [
        ("a %(x)s b", "Train a %(x)s b"),
        ("%(prog)s %(x)s", "Train %(prog)s %(x)s"),
        ("50% off %(prog)", "Train 50% off %(prog)"),
        ("bad \udc80 name", "Train bad \\udc80 name"),
    ],
)
def test_the_generated_script_help_shows_any_project_name(tmp_path, name, shown):
    from engine.codegen.script import generate
    from engine.files import write_atomic

    project = new_project(name)
    project.description = f"About {name}."
    script = tmp_path / "train.py"
    write_atomic(script, generate(project))  # strict UTF-8: no surrogate reaches the file
    stub = tmp_path / "stub" / "keras"  # --help never touches Keras: spare the TF start-up
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("layers = None\n")
    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(stub.parent), "PYTHONIOENCODING": "utf-8"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert shown in done.stdout.decode("utf-8")
