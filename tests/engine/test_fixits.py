"""Shape fix-its: each turns a broken project valid in one undo step, and undoes in one."""

from __future__ import annotations

import pytest

from engine.analysis.validation import validate
from engine.model.commands import UndoStack
from engine.model.fixits import fixits
from engine.model.graph import Edge, Node
from engine.model.project import Project


def project_of(*nodes: tuple) -> Project:
    """Nodes as (id, type, params, [input ids in port order]), placed 120 apart."""
    project = Project(name="fixits")
    for i, (nid, ntype, params, *rest) in enumerate(nodes):
        project.graph.add_node(Node(nid, ntype, dict(params), (0.0, 120.0 * i)))
        for port, src in enumerate(rest[0] if rest else ()):
            project.graph.connect(Edge(src, nid, port))
    return project


def offered(project: Project) -> list:
    report = validate(project)
    shapes = {info.id: info for info in report.layers}
    return fixits(project.graph, report.problems, shapes)


def problems_on(project: Project, node: str) -> list[str]:
    return [p.message for p in validate(project).problems if p.node == node]


def apply(project: Project, fix) -> UndoStack:
    stack = UndoStack(project)
    stack.push(fix.fix())
    return stack


def dense_after_conv() -> Project:
    return project_of(
        ("img", "Input", {"shape": [8, 8, 1]}),
        ("conv", "Conv2D", {"filters": 4, "kernel_size": 3}, ["img"]),
        ("fc", "Dense", {"units": 10, "activation": "softmax"}, ["conv"]),
    )


def residual(shortcut_params: dict | None = None, branch_padding: str = "same") -> Project:
    """img -> a (16 ch) -> b -> add(b, a): channels or sizes differ when b is made so."""
    return project_of(
        ("img", "Input", {"shape": [8, 8, 3]}),
        ("a", "Conv2D", {"filters": 16, "kernel_size": 3, "padding": "same"}, ["img"]),
        ("b_bn", "BatchNormalization", {}, ["a"]),
        ("b", "Conv2D", dict(shortcut_params or {}, padding=branch_padding), ["b_bn"]),
        ("b_relu", "ReLU", {}, ["b"]),
        ("add", "Add", {}, ["b_relu", "a"]),
        ("gap", "GlobalAveragePooling2D", {}, ["add"]),
        ("out", "Dense", {"units": 2}, ["gap"]),
    )


@pytest.mark.parametrize(
    ("text", "new_type"),
    [
        ("Insert Flatten before 'fc'", "Flatten"),
        ("GlobalAveragePooling2D", "GlobalAveragePooling2D"),
    ],
)
def test_dense_fed_4d_data_gets_flatten_or_global_pooling(text, new_type):
    project = dense_after_conv()
    before = project.graph.to_dict()
    assert problems_on(project, "fc")  # the 4-D warning
    fixes = [f for f in offered(project) if f.node == "fc"]
    assert len(fixes) == 2
    fix = next(f for f in fixes if text in f.fix_text)
    assert "before 'fc'" in fix.fix_text  # says what it will do
    stack = apply(project, fix)
    report = validate(project)
    assert report.valid and not problems_on(project, "fc")
    inserted = [n for n in project.graph.nodes.values() if n.type == new_type]
    assert len(inserted) == 1
    assert [e.source for e in project.graph.inputs_of("fc")] == [inserted[0].id]
    # the card goes where 'fc' was; 'fc' moves one row down
    assert inserted[0].position == (0.0, 240.0)
    assert project.graph.nodes["fc"].position == (0.0, 360.0)
    assert stack.undo_text == fix.fix_text
    stack.undo()  # one step back to exactly the broken project
    assert project.graph.to_dict() == before


def test_add_of_mismatched_channels_gets_a_1x1_convolution_on_the_narrow_branch():
    project = residual({"filters": 32, "kernel_size": 3})
    before = project.graph.to_dict()
    assert not validate(project).valid
    fixes = [f for f in offered(project) if f.node == "add"]
    assert [f.fix_text for f in fixes] == ["Insert a 1x1 Conv2D (32 filters) between 'a' and 'add'"]
    stack = apply(project, fixes[0])
    assert validate(project).valid
    conv = project.graph.inputs_of("add")[1].source
    assert project.graph.nodes[conv].params == {"filters": 32, "kernel_size": [1, 1]}
    stack.undo()
    assert project.graph.to_dict() == before


def test_add_of_a_strided_branch_gets_a_strided_projection_on_the_shortcut():
    project = residual({"filters": 32, "kernel_size": 3, "strides": 2})
    fixes = [f for f in offered(project) if f.node == "add"]
    assert [f.fix_text for f in fixes] == [
        "Insert a 1x1 Conv2D (32 filters, strides 2x2) between 'a' and 'add'"
    ]
    apply(project, fixes[0])
    assert validate(project).valid


def test_add_of_a_branch_shrunk_by_valid_padding_gets_padding_same():
    project = residual({"filters": 16, "kernel_size": 3}, branch_padding="valid")
    before = project.graph.to_dict()
    assert not validate(project).valid
    fixes = [f for f in offered(project) if f.node == "add"]
    assert fixes[0].fix_text.startswith("Set padding 'same' on 'b'")
    stack = apply(project, fixes[0])
    assert validate(project).valid
    assert project.graph.nodes["b"].params["padding"] == "same"
    assert stack.undo_text == "Set padding 'same' on 'b'"
    stack.undo()
    assert project.graph.to_dict() == before


@pytest.mark.parametrize("shape", [[6, 1], [1, 6]])
def test_rnn_fed_2d_data_gets_a_reshape(shape):
    project = project_of(
        ("x", "Input", {"shape": [6]}),
        ("lstm", "LSTM", {"units": 4}, ["x"]),
        ("out", "Dense", {"units": 1}, ["lstm"]),
    )
    before = project.graph.to_dict()
    assert not validate(project).valid
    fixes = [f for f in offered(project) if f.node == "lstm"]
    fix = next(f for f in fixes if f"({shape[0]}, {shape[1]})" in f.fix_text)
    stack = apply(project, fix)
    assert validate(project).valid
    reshape = project.graph.inputs_of("lstm")[0].source
    assert project.graph.nodes[reshape].params == {"target_shape": shape}
    stack.undo()
    assert project.graph.to_dict() == before


def test_no_fix_is_offered_when_it_is_not_certain():
    ok = project_of(
        ("x", "Input", {"shape": [6]}),
        ("fc", "Dense", {"units": 2}, ["x"]),
    )
    assert offered(ok) == []
    # an Add fed by pooled (not convolved) branches of different sizes: no padding fix
    pooled = project_of(
        ("img", "Input", {"shape": [8, 8, 4]}),
        ("pool", "MaxPooling2D", {"pool_size": 3, "strides": 1}, ["img"]),
        ("add", "Add", {}, ["pool", "img"]),
    )
    assert not validate(pooled).valid
    assert [f for f in offered(pooled) if "padding" in f.fix_text] == []
