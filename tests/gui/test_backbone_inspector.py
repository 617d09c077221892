"""The inspector for a Backbone: a weights editor (none, imagenet, or a file) and Expand
(its network's layers in place of the node, one undo step, or why not)."""

from __future__ import annotations

import pytest

from engine.analysis.shapes import LayerInfo
from engine.model.commands import UndoStack
from engine.model.graph import Edge, Node
from engine.model.project import Project
from gui.inspector.editors import WeightsFileEditor
from gui.inspector.panel import Inspector


def _shown(qtbot, app: str, trainable: bool = False):
    project = Project(name="t")
    project.graph.nodes = {
        "image": Node("image", "Input", {"shape": [32, 32, 3]}),
        "backbone": Node(
            "backbone", "Backbone", {"application": app, "weights": "imagenet"}, (0, 120)
        ),
        "pool": Node("pool", "GlobalAveragePooling2D", {}, (0, 240)),
    }
    project.graph.nodes["backbone"].trainable = trainable
    project.graph.edges = [Edge("image", "backbone"), Edge("backbone", "pool")]
    stack = UndoStack(project)
    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.set_project(project, stack)
    inspector.set_analysis({"image": LayerInfo("image", "Input", (None, 32, 32, 3))})
    inspector.show()
    inspector.show_nodes(["backbone"])
    return inspector, project, stack


def test_weights_editor_offers_none_imagenet_and_takes_a_file_path(qtbot):
    inspector, project, stack = _shown(qtbot, "VGG16")
    editor = inspector.form.editors["weights"]
    assert isinstance(editor, WeightsFileEditor) and editor.browse.text() == "File\u2026"
    assert editor.value() == "imagenet"
    items = [editor.combo.itemData(i) for i in range(editor.combo.count())]
    assert items[:2] == [None, "imagenet"]
    editor.combo.setCurrentText("weights/mine.weights.h5")
    editor.combo.lineEdit().editingFinished.emit()
    assert project.graph.nodes["backbone"].params["weights"] == "weights/mine.weights.h5"
    stack.undo()
    assert project.graph.nodes["backbone"].params["weights"] == "imagenet"
    assert inspector.expand_button.isVisible()
    inspector.show_nodes(["pool"])
    assert not inspector.expand_button.isVisible()


def test_expand_replaces_the_backbone_by_its_layers_in_one_undo_step(qtbot):
    pytest.importorskip("keras")
    inspector, project, stack = _shown(qtbot, "VGG16")
    messages: list[str] = []
    inspector.message.connect(messages.append)
    inspector.expand_button.click()
    qtbot.waitUntil(lambda: bool(messages), timeout=60000)
    graph = project.graph
    assert "backbone" not in graph.nodes and "backbone_block1_conv1" in graph.nodes
    assert "expanded into 18 layers" in messages[-1]
    assert "fresh weights" in messages[-1]  # the imagenet weights do not come along
    assert all(not graph.nodes[n].trainable for n in graph.nodes if n.startswith("backbone_"))
    assert [e.source for e in graph.inputs_of("backbone_block1_conv1")] == ["image"]
    assert [e.target for e in graph.outputs_of("backbone_block5_pool")] == ["pool"]
    stack.undo()
    assert set(graph.nodes) == {"image", "backbone", "pool"}
    assert {(e.source, e.target) for e in graph.edges} == {
        ("image", "backbone"),
        ("backbone", "pool"),
    }


def test_expand_says_why_not_when_the_importer_cannot_represent_the_network(qtbot):
    pytest.importorskip("keras")
    inspector, project, _stack = _shown(qtbot, "ConvNeXtTiny")
    messages: list[str] = []
    inspector.message.connect(messages.append)
    inspector.expand_button.click()
    qtbot.waitUntil(lambda: bool(messages), timeout=60000)
    assert "cannot be expanded" in messages[-1] and "ConvNeXtTiny" in messages[-1]
    assert "Backbone 'backbone'" in messages[-1]
    assert "backbone" in project.graph.nodes  # nothing changed
    assert inspector.expand_button.isEnabled()
