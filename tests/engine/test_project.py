"""Project files: round trips, atomic saves, and one clear refusal per kind of bad file."""

import json
import os

import pytest

from engine.model.graph import Edge, Node
from engine.model.project import (
    VERSION,
    Project,
    ProjectError,
    dumps,
    load_project,
    new_project,
    save_project,
)


def _project() -> Project:
    p = new_project("Round trip")
    p.description = "A small model"
    p.graph.nodes["dense"] = Node("dense", "Dense", {"units": 4, "activation": "relu"}, (0, 120))
    p.graph.edges.append(Edge("input", "dense", 0))
    return p


def test_project_save_then_load_gives_the_same_document(tmp_path):
    path = tmp_path / "model.json"
    p = _project()
    save_project(p, path)
    q = load_project(path)
    assert q.to_dict() == p.to_dict()
    assert q.path == path
    assert dumps(q) == path.read_text()


def test_project_keeps_unknown_keys_on_round_trip(tmp_path):
    d = _project().to_dict()
    d["future_section"] = {"x": 1}
    d["graph"]["nodes"][1]["colour"] = "teal"
    path = tmp_path / "p.json"
    path.write_text(json.dumps(d))
    save_project(load_project(path), path)
    again = json.loads(path.read_text())
    assert again["future_section"] == {"x": 1}
    assert again["graph"]["nodes"][1]["colour"] == "teal"


def test_project_save_is_stable_and_sorted(tmp_path):
    p = _project()
    p.graph.nodes["dense"].params = {"units": 4, "activation": "relu", "use_bias": False}
    text = dumps(p)
    assert text == dumps(Project.from_dict(json.loads(text)))
    params_line = [line for line in text.splitlines() if '"activation"' in line][0]
    assert params_line.index("activation") < params_line.index("units")


def test_project_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "p.json"
    save_project(_project(), path)
    before = path.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        save_project(new_project("other"), path)
    assert path.read_text() == before
    assert [f.name for f in tmp_path.iterdir()] == ["p.json"]


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("not json at all", "not valid JSON (line 1"),
        ("[1, 2]", "not a LayerLab project"),
        ('{"format": "other"}', "not a LayerLab project"),
        ('{"format": "layerlab", "version": 99, "graph": {}}', "newer LayerLab"),
        ('{"format": "layerlab", "version": "1"}', '"version" must be a whole number'),
        ('{"format": "layerlab", "version": 1}', '"graph" section is missing'),
        (
            '{"format": "layerlab", "version": 1, "graph": {"nodes": [{"type": "Dense"}]}}',
            'node #1 has no "id"',
        ),
        (
            '{"format": "layerlab", "version": 1, "graph": {"nodes": [{"id": "a", "type": "Input"},'
            ' {"id": "a", "type": "Dense"}]}}',
            "two nodes have the id 'a'",
        ),
        (
            '{"format": "layerlab", "version": 1, "graph": {"nodes": [{"id": "1x", "type": "Dense"}]}}',
            "node '1x': the id must be a Python identifier",
        ),
        (
            '{"format": "layerlab", "version": 1, "graph": {"nodes": [{"id": "a"}]}}',
            "node 'a' has no \"type\"",
        ),
        (
            '{"format": "layerlab", "version": 1, "graph": {"nodes": [{"id": "a", "type": "Input"}],'
            ' "edges": [{"source": "a", "target": "ghost"}]}}',
            "its target 'ghost' is not a node",
        ),
        (
            '{"format": "layerlab", "version": 1, "graph": {"nodes": [{"id": "a", "type": "Dense",'
            ' "params": [1]}]}}',
            "node 'a': \"params\" must be an object",
        ),
        (
            '{"format": "layerlab", "version": 1, "graph": {"nodes": [{"id": "a", "type": "Input"}],'
            ' "edges": [{"source": ["a"], "target": "a"}]}}',
            '"source" must be a node id',
        ),
        (
            '{"format": "layerlab", "version": 1, "graph": {"nodes": [{"id": "a", "type": "Dense",'
            ' "position": "top"}]}}',
            "node 'a': \"position\" must be [x, y]",
        ),
        (
            '{"format": "layerlab", "version": 1, "graph": {"nodes": [{"id": "a", "type": "Input"},'
            ' {"id": "b", "type": "Add"}], "edges": [{"source": "a", "target": "b"},'
            ' {"source": "a", "target": "b"}]}}',
            "input 0 of 'b' is fed twice",
        ),
        (
            '{"format": "layerlab", "version": 1, "graph": {"nodes": [{"id": "a", "type": "Input"},'
            ' {"id": "b", "type": "Add"}], "edges": [{"source": "a", "target": "b", "port": -1}]}}',
            '"port" must be a whole number from 0 to 999',
        ),
        (
            '{"format": "layerlab", "version": 1, "graph": {"nodes": [{"id": "a", "type": "Input"},'
            ' {"id": "b", "type": "Add"}], "edges": [{"source": "a", "target": "b", "port": 1e12}]}}',
            '"port" must be a whole number from 0 to 999',
        ),
        ('{"format": "layerlab", "version": 1, "graph": []}', '"graph" must be an object'),
        (
            '{"format": "layerlab", "version": 1, "graph": {}, "training": []}',
            '"training" must be an object',
        ),
    ],
)
def test_project_refuses_bad_files_naming_file_and_problem(tmp_path, content, fragment):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(ProjectError) as info:
        load_project(path)
    message = str(info.value)
    assert str(path) in message
    assert fragment in message
    assert "\n" not in message


def test_project_refuses_missing_file_and_folder(tmp_path):
    with pytest.raises(ProjectError, match="no such file"):
        load_project(tmp_path / "nope.json")
    with pytest.raises(ProjectError, match="is a folder"):
        load_project(tmp_path)


def test_project_refuses_binary_file(tmp_path):
    path = tmp_path / "model.json"
    path.write_bytes(b"\x89PNG\x00\xff\xfe")
    with pytest.raises(ProjectError, match="cannot be read|not valid JSON"):
        load_project(path)


def test_project_format_version_constant():
    assert _project().to_dict()["version"] == 1  # no state ports: still version 1
    assert VERSION == 3
