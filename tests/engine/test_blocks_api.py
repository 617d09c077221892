"""Reusing blocks: "Repeat block N times", saved block files and placing them."""

import json
import re
import tempfile
from pathlib import Path

import pytest

from engine.model.block_files import (
    BlockFileError,
    block_fragment,
    list_saved_blocks,
    load_block,
    save_block,
)
from engine.model.blocks import Block, parents, ports
from engine.model.commands import PlaceBlock, RepeatBlock, UndoStack, repeat_problem
from engine.model.graph import Edge, Graph, GraphError, Node
from engine.model.project import Project, dumps, load_project


def mlp() -> Graph:
    """input -> d1 -> d2 -> d3 -> d4 (softmax), d1..d4 Dense; unit = [d2, d3]."""
    g = Graph()
    g.add_node(Node("input", "Input", {"shape": [4]}, (0, 0)))
    prev = "input"
    for i in range(1, 5):
        g.add_node(Node(f"d{i}", "Dense", {"units": 4 if i < 4 else 3}, (0, 120 * i)))
        g.connect(Edge(prev, f"d{i}"))
        prev = f"d{i}"
    g.add_block(Block("stage", "Stage", ["d1", "d2", "d3"]))
    g.add_block(Block("unit", "Unit", ["d2", "d3"], collapsed=True))
    return g


def wires(g: Graph) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in g.edges}


def test_repeat_a_block_three_times_chains_copies_and_undo_restores_the_file():
    project = Project(name="mlp", graph=mlp())
    before = dumps(project)
    stack = UndoStack(project)
    cmd = RepeatBlock("unit", 3)
    stack.push(cmd)
    g = project.graph
    assert cmd.added_ids == ["d2_r1", "d3_r1", "d2_r2", "d3_r2", "d2_r3", "d3_r3"]
    assert cmd.block_ids == ["unit_r1", "unit_r2", "unit_r3"]
    assert wires(g) == {
        ("input", "d1"),
        ("d1", "d2"),
        ("d2", "d3"),
        ("d3", "d2_r1"),
        ("d2_r1", "d3_r1"),
        ("d3_r1", "d2_r2"),
        ("d2_r2", "d3_r2"),
        ("d3_r2", "d2_r3"),
        ("d2_r3", "d3_r3"),
        ("d3_r3", "d4"),  # the block's consumer now reads the last copy
    }
    assert g.blocks["unit_r2"].nodes == ["d2_r2", "d3_r2"] and g.blocks["unit_r2"].collapsed
    # the copies join the stage around the original
    assert parents(g.blocks)["unit_r3"] == "stage"
    assert g.blocks["stage"].nodes[-1] == "d3_r3"
    # copies sit below the block, d4 moved down to make room: no two layers share a spot
    spots = [n.position for n in g.nodes.values()]
    assert len(set(spots)) == len(spots)
    assert g.nodes["d2_r1"].position[1] > g.nodes["d3"].position[1]
    assert g.nodes["d4"].position[1] > g.nodes["d3_r3"].position[1]
    # the file is valid and reloads
    assert load_project_text(dumps(project)) == dumps(project)
    stack.undo()
    assert dumps(project) == before  # byte-identical
    stack.redo()
    assert len(g.nodes) == 11 and "d3_r3" in g.nodes


def load_project_text(text: str) -> str:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.json"
        path.write_text(text)
        return dumps(load_project(path))


def test_repeating_again_takes_the_next_free_suffix():
    project = Project(graph=mlp())
    stack = UndoStack(project)
    stack.push(RepeatBlock("unit", 1))
    stack.push(RepeatBlock("unit", 1))
    assert "d2_r2" in project.graph.nodes and "unit_r2" in project.graph.blocks
    # the second copy goes straight after the original, the first now after it
    assert ("d3", "d2_r2") in wires(project.graph) and ("d3_r2", "d2_r1") in wires(project.graph)


def test_repeat_copies_nested_blocks():
    project = Project(graph=mlp())
    stack = UndoStack(project)
    stack.push(RepeatBlock("stage", 2, shapes={"input": (None, 4), "d3": (None, 4)}))
    g = project.graph
    assert {"stage_r1", "unit_r1", "stage_r2", "unit_r2"} <= set(g.blocks)
    assert parents(g.blocks)["unit_r2"] == "stage_r2"
    assert ("d3_r1", "d1_r2") in wires(g) and ("d3_r2", "d4") in wires(g)


