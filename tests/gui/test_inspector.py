"""The property inspector: catalog-driven editors, one undo step per edit, refusals in place."""

from __future__ import annotations

import pytest

from engine.catalog.table import CATALOG
from engine.model.commands import AddNode, SetParams, UndoStack
from engine.model.graph import Edge, Node
from engine.model.project import Project
from gui.inspector.panel import Inspector


def _project(*nodes: Node, edges: tuple[Edge, ...] = ()) -> Project:
    project = Project(name="t")
    project.graph.nodes = {n.id: n for n in nodes}
    project.graph.edges = list(edges)
    return project


@pytest.fixture
def dense_pair(qtbot):
    """An Input feeding two Dense layers, shown in an inspector."""
    project = _project(
        Node("inp", "Input", {"shape": [4]}),
        Node("fc", "Dense", {"units": 32, "use_bias": True}),
        Node("fc2", "Dense", {"units": 8}),
        edges=(Edge("inp", "fc"), Edge("fc", "fc2")),
    )
    stack = UndoStack(project)
    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.set_project(project, stack)
    inspector.show()
    return inspector, project, stack


def test_inspector_shows_the_layer_doc_and_an_editor_per_param(dense_pair):
    inspector, _project_, _stack = dense_pair
    inspector.show_nodes(["fc"])
    assert inspector.doc.text() == CATALOG["Dense"].doc
    assert set(inspector.form.editors) == {p.name for p in CATALOG["Dense"].params}
    assert inspector.form.editors["units"].value() == 32
    assert inspector.id_edit.text() == "fc"
    regularizer = inspector.form.editors["kernel_regularizer"]
    assert not regularizer.isVisible(), "initializers and regularizers start folded away"
    inspector.form.advanced_toggle.click()
    assert regularizer.isVisible()


def test_inspector_edit_is_one_undo_step_and_undo_redo_restore(dense_pair):
    inspector, project, stack = dense_pair
    inspector.show_nodes(["fc"])
    units = inspector.form.editors["units"]
    units.spin.setValue(64)
    assert project.graph.nodes["fc"].params == {"units": 64}, "defaults are not stored"
    assert stack.undo_text  # exactly one step to undo
    stack.undo()
    assert project.graph.nodes["fc"].params == {"units": 32, "use_bias": True}
    assert units.value() == 32, "the editor follows the model after undo"
    assert not stack.can_undo
    stack.redo()
    assert project.graph.nodes["fc"].params["units"] == 64
    assert units.value() == 64


def test_inspector_choice_edit_and_default_is_not_stored(dense_pair):
    inspector, project, stack = dense_pair
    inspector.show_nodes(["fc"])
    combo = inspector.form.editors["activation"].combo
    index = combo.findText("relu")
    assert index >= 0
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    assert project.graph.nodes["fc"].params["activation"] == "relu"
    default = CATALOG["Dense"].param("activation").default
    back = combo.findData(default)
    combo.setCurrentIndex(back)
    combo.activated.emit(back)
    assert "activation" not in project.graph.nodes["fc"].params
    assert combo.itemText(back) == ("none" if default is None else str(default))


def test_inspector_refuses_a_bad_value_with_its_reason(qtbot):
    project = _project(
        Node("inp", "Input", {"shape": [8, 8, 1]}),
        Node("conv", "Conv2D", CATALOG["Conv2D"].defaults()),
        edges=(Edge("inp", "conv"),),
    )
    stack = UndoStack(project)
    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.set_project(project, stack)
    inspector.show_nodes(["conv"])
    before = dict(project.graph.nodes["conv"].params)
    editor = inspector.form.editors["kernel_size"]
    for bad in ("0, 3", "three"):
        editor.line.setText(bad)
        editor.line.editingFinished.emit()
        reason = inspector.form.error_text("kernel_size")
        assert "kernel_size" in reason
        assert project.graph.nodes["conv"].params == before
        assert not stack.can_undo
    editor.line.setText("5, 5")
    editor.line.editingFinished.emit()
    assert project.graph.nodes["conv"].params["kernel_size"] == [5, 5]
    assert inspector.form.error_text("kernel_size") == ""


