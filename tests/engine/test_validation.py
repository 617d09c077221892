"""Structural checks (no TensorFlow) and the validate() report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.analysis.validation import Report, validate
from engine.model.graph import Edge, Graph, Node
from engine.model.problems import Problem, structural_problems

ROOT = Path(__file__).resolve().parents[2]


def make_graph(*nodes: tuple, edges: tuple = ()) -> Graph:
    """Nodes as (id, type, params, [input ids in port order]); raw edges bypass checks."""
    g = Graph()
    for nid, ntype, params, *_rest in nodes:
        g.nodes[nid] = Node(nid, ntype, dict(params))
    for nid, _t, _p, *rest in nodes:
        for port, src in enumerate(rest[0] if rest else ()):
            g.edges.append(Edge(src, nid, port))
    g.edges.extend(edges)
    return g


def small_mlp() -> Graph:
    return make_graph(
        ("x", "Input", {"shape": [4]}),
        ("hidden", "Dense", {"units": 8, "activation": "relu"}, ["x"]),
        ("out", "Dense", {"units": 3}, ["hidden"]),
    )


def errors_on(problems: list[Problem], node: str | None) -> list[str]:
    return [p.message for p in problems if p.node == node and p.severity == "error"]


def test_structural_problems_none_for_a_sound_graph():
    assert structural_problems(small_mlp()) == []


def test_structural_problems_cycle_names_its_nodes():
    g = make_graph(
        ("x", "Input", {"shape": [4]}),
        ("a", "Dense", {"units": 4}, ["x"]),
        ("b", "Dense", {"units": 4}, ["a"]),
        ("c", "Add", {}, ["a", "b"]),
        edges=(Edge("c", "b", 1),),
    )
    # b has two inputs now (a and c): also an arity error; the cycle is what we check
    cycle = [p for p in structural_problems(g) if "cycle" in p.message]
    assert len(cycle) == 1 and cycle[0].severity == "error"
    assert all(f"'{n}'" in cycle[0].message or n in cycle[0].message for n in ("b", "c"))
    assert "b -> c -> b" in cycle[0].message or "c -> b -> c" in cycle[0].message


def test_structural_problems_missing_and_extra_inputs_counted():
    g = make_graph(
        ("x", "Input", {"shape": [4]}),
        ("y", "Input", {"shape": [4]}),
        ("lonely_add", "Add", {}, ["x"]),
        ("sub", "Subtract", {}, ["x", "y", "lonely_add"]),
        ("dense", "Dense", {"units": 2}, ["x", "y"]),
    )
    problems = structural_problems(g)
    assert errors_on(problems, "lonely_add") == [
        "Add 'lonely_add' needs at least 2 inputs but has 1"
    ]
    assert errors_on(problems, "sub") == ["Subtract 'sub' takes at most 2 inputs but has 3"]
    assert errors_on(problems, "dense") == ["Dense 'dense' takes at most 1 input but has 2"]


def test_structural_problems_layer_without_input_and_unreachable_chain():
    g = make_graph(
        ("x", "Input", {"shape": [4]}),
        ("ok", "Dense", {"units": 2}, ["x"]),
        ("head", "Dense", {"units": 2}),
        ("tail", "Dense", {"units": 2}, ["head"]),
    )
    problems = structural_problems(g)
    assert errors_on(problems, "head") == ["Dense 'head' needs 1 input but has 0"]
    lost = [p for p in problems if p.severity == "warning"]
    assert len(lost) == 1, "one warning per disconnected group, not one per layer"
    assert (
        "'head' and 'tail'" in lost[0].message and "not connected to any Input" in lost[0].message
    )


def test_structural_problems_input_that_feeds_nothing_is_a_warning():
    g = small_mlp()
    g.nodes["spare"] = Node("spare", "Input", {"shape": [2]})
    problems = structural_problems(g)
    assert [(p.node, p.severity) for p in problems] == [("spare", "warning")]


def test_structural_problems_port_gap_and_duplicate_port():
    g = make_graph(
        ("x", "Input", {"shape": [4]}),
        ("y", "Input", {"shape": [4]}),
        ("cat", "Concatenate", {}),
        ("add", "Add", {}),
        edges=(Edge("x", "cat", 0), Edge("y", "cat", 2), Edge("x", "add", 0), Edge("y", "add", 0)),
    )
    problems = structural_problems(g)
    assert any("port 1" in m and "empty" in m for m in errors_on(problems, "cat"))
    assert any("port 0" in m and "more than one" in m for m in errors_on(problems, "add"))


def test_structural_problems_no_input_at_all():
    g = make_graph(("d", "Dense", {"units": 2}))
    problems = structural_problems(g)
    assert any(
        p.node is None and "no Input" in p.message and p.severity == "error" for p in problems
    )


def test_structural_problems_bad_and_duplicate_ids():
    g = small_mlp()
    g.nodes["2bad"] = Node("2bad", "Dense", {"units": 2})
    g.nodes["class"] = Node("class", "Dense", {"units": 2})
    g.nodes["alias"] = Node("hidden", "Dense", {"units": 2})  # key and id disagree
    g.edges += [Edge("out", "2bad"), Edge("out", "class"), Edge("out", "alias")]
    problems = structural_problems(g)
    assert any("'2bad' is not a valid layer name" in m for m in errors_on(problems, "2bad"))
    assert any("'class' is not a valid layer name" in m for m in errors_on(problems, "class"))
    assert any("two layers are named 'hidden'" in m for m in errors_on(problems, "hidden"))


def test_structural_problems_unknown_type_suggests_closest():
    g = small_mlp()
    g.nodes["c"] = Node("c", "Conv2d", {})
    g.nodes["m"] = Node("m", "MaxPool2D", {})
    g.nodes["z"] = Node("z", "Zzyzx", {})
    g.edges += [Edge("hidden", n) for n in "cmz"]
    problems = structural_problems(g)
    assert errors_on(problems, "c") == [
        "'c' has the unknown layer type 'Conv2d'; did you mean 'Conv2D'?"
    ]
    assert "did you mean 'MaxPooling2D'?" in errors_on(problems, "m")[0]
    assert errors_on(problems, "z") == ["'z' has the unknown layer type 'Zzyzx'"]


def test_structural_problems_param_values_named():
    g = make_graph(
        ("x", "Input", {"shape": [8, 8, 1]}),
        ("conv", "Conv2D", {"filters": -3, "kernel_size": 3}, ["x"]),
        ("drop", "Dropout", {"rate": 1.5}, ["conv"]),
        ("pad", "Conv2D", {"filters": 4, "kernel_size": 3, "padding": "full"}, ["drop"]),
        ("dense", "Dense", {"units": "ten"}, ["pad"]),
    )
    problems = structural_problems(g)
    for node, param, value in (
        ("conv", "filters", "-3"),
        ("drop", "rate", "1.5"),
        ("pad", "padding", "'full'"),
        ("dense", "units", "'ten'"),
    ):
        (message,) = errors_on(problems, node)
        assert f"'{node}'" in message and param in message and value in message


def test_structural_problems_unknown_and_missing_params():
    g = make_graph(
        ("x", "Input", {"shape": [4]}),
        ("dense", "Dense", {"unit": 8}, ["x"]),
        ("bi", "Bidirectional", {"layer": {"type": "LSTM", "params": {"units": 0}}}, ["dense"]),
    )
    problems = structural_problems(g)
    messages = errors_on(problems, "dense")
    assert "Dense 'dense': unknown parameter 'unit' (did you mean 'units'?)" in messages
    assert "Dense 'dense': the required parameter 'units' is missing" in messages
    (inner,) = errors_on(problems, "bi")
    assert "units" in inner and "0" in inner


# ------------------------------------------------------------ with TensorFlow
def test_validate_report_json_form():
    report = validate(small_mlp())
    assert isinstance(report, Report) and report.valid
    data = json.loads(json.dumps(report.to_dict()))
    assert list(data) == [
        "valid",
        "total_params",
        "trainable_params",
        "non_trainable_params",
        "layers",
        "problems",
    ]
    counts = {"trainable": True, "non_trainable_params": 0}
    assert data["layers"] == [
        {"id": "x", "type": "Input", "output_shape": [None, 4], "params": 0}
        | {"trainable_params": 0, **counts},
        {"id": "hidden", "type": "Dense", "output_shape": [None, 8], "params": 4 * 8 + 8}
        | {"trainable_params": 4 * 8 + 8, **counts},
        {"id": "out", "type": "Dense", "output_shape": [None, 3], "params": 8 * 3 + 3}
        | {"trainable_params": 8 * 3 + 3, **counts},
    ]
    assert data["total_params"] == data["trainable_params"] == 40 + 27
    assert data["non_trainable_params"] == 0 and data["problems"] == []


def test_validate_accepts_a_project_and_reports_both_kinds():
    class FakeProject:  # anything with .graph works, like engine.model.project.Project
        name = "p"
        graph = make_graph(
            ("x", "Input", {"shape": [4]}),
            ("conv", "Conv2D", {"filters": 2, "kernel_size": 3}, ["x"]),
            ("dense", "Dense", {"units": 0}, ["x"]),
        )

    report = validate(FakeProject())
    assert not report.valid
    nodes = {p.node: p for p in report.problems}
    assert "units" in nodes["dense"].message
    assert "(None, 4)" in nodes["conv"].message
    problems_json = report.to_dict()["problems"]
    assert {"node": "conv", "severity": "error", "message": nodes["conv"].message} in problems_json


def test_validate_with_a_cycle_still_reports():
    g = make_graph(
        ("x", "Input", {"shape": [4]}),
        ("a", "Add", {}, ["x", "b"]),
        ("b", "Dense", {"units": 4}, ["a"]),
    )
    report = validate(g)
    assert not report.valid
    assert any("cycle" in p.message for p in report.problems)
    assert report.to_dict()["layers"][0]["output_shape"] == [None, 4]


def test_import_engine_validation_does_not_import_tensorflow():
    code = (
        "import sys, engine.analysis.validation, engine.analysis.shapes, engine.build.builder; "
        "from engine.model.problems import structural_problems; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("severity", ["error", "warning"])
def test_problem_to_dict(severity):
    p = Problem("n", severity, "Dense 'n': something")
    assert p.to_dict() == {"node": "n", "severity": severity, "message": "Dense 'n': something"}


def test_validation_reports_params_that_conflict_with_each_other():
    from engine.model.graph import Edge, Graph, Node
    from engine.model.problems import structural_problems

    g = Graph()
    g.add_node(Node("inp", "Input", {"shape": [8, 8, 1]}))
    g.add_node(
        Node("conv", "Conv2D", {"filters": 4, "kernel_size": 3, "strides": 2, "dilation_rate": 2})
    )
    g.connect(Edge("inp", "conv"))
    problems = [p for p in structural_problems(g) if p.node == "conv"]
    assert problems and "strides" in problems[0].message and "dilation_rate" in problems[0].message