@pytest.mark.parametrize(
    "setup, block, shapes, words",
    [
        (None, "unit", {"d1": (None, 4), "d3": (None, 8)}, r"takes shape \(None, 4\) but gives"),
        ("two_out", "unit", None, "takes 1 input and gives 2 outputs"),
        ("inputs", "head", None, "takes 0 inputs and gives 1 output"),
        (None, "nope", None, "no block named 'nope'"),
    ],
)
def test_a_block_that_cannot_be_repeated_is_refused_by_name(setup, block, shapes, words):
    g = mlp()
    if setup == "two_out":
        g.add_node(Node("side", "Dense", {"units": 2}, (300, 300)))
        g.connect(Edge("d2", "side"))
    if setup == "inputs":
        g.add_block(Block("head", "Head", ["input"]))
    project = Project(graph=g)
    before = dumps(project)
    assert re.search(words, repeat_problem(g, block, 2, shapes) or "")
    with pytest.raises(GraphError, match=words):
        UndoStack(project).push(RepeatBlock(block, 2, shapes=shapes))
    assert dumps(project) == before


def test_repeat_count_is_bounded():
    assert "1 to 100 times" in repeat_problem(mlp(), "unit", 0)
    assert "1 to 100 times" in repeat_problem(mlp(), "unit", 101)


def test_ports_list_inputs_and_outputs_in_a_stable_order():
    g = mlp()
    g.add_node(Node("skip", "Add", {}, (200, 480)))
    g.connect(Edge("d1", "skip", 0))
    g.connect(Edge("d3", "skip", 1))
    p = ports(g.blocks["unit"], g.edges)
    assert p.inputs == [("d1", 0)] and p.entries == [[("d2", 0)]]
    assert p.outputs == [("d3", 0)]


def test_a_fragment_placed_twice_gets_unique_ids_and_undoes():
    g = mlp()
    fragment = block_fragment(g, "stage")
    assert fragment["nodes"][0]["position"] == [0, 0]  # relative to the block's top-left
    assert fragment["inputs"] == [{"feeds": [{"node": "d1", "port": 0}]}]
    assert fragment["outputs"] == [{"node": "d3", "port": 0}]
    assert [b["id"] for b in fragment["blocks"]] == ["stage", "unit"]
    project = Project(graph=g)
    before = dumps(project)
    stack = UndoStack(project)
    first = PlaceBlock(fragment, (500, 0), after="input")
    stack.push(first)
    second = PlaceBlock(fragment, (900, 0))
    stack.push(second)
    assert first.added_ids == ["d1_1", "d2_1", "d3_1"] and first.block_id == "stage_1"
    assert second.added_ids == ["d1_2", "d2_2", "d3_2"] and second.block_id == "stage_2"
    assert ("input", "d1_1") in wires(g) and ("d1_2", "d2_2") in wires(g)
    assert g.nodes["d2_2"].position == (900, 120)
    assert parents(g.blocks)["unit_2"] == "stage_2" and g.blocks["unit_2"].collapsed
    stack.undo()
    stack.undo()
    assert dumps(project) == before


def test_placing_after_needs_an_input():
    g = mlp()
    g.add_block(Block("head", "Head", ["input"]))
    fragment = block_fragment(g, "head")
    with pytest.raises(GraphError, match="takes no input"):
        UndoStack(Project(graph=mlp())).push(PlaceBlock(fragment, (0, 0), after="d4"))


