"""Export samples each variable-length axis at a length every layer accepts (issue 16).

The keras.io text CNN (Embedding, then Conv1D with kernel 7 and stride 3, twice) takes
sequences of any length, but not of length 8: export used to fail on it in every
format ("the model does not run on a sample input").
"""

from __future__ import annotations

import importlib.util

import pytest

from engine.io.export import FORMATS, export, sample_inputs, variable_length
from engine.model.graph import Edge, Node
from engine.model.project import Project

keras = pytest.importorskip("keras")


def text_cnn() -> Project:
    """keras.io "Text classification from scratch", small: ids of any length."""
    p = Project(name="text cnn")
    g = p.graph
    g.nodes["ids"] = Node("ids", "Input", {"shape": [None]})  # float ids: Embedding casts
    g.nodes["embed"] = Node("embed", "Embedding", {"input_dim": 50, "output_dim": 8})
    g.nodes["conv1"] = Node(
        "conv1", "Conv1D", {"filters": 8, "kernel_size": 7, "strides": 3, "activation": "relu"}
    )
    g.nodes["conv2"] = Node(
        "conv2", "Conv1D", {"filters": 8, "kernel_size": 7, "strides": 3, "activation": "relu"}
    )
    g.nodes["pool"] = Node("pool", "GlobalMaxPooling1D", {})
    g.nodes["out"] = Node("out", "Dense", {"units": 1, "activation": "sigmoid"})
    for a, b in [("ids", "embed"), ("embed", "conv1"), ("conv1", "conv2"), ("conv2", "pool")]:
        g.edges.append(Edge(a, b))
    g.edges.append(Edge("pool", "out"))
    return p


@pytest.fixture(scope="module")
def project() -> Project:
    return text_cnn()


def test_the_sample_length_is_one_every_layer_accepts(project):
    from engine.build.builder import build_model

    model = build_model(project)
    length = variable_length(model)
    assert length > 8  # 8 -> conv1 gives 1 step -> conv2 has nothing left
    (x,) = sample_inputs(model)
    assert x.shape[1] == length
    model(x)  # runs


def test_a_fixed_length_model_keeps_its_shape():
    from engine.build.builder import build_model

    p = text_cnn()
    p.graph.nodes["ids"].params = {"shape": [40]}
    (x,) = sample_inputs(build_model(p))
    assert x.shape[1:] == (40,)


def _available(fmt: str) -> bool:
    if fmt == "onnx":
        return importlib.util.find_spec("tf2onnx") is not None
    return True


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_text_cnn_exports_and_verifies_in_every_format(project, fmt, tmp_path):
    if not _available(fmt):
        pytest.skip("tf2onnx is not installed")
    result = export(project, fmt, tmp_path / "model")
    assert result.verified, result.message
