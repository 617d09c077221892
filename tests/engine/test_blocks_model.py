"""Blocks in the model and the project file: grouping, nesting, undo, format version 3."""

import json

import pytest

from engine.model.blocks import Block, owners, parents, top_level
from engine.model.commands import (
    GroupBlock,
    RemoveNodes,
    RenameBlock,
    SetBlockCollapsed,
    UndoStack,
    Ungroup,
)
from engine.model.graph import Edge, Graph, GraphError, Node
from engine.model.project import Project, ProjectError, dumps, load_project


def chain(n: int = 6) -> Graph:
    g = Graph()
    g.add_node(Node("input", "Input", {"shape": [4]}))
    prev = "input"
    for i in range(1, n):
        g.add_node(Node(f"d{i}", "Dense", {"units": 4}))
        g.connect(Edge(prev, f"d{i}"))
        prev = f"d{i}"
    return g


def test_blocks_nest_and_know_their_owners():
    g = chain()
    g.add_block(Block("stage", "Stage", ["d1", "d2", "d3", "d4"]))
    g.add_block(Block("unit", "Unit", ["d3", "d2"]))
    assert g.blocks["unit"].nodes == ["d2", "d3"]  # kept in graph order
    assert parents(g.blocks) == {"stage": None, "unit": "stage"}
    assert owners(g.blocks) == {"d1": "stage", "d2": "unit", "d3": "unit", "d4": "stage"}
    assert top_level(g.blocks) == ["stage"]


@pytest.mark.parametrize(
    "block, words",
    [
        (Block("cut", "Cut", ["d3", "d4"]), "cut across block 'stage'"),
        (Block("same", "Same", ["d1", "d2", "d3"]), "already holds exactly these layers"),
        (Block("ghost", "Ghost", ["d1", "nope"]), "no layer named 'nope'"),
        (Block("d5", "Clash", ["d5"]), "already the name of a layer"),
        (Block("stage", "Again", ["d5"]), "a block named 'stage' already exists"),
        (Block("empty", "Empty", []), "holds no layers"),
        (Block("2bad", "Bad", ["d5"]), "not a valid block name"),
    ],
)
def test_a_bad_block_is_refused_by_name(block, words):
    g = chain()
    g.add_block(Block("stage", "Stage", ["d1", "d2", "d3"]))
    with pytest.raises(GraphError, match=words):
        g.add_block(block)


def test_group_collapse_rename_ungroup_each_undo():
    project = Project(graph=chain())
    stack = UndoStack(project)
    stack.push(GroupBlock(Block("b", "Body", ["d1", "d2"])))
    stack.push(SetBlockCollapsed(["b"], True))
    stack.push(RenameBlock("b", "Trunk"))
    assert project.graph.blocks["b"].collapsed and project.graph.blocks["b"].name == "Trunk"
    stack.push(Ungroup("b"))
    assert not project.graph.blocks
    stack.undo()
    assert project.graph.blocks["b"].name == "Trunk"
    stack.undo()
    stack.undo()
    assert not project.graph.blocks["b"].collapsed
    stack.undo()
    assert not project.graph.blocks


def test_deleting_layers_leaves_blocks_and_undo_puts_them_back():
    project = Project(graph=chain())
    g = project.graph
    g.add_block(Block("outer", "Outer", ["d1", "d2", "d3"]))
    g.add_block(Block("inner", "Inner", ["d2", "d3"]))
    g.add_block(Block("solo", "Solo", ["d5"]))
    before = dumps(project)
    stack = UndoStack(project)
    stack.push(RemoveNodes(["d1", "d5"]))
    # outer now holds exactly what inner holds, so it goes; solo is empty: gone too
    assert list(g.blocks) == ["inner"] and g.blocks["inner"].nodes == ["d2", "d3"]
    stack.undo()
    assert dumps(project) == before


def test_renaming_a_layer_renames_it_in_its_blocks():
    g = chain()
    g.add_block(Block("b", "B", ["d1", "d2"]))
    g.rename("d2", "hidden")
    assert g.blocks["b"].nodes == ["d1", "hidden"]


def test_file_round_trip_is_version_3_only_with_blocks(tmp_path):
    project = Project(name="blocks", graph=chain())
    assert json.loads(dumps(project))["version"] == 1
    project.graph.add_block(Block("b", "Body", ["d1", "d2"], collapsed=True, extra={"color": 3}))
    text = dumps(project)
    d = json.loads(text)
    assert d["version"] == 3
    assert d["graph"]["blocks"] == [
        {"color": 3, "id": "b", "name": "Body", "nodes": ["d1", "d2"], "collapsed": True}
    ]
    path = tmp_path / "b.json"
    path.write_text(text)
    assert dumps(load_project(path)) == text


def test_an_older_file_migrates_and_a_stray_blocks_key_is_not_a_group(tmp_path):
    d = json.loads(dumps(Project(name="old", graph=chain())))
    d["version"] = 2
    d["graph"]["blocks"] = [{"id": "x", "nodes": ["d1"]}]  # version 2 ignored this key
    path = tmp_path / "old.json"
    path.write_text(json.dumps(d))
    assert load_project(path).graph.blocks == {}


@pytest.mark.parametrize(
    "blocks, words",
    [
        ("nope", '"graph.blocks" must be a list'),
        ([{"id": "b", "nodes": ["d1", "zz"]}], "no layer named 'zz'"),
        ([{"id": "b", "nodes": "d1"}], "list of layer ids"),
        ([{"id": "b", "nodes": ["d1"], "collapsed": "yes"}], "true or false"),
        (
            [{"id": "a", "nodes": ["d1", "d2"]}, {"id": "b", "nodes": ["d2", "d3"]}],
            "cut across block 'a'",
        ),
    ],
)
def test_a_bad_blocks_list_names_the_file_and_block(tmp_path, blocks, words):
    d = json.loads(dumps(Project(name="bad", graph=chain())))
    d["version"] = 3
    d["graph"]["blocks"] = blocks
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(ProjectError, match=words) as info:
        load_project(path)
    assert "bad.json" in str(info.value)