def test_save_list_load_a_block(tmp_path):
    g = mlp()
    first = save_block(g, "stage", tmp_path)
    again = save_block(g, "stage", tmp_path)
    named = save_block(g, "unit", tmp_path, name="My unit")
    assert first.name == "Stage.json" and again.name == "Stage (2).json"  # never overwritten
    assert load_block(first) == block_fragment(g, "stage")
    assert json.loads(named.read_text())["name"] == "My unit"
    (tmp_path / "broken.json").write_text('{"format": "layerlab-block", "nodes": [')
    (tmp_path / "notes.txt").write_text("not a block")
    listed = {b.path.name: b for b in list_saved_blocks(tmp_path)}
    assert set(listed) == {"Stage.json", "Stage (2).json", "My unit.json", "broken.json"}
    assert listed["Stage.json"].layers == 3 and listed["Stage.json"].summary == "Dense x3"
    assert listed["My unit.json"].name == "My unit" and not listed["My unit.json"].problem
    broken = listed["broken.json"]
    assert broken.layers == 0 and "broken.json" in broken.problem and "line 1" in broken.problem
    assert list_saved_blocks(tmp_path / "missing") == []


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda f: f.update(format="layerlab"), "not a saved block"),
        (lambda f: f.update(version=9), "newer LayerLab"),
        (lambda f: f["edges"].append({"source": "d1", "target": "zz"}), "'zz' is not a node"),
        (lambda f: f["blocks"].pop(0), "must hold every layer"),
        (lambda f: f.update(outputs=[{"node": "ghost"}]), "not one of the block's layers"),
    ],
)
def test_a_bad_block_file_is_refused_naming_the_file(tmp_path, change, words):
    fragment = block_fragment(mlp(), "stage")
    change(fragment)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(fragment))
    with pytest.raises(BlockFileError, match=words) as info:
        load_block(path)
    assert "bad.json" in str(info.value)


def test_a_huge_block_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_MAX_PROJECT_MB", "1")
    path = tmp_path / "big.json"
    path.write_text(" " * 1_100_000)
    with pytest.raises(BlockFileError, match="LAYERLAB_MAX_PROJECT_MB"):
        load_block(path)


def test_repeat_a_residual_block_of_the_resnet18_preset():
    root = Path(__file__).resolve().parents[2]
    project = load_project(root / "presets" / "resnet18.json")
    g = project.graph
    before = dumps(project)
    stack = UndoStack(project)
    cmd = RepeatBlock("conv2_block2", 2)
    stack.push(cmd)
    # the copy's shortcut and its first convolution both read the block before it
    assert {(e.source, e.port) for e in g.inputs_of("conv2_block2_add_r1")} == {
        ("conv2_block2_out", 0),
        ("conv2_block2_2_bn_r1", 1),
    }
    assert [e.source for e in g.inputs_of("conv2_block2_1_conv_r2")] == ["conv2_block2_out_r1"]
    # the next stage reads the last copy, and the copies are units of stage conv2
    assert {e.source for e in g.inputs_of("conv3_block1_1_conv")} == {"conv2_block2_out_r2"}
    assert parents(g.blocks)["conv2_block2_r2"] == "conv2"
    assert g.blocks["conv2_block2_r2"].collapsed
    spots = [n.position for n in g.nodes.values()]
    assert len(set(spots)) == len(spots)
    assert load_project_text(dumps(project)) == dumps(project)
    stack.undo()
    assert dumps(project) == before


def test_a_saved_residual_block_placed_after_a_layer_feeds_both_its_entries(tmp_path):
    root = Path(__file__).resolve().parents[2]
    source = load_project(root / "presets" / "resnet18.json").graph
    path = save_block(source, "conv2_block2", tmp_path)
    fragment = load_block(path)
    assert len(fragment["inputs"]) == 1 and len(fragment["inputs"][0]["feeds"]) == 2
    project = Project(graph=mlp())
    cmd = PlaceBlock(fragment, (600, 0), after="d1")
    UndoStack(project).push(cmd)
    g = project.graph
    assert cmd.block_id == "conv2_block2"
    assert {(e.target, e.port) for e in g.edges if e.source == "d1"} == {
        ("d2", 0),
        ("conv2_block2_1_conv", 0),
        ("conv2_block2_add", 0),
    }


@pytest.mark.parametrize(
    "text, words",
    [
        ('{"format": "layerlab-block", "format": "x"}', 'key "format" appears twice'),
        ("[" * 200 + "]" * 200, "nest more than"),
        ('{"format": "layerlab-block", "version": 1, "nodes": []}', "non-empty list"),
        ("\xff\xfe", "cannot be read|codec"),
    ],
)
def test_a_hostile_block_file_is_refused_naming_the_file(tmp_path, text, words):
    path = tmp_path / "hostile.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(BlockFileError, match=words) as info:
        load_block(path)
    assert "hostile.json" in str(info.value)
    assert list_saved_blocks(tmp_path)[0].problem == str(info.value)