def test_inspector_rename_validates_in_place(dense_pair):
    inspector, project, stack = dense_pair
    inspector.show_nodes(["fc"])
    for bad, words in (
        ("2fast", "not a valid id"),
        ("class", "not a valid id"),
        ("fc2", "already"),
    ):
        inspector.id_edit.setText(bad)
        inspector.id_edit.editingFinished.emit()
        assert words in inspector.id_error.text()
        assert not inspector.id_error.isHidden()
        assert "fc" in project.graph.nodes and not stack.can_undo
    inspector.id_edit.setText("hidden")
    inspector.id_edit.editingFinished.emit()
    assert "hidden" in project.graph.nodes and "fc" not in project.graph.nodes
    assert inspector.id_error.isHidden()
    assert inspector.ids == ["hidden"]
    stack.undo()
    assert "fc" in project.graph.nodes
    assert inspector.id_edit.text() == "fc"


def test_inspector_edits_several_layers_of_one_type_in_one_step(dense_pair):
    inspector, project, stack = dense_pair
    inspector.show_nodes(["fc", "fc2"])
    assert not inspector.id_edit.isEnabled()
    inspector.form.editors["units"].spin.setValue(16)
    assert [project.graph.nodes[i].params["units"] for i in ("fc", "fc2")] == [16, 16]
    stack.undo()
    assert [project.graph.nodes[i].params["units"] for i in ("fc", "fc2")] == [32, 8]
    assert not stack.can_undo


def test_inspector_mixed_types_are_not_edited_together(dense_pair):
    inspector, _project_, _stack = dense_pair
    inspector.show_nodes(["inp", "fc"])
    assert "different types" in inspector.empty.text()
    assert inspector.form.editors == {}


def test_inspector_model_changes_update_widgets_without_echo(dense_pair):
    inspector, project, stack = dense_pair
    inspector.show_nodes(["fc"])
    stack.push(SetParams("fc", {"units": 99, "use_bias": False}))
    assert inspector.form.editors["units"].value() == 99
    assert inspector.form.editors["use_bias"].value() is False
    stack.undo()
    assert not stack.can_undo and stack.can_redo, "showing a value pushed nothing"


def test_inspector_regularizer_and_nested_layer_editors(qtbot):
    wrapper = next((s for s in CATALOG.values() if any(p.kind == "layer" for p in s.params)), None)
    project = _project(Node("inp", "Input", {"shape": [4]}), Node("fc", "Dense", {"units": 4}))
    stack = UndoStack(project)
    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.set_project(project, stack)
    inspector.show_nodes(["fc"])
    reg = inspector.form.editors["kernel_regularizer"]
    reg.kind.setCurrentIndex(reg.kind.findData("L2"))
    reg.kind.activated.emit(reg.kind.currentIndex())
    value = project.graph.nodes["fc"].params["kernel_regularizer"]
    assert value["type"] == "L2" and value["l2"] > 0
    if wrapper is None:
        return
    pspec = next(p for p in wrapper.params if p.kind == "layer")
    node = Node("wrap", wrapper.type, wrapper.defaults())
    stack.push(AddNode(node))
    inspector.show_nodes(["wrap"])
    editor = inspector.form.editors[pspec.name]
    inner_type = editor.value()["type"]
    inner_spec = CATALOG[inner_type]
    int_param = next((p for p in inner_spec.params if p.kind == "int" and p.max is None), None)
    if int_param is None:
        return
    editor.form.editors[int_param.name].spin.setValue(7)
    stored = project.graph.nodes["wrap"].params[pspec.name]
    assert stored["type"] == inner_type and stored["params"][int_param.name] == 7


def test_inspector_reads_and_writes_uneven_padding_pairs():
    from gui.inspector.editors import format_ints, parse_ints

    assert parse_ints("(0, 1), (2, 0)", "padding") == [[0, 1], [2, 0]]
    assert format_ints([[0, 1], [2, 0]]) == "(0, 1), (2, 0)"
    assert parse_ints(format_ints([3, 3]), "kernel_size") == [3, 3]


