"""Every undoable command: do, undo, redo restore exactly the document a user had."""

import pytest

from engine.model.commands import (
    AddNode,
    Connect,
    Disconnect,
    Macro,
    MoveNodes,
    PasteSubgraph,
    RemoveNodes,
    Rename,
    SetParams,
    SetSection,
    UndoStack,
)
from engine.model.graph import Edge, GraphError, Node
from engine.model.project import new_project


@pytest.fixture
def stack():
    p = new_project()
    s = UndoStack(p)
    s.push(AddNode(Node("flat", "Flatten", {}, (0, 120)), [Edge("input", "flat")]))
    s.push(AddNode(Node("dense", "Dense", {"units": 10}, (0, 240)), [Edge("flat", "dense")]))
    s.set_clean()
    return s


def _snapshot(project):
    return project.to_dict()


COMMANDS = {
    "add": lambda: AddNode(Node("extra", "Dense", {"units": 2}), [Edge("dense", "extra")]),
    "remove": lambda: RemoveNodes(["flat"]),
    "remove_many": lambda: RemoveNodes(["flat", "dense"]),
    "connect": lambda: Macro(
        "rewire", [Disconnect(Edge("flat", "dense")), Connect(Edge("input", "dense"))]
    ),
    "disconnect": lambda: Disconnect(Edge("flat", "dense")),
    "set_params": lambda: SetParams("dense", {"units": 3, "activation": "relu"}),
    "move": lambda: MoveNodes({"dense": ((0, 240), (50, 300)), "flat": ((0, 120), (5, 5))}),
    "rename": lambda: Rename("dense", "classifier"),
    "paste": lambda: PasteSubgraph(
        [Node("d2", "Dense", {"units": 4}), Node("d3", "Dense", {"units": 5})], [Edge("d2", "d3")]
    ),
    "set_section": lambda: SetSection("training", {"epochs": 3}),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_do_undo_redo_round_trip(stack, name):
    before = _snapshot(stack.project)
    stack.push(COMMANDS[name]())
    after = _snapshot(stack.project)
    assert after != before
    assert not stack.is_clean
    stack.undo()
    assert _snapshot(stack.project) == before
    assert stack.is_clean
    stack.redo()
    assert _snapshot(stack.project) == after


def test_remove_node_one_undo_restores_node_edges_and_order(stack):
    order = list(stack.project.graph.nodes)
    stack.push(RemoveNodes(["flat"]))
    assert "flat" not in stack.project.graph.nodes
    assert all("flat" not in (e.source, e.target) for e in stack.project.graph.edges)
    stack.undo()
    assert list(stack.project.graph.nodes) == order
    assert set(stack.project.graph.edges) == {Edge("input", "flat"), Edge("flat", "dense")}


def test_refused_command_changes_nothing(stack):
    before = _snapshot(stack.project)
    with pytest.raises(GraphError, match="cycle"):
        stack.push(Connect(Edge("dense", "flat")))
    with pytest.raises(GraphError, match="already exists"):
        stack.push(AddNode(Node("dense", "Dense")))
    with pytest.raises(GraphError):
        stack.push(AddNode(Node("new", "Dense"), [Edge("ghost", "new")]))
    with pytest.raises(GraphError):
        stack.push(Macro("half", [SetParams("dense", {"units": 1}), Rename("dense", "input")]))
    assert _snapshot(stack.project) == before
    assert stack.undo_text == "Add Dense 'dense'"


def test_undo_stack_texts_clean_flag_and_events(stack):
    events = []
    stack.events.clean_changed.connect(events.append)
    stack.push(SetParams("dense", {"units": 5}))
    assert stack.undo_text == "Edit 'dense'"
    assert events == [False]
    stack.undo()
    assert stack.redo_text == "Edit 'dense'" and events == [False, True]
    stack.push(Rename("dense", "out"))  # discards the redo branch
    assert not stack.can_redo


def test_undo_stack_clean_state_lost_when_branch_discarded(stack):
    stack.undo()
    stack.push(SetParams("flat", {}))
    stack.undo()
    assert not stack.is_clean  # the saved state (with 'dense') can no longer be reached


def test_section_changed_event(stack):
    keys = []
    stack.events.section_changed.connect(keys.append)
    stack.push(SetSection("data", {"source": "builtin:iris"}))
    stack.undo()
    assert keys == ["data", "data"]
    assert stack.project.data["source"] == "builtin:digits"
