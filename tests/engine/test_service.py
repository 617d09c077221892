"""The engine service's protocol and handlers, in this process (issue 17): the graph
as compact text, the cache of the last graph, answers that carry only what changed,
and the newest request winning over older ones waiting."""

from __future__ import annotations

import json
from pathlib import Path

from engine.analysis.shapes import ShapeInference
from engine.model.project import load_project
from engine.service.handlers import Engine, ShapeTable
from engine.service.protocol import LATEST_ONLY, graph_from_text, graph_text
from engine.service.server import newest_only

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "presets" / "lenet5.json"


def test_graph_text_is_compact_and_leaves_positions_out():
    graph = load_project(LENET).graph
    text = graph_text(graph)
    back = graph_from_text(text)
    assert list(back.nodes) == list(graph.nodes)
    assert set(back.edges) == set(graph.edges)
    assert all(back.nodes[k].params == n.params for k, n in graph.nodes.items())
    first = next(iter(graph.nodes.values()))
    first.position = (first.position[0] + 500, 3)
    assert graph_text(graph) == text, "moving a layer asks the service for nothing"
    assert " " not in text and len(text) < len(json.dumps(graph.to_dict()))


def test_the_engine_answers_only_what_changed_and_the_table_rebuilds_everything():
    project = load_project(LENET)
    engine, table = Engine(), ShapeTable()
    first = engine.shapes(graph_text(project.graph))
    assert set(first["info"]) == set(project.graph.nodes)
    full = table.merge(first)
    want = ShapeInference(project.graph)
    assert full["info"] == want.info and full["totals"] == tuple(want.totals())

    project.graph.nodes["fc1"].params["units"] = 33
    second = engine.shapes(graph_text(project.graph))
    assert set(second["info"]) == {"fc1", "fc2"}, "only the edited layer and its params"
    full = table.merge(second)
    want = ShapeInference(project.graph)
    assert full["info"] == want.info and full["totals"] == tuple(want.totals())

    again = engine.shapes(graph_text(project.graph))
    assert again["info"] == {} and table.merge(again)["info"] == want.info

    del project.graph.nodes["output"]
    project.graph.edges = [e for e in project.graph.edges if e.target != "output"]
    full = table.merge(engine.shapes(graph_text(project.graph)))
    assert "output" not in full["info"] and set(full["info"]) == set(project.graph.nodes)


def test_shape_problems_travel_with_the_answer():
    project = load_project(LENET)
    conv2 = project.graph.nodes["conv2"].params
    conv2.update(kernel_size=50, padding="valid")  # larger than its 4x4 input
    answer = Engine().shapes(graph_text(project.graph))
    assert any(p.node == "conv2" and p.severity == "error" for p in answer["problems"])


def test_only_the_newest_latest_only_request_waiting_is_worked_on():
    batch = [
        {"seq": 1, "kind": "shapes", "args": {}},
        {"seq": 2, "kind": "samples", "args": {}},
        {"seq": 3, "kind": "shapes", "args": {}},
        {"seq": 4, "kind": "lr_curve", "args": {}},
        {"seq": 5, "kind": "shapes", "args": {}},
    ]
    assert [m["seq"] for m in newest_only(batch)] == [2, 4, 5]
    assert {"shapes", "lr_curve", "devices", "try_it"} == set(LATEST_ONLY)


def test_unknown_requests_and_failures_are_messages():
    engine = Engine()
    try:
        engine.answer("nonsense", {})
    except ValueError as exc:
        assert "nonsense" in str(exc)
    else:
        raise AssertionError("an unknown kind must be refused")
    assert engine.answer("devices", {}) == [] or all(
        d.startswith("gpu:") for d in engine.answer("devices", {})
    )


def test_state_ports_travel_in_the_graph_text():
    """An LSTM's state output (``source_port``) wired on: the service sees the same wire."""
    from engine.model.graph import Edge, Graph, Node

    graph = Graph()
    graph.nodes["x"] = Node("x", "Input", {"shape": [5, 3]})
    graph.nodes["rnn"] = Node("rnn", "LSTM", {"units": 4, "return_state": True})
    graph.nodes["h"] = Node("h", "Dense", {"units": 2})
    graph.edges = [Edge("x", "rnn", 0), Edge("rnn", "h", 0, 1)]
    back = graph_from_text(graph_text(graph))
    assert Edge("rnn", "h", 0, 1) in back.edges
    answer = Engine().shapes(graph_text(graph))
    assert tuple(answer["info"]["h"].output_shape) == (None, 2)