def test_inspector_edits_per_channel_numbers_as_a_list(qtbot):
    from engine.catalog.table import CATALOG
    from gui.inspector.editors import ParseError, TextEditor, format_floats, parse_floats
    from gui.inspector.form import make_editor

    assert parse_floats("0.485, 0.456, 0.406", "mean") == [0.485, 0.456, 0.406]
    assert parse_floats("0.5", "mean") == 0.5 and parse_floats(" ", "mean") is None
    assert format_floats([0.485, 0.456, 0.406]) == "0.485, 0.456, 0.406"
    with pytest.raises(ParseError, match="mean: enter a number"):
        parse_floats("0.4, red", "mean")
    editor = make_editor(CATALOG["Normalization"].param("mean"))
    qtbot.addWidget(editor)
    assert isinstance(editor, TextEditor)
    editor.set_value([0.485, 0.456, 0.406])
    assert editor.line.text() == "0.485, 0.456, 0.406"
    assert editor.value() == [0.485, 0.456, 0.406]


def test_inspector_shows_values_its_widgets_cannot_hold_without_failing(qtbot):
    from engine.catalog.table import CATALOG
    from gui.inspector.form import make_editor

    units = make_editor(CATALOG["Dense"].param("units"))
    units.set_value(3_000_000_000)  # in a hand-edited file; validation names it
    assert units.spin.value() == 2**31 - 1
    epsilon = make_editor(CATALOG["LayerNormalization"].param("epsilon"))
    epsilon.set_value(1e-12)  # BERT-style models
    assert epsilon.value() == 1e-12 and epsilon.spin.text() != "0"
    activation = make_editor(CATALOG["Dense"].param("activation"))
    activation.set_value(10**21)
    assert activation.combo.currentText() == str(10**21)
    for editor in (units, epsilon, activation):
        qtbot.addWidget(editor)


def test_inspector_out_of_range_number_is_refused_in_place_and_kept_for_correction(
    dense_pair, qtbot
):
    """Issue 15: Dense units 0 + Enter used to snap back to the old value silently."""
    from PySide6.QtCore import Qt

    inspector, project, stack = dense_pair
    inspector.show_nodes(["fc"])
    messages = []
    inspector.message.connect(messages.append)
    spin = inspector.form.editors["units"].spin
    inspector.activateWindow()
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus)
    spin.selectAll()
    qtbot.keyClicks(spin, "0")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    reason = inspector.form.error_text("units")
    assert "units" in reason and "0" in reason, reason
    assert spin.text() == "0", "the typed value stays for correction"
    assert spin.property("invalid") is True and reason in spin.toolTip()
    assert messages and reason in messages[-1] and "'fc'" in messages[-1]
    assert project.graph.nodes["fc"].params["units"] == 32
    assert not stack.can_undo
    spin.selectAll()
    qtbot.keyClicks(spin, "16")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert project.graph.nodes["fc"].params["units"] == 16
    assert inspector.form.error_text("units") == "" and not spin.property("invalid")
    spin.selectAll()
    qtbot.keyClicks(spin, "0")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert inspector.form.error_text("units")
    qtbot.keyClick(spin, Qt.Key.Key_Escape)
    assert spin.text() == "16", "Esc shows the layer's value again"
    assert inspector.form.error_text("units") == ""
    spin.stepBy(-100)
    assert spin.value() == 1, "arrows and the wheel stay within the bounds"


def test_every_initializer_the_inspector_offers_is_one_the_catalog_accepts(qtbot):
    """The inspector once kept its own list, offering 'identity', which the catalog refuses."""
    from engine.catalog.checks import check_value
    from engine.catalog.specs import ParamSpec
    from gui.inspector.form import make_editor

    pspec = ParamSpec("kernel_initializer", "initializer", "glorot_uniform", "A doc.")
    editor = make_editor(pspec)
    qtbot.addWidget(editor)
    offered = [editor.combo.itemText(i) for i in range(editor.combo.count())]
    assert offered and all(check_value(pspec, name) is None for name in offered), offered
