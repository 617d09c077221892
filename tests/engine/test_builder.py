"""Project graph -> keras.Model: layer names, wiring, kwargs, and counts that match inference."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from engine.analysis.shapes import ShapeInference
from engine.build.builder import build_model, model_name
from engine.build.errors import BuildError
from engine.build.layers import layer_kwargs, make_layer
from engine.model.graph import Edge, Graph, Node


def make_graph(*nodes: tuple) -> Graph:
    """Nodes as (id, type, params, [input ids in port order])."""
    g = Graph()
    for nid, ntype, params, *rest in nodes:
        g.nodes[nid] = Node(nid, ntype, dict(params))
        for port, src in enumerate(rest[0] if rest else ()):
            g.edges.append(Edge(src, nid, port))
    return g


def assert_counts_match_inference(graph: Graph, model: keras.Model) -> None:
    """Per-layer and total counts equal Keras's own (what model.summary prints)."""
    si = ShapeInference(graph)
    assert si.problems == []
    for nid, info in si.info.items():
        layer = model.get_layer(nid)
        assert layer.count_params() == info.params, nid
    total, trainable, non_trainable = si.totals()
    assert model.count_params() == total
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == trainable
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == non_trainable


def test_build_model_single_input_chain():
    g = make_graph(
        ("img", "Input", {"shape": [8, 8, 1]}),
        (
            "conv",
            "Conv2D",
            {"filters": 4, "kernel_size": [3, 3], "padding": "same", "activation": "relu"},
            ["img"],
        ),
        ("bn", "BatchNormalization", {}, ["conv"]),
        ("pool", "MaxPooling2D", {"pool_size": [2, 2]}, ["bn"]),
        ("flat", "Flatten", {}, ["pool"]),
        ("drop", "Dropout", {"rate": 0.25}, ["flat"]),
        ("out", "Dense", {"units": 10, "activation": "softmax"}, ["drop"]),
    )
    model = build_model(g)
    assert [layer.name for layer in model.layers] == list(g.nodes)
    assert not isinstance(model.inputs[0], list) and model.input_shape == (None, 8, 8, 1)
    assert model.output_shape == (None, 10)
    assert model.get_layer("conv").kernel_size == (3, 3)
    assert_counts_match_inference(g, model)
    assert model.predict(np.zeros((2, 8, 8, 1), "float32"), verbose=0).shape == (2, 10)


def test_build_model_residual_add_and_concatenate():
    g = make_graph(
        ("x", "Input", {"shape": [16]}),
        ("a", "Dense", {"units": 16, "activation": "relu"}, ["x"]),
        ("b", "Dense", {"units": 16}, ["a"]),
        ("res", "Add", {}, ["b", "x"]),
        ("side", "Dense", {"units": 4}, ["x"]),
        ("cat", "Concatenate", {}, ["res", "side"]),
        ("out", "Dense", {"units": 1}, ["cat"]),
    )
    model = build_model(g)
    assert model.get_layer("cat").output.shape == (None, 20)
    inbound = model.get_layer("res")._inbound_nodes[0].input_tensors
    assert [t._keras_history.operation.name for t in inbound] == ["b", "x"]
    assert_counts_match_inference(g, model)


def test_build_model_concatenate_keeps_port_order():
    g = make_graph(
        ("x", "Input", {"shape": [3]}),
        ("wide", "Dense", {"units": 5}, ["x"]),
        ("narrow", "Dense", {"units": 2}, ["x"]),
    )
    g.nodes["cat"] = Node("cat", "Concatenate", {})
    g.edges += [Edge("narrow", "cat", 0), Edge("wide", "cat", 1)]  # listed out of order
    model = build_model(g)
    inbound = model.get_layer("cat")._inbound_nodes[0].input_tensors
    assert [t._keras_history.operation.name for t in inbound] == ["narrow", "wide"]


def test_build_model_multi_input_and_multi_output():
    g = make_graph(
        ("image", "Input", {"shape": [4, 4, 2]}),
        ("meta", "Input", {"shape": [3]}),
        ("flat", "Flatten", {}, ["image"]),
        ("both", "Concatenate", {}, ["flat", "meta"]),
        ("label", "Dense", {"units": 5, "activation": "softmax"}, ["both"]),
        ("score", "Dense", {"units": 1}, ["both"]),
    )
    model = build_model(g)
    assert [t.name for t in model.inputs] == ["image", "meta"]
    assert [t._keras_history.operation.name for t in model.outputs] == ["label", "score"]
    out = model.predict([np.zeros((2, 4, 4, 2)), np.zeros((2, 3))], verbose=0)
    assert [o.shape for o in out] == [(2, 5), (2, 1)]
    assert_counts_match_inference(g, model)


def test_build_model_attention_gets_query_value_key_positionally():
    g = make_graph(
        ("q", "Input", {"shape": [6, 8]}),
        ("v", "Input", {"shape": [4, 8]}),
        ("k", "Input", {"shape": [4, 8]}),
        ("mha", "MultiHeadAttention", {"num_heads": 2, "key_dim": 4}, ["q", "v", "k"]),
        ("norm", "LayerNormalization", {}, ["mha"]),
    )
    model = build_model(g)
    assert model.output_shape == (None, 6, 8)  # follows the query
    assert_counts_match_inference(g, model)


def test_build_model_recurrent_wrappers():
    g = make_graph(
        ("ids", "Input", {"shape": [7]}),
        ("emb", "Embedding", {"input_dim": 20, "output_dim": 4}, ["ids"]),
        (
            "bi",
            "Bidirectional",
            {"layer": {"type": "LSTM", "params": {"units": 3, "return_sequences": True}}},
            ["emb"],
        ),
        ("td", "TimeDistributed", {"layer": {"type": "Dense", "params": {"units": 2}}}, ["bi"]),
    )
    model = build_model(g)
    assert isinstance(model.get_layer("bi").forward_layer, keras.layers.LSTM)
    assert model.get_layer("td").layer.units == 2
    assert model.output_shape == (None, 7, 2)
    assert_counts_match_inference(g, model)


def test_build_model_name_comes_from_the_project():
    class FakeProject:
        name = "LeNet-5 on digits"
        graph = make_graph(("x", "Input", {"shape": [2]}), ("y", "Dense", {"units": 1}, ["x"]))

    assert build_model(FakeProject()).name == "LeNet_5_on_digits"
    assert model_name("3 layers!") == "model_3_layers" and model_name("") == "model"


def test_layer_kwargs_converts_catalog_values():
    kwargs = layer_kwargs(
        "Conv2D",
        {
            "filters": 8,
            "kernel_size": [3, 5],
            "strides": 2,
            "kernel_regularizer": {"type": "L2", "l2": 0.01},
            "bias_regularizer": {"type": "L1L2", "l1": 0.1, "l2": 0.2},
            "activity_regularizer": None,
        },
    )
    assert kwargs["kernel_size"] == (3, 5) and kwargs["strides"] == 2
    reg = kwargs["kernel_regularizer"]
    assert isinstance(reg, keras.regularizers.L2) and reg.l2 == pytest.approx(0.01)
    both = kwargs["bias_regularizer"]
    assert isinstance(both, keras.regularizers.L1L2)
    assert (both.l1, both.l2) == (pytest.approx(0.1), pytest.approx(0.2))
    assert kwargs["activity_regularizer"] is None
    l1 = layer_kwargs("Dense", {"units": 2, "kernel_regularizer": {"type": "L1", "l1": 0.5}})
    assert isinstance(l1["kernel_regularizer"], keras.regularizers.L1)
    assert layer_kwargs("Reshape", {"target_shape": [4, -1]}) == {"target_shape": (4, -1)}
    assert layer_kwargs("Input", {"shape": [None, 3]}) == {"shape": (None, 3)}


def test_layer_kwargs_builds_wrapped_layers():
    bi = layer_kwargs(
        "Bidirectional", {"layer": {"type": "LSTM", "params": {"units": 5}}, "merge_mode": "sum"}
    )
    assert isinstance(bi["layer"], keras.layers.LSTM) and bi["layer"].units == 5
    assert bi["merge_mode"] == "sum"
    td = layer_kwargs(
        "TimeDistributed",
        {
            "layer": {
                "type": "Dense",
                "params": {"units": 3, "kernel_regularizer": {"type": "L2", "l2": 0.1}},
            }
        },
    )
    assert isinstance(td["layer"], keras.layers.Dense)
    assert isinstance(td["layer"].kernel_regularizer, keras.regularizers.L2)


def test_layer_kwargs_and_make_layer_refuse_unknown_params():
    with pytest.raises(BuildError, match="'fc'.*unknown parameter 'unit'"):
        layer_kwargs("Dense", {"unit": 3}, node_id="fc")
    with pytest.raises(BuildError, match="Dense 'fc': unknown parameter 'unit'"):
        make_layer(Node("fc", "Dense", {"unit": 3}))
    with pytest.raises(BuildError, match="unknown layer type 'Dnse'"):
        make_layer(Node("fc", "Dnse", {}))


def test_make_layer_names_the_layer_and_input():
    layer = make_layer(Node("hidden", "Dense", {"units": 3}))
    assert isinstance(layer, keras.layers.Dense) and layer.name == "hidden"
    tensor = make_layer(Node("pixels", "Input", {"shape": [8, 8, 1]}))
    assert tensor.shape == (None, 8, 8, 1) and tensor.name == "pixels"


def test_make_layer_keras_refusal_names_the_node():
    with pytest.raises(BuildError, match=r"Permute 'swap'.*dims=\(3, 1\)") as info:
        make_layer(Node("swap", "Permute", {"dims": [3, 1]}))
    assert "Traceback" not in str(info.value)


def test_build_model_refuses_structural_errors_naming_the_node():
    g = make_graph(("x", "Input", {"shape": [4]}), ("merge", "Add", {}, ["x"]))
    with pytest.raises(BuildError, match="'merge'.*2 inputs but has 1"):
        build_model(g)
    cyc = make_graph(
        ("x", "Input", {"shape": [4]}),
        ("a", "Add", {}, ["x", "b"]),
        ("b", "Dense", {"units": 4}, ["a"]),
    )
    with pytest.raises(BuildError, match="cycle"):
        build_model(cyc)


def test_build_model_refuses_shape_errors_with_shapes():
    g = make_graph(("x", "Input", {"shape": [64]}), ("rnn", "LSTM", {"units": 4}, ["x"]))
    with pytest.raises(BuildError, match=r"LSTM 'rnn'.*3-D.*\(None, 64\)"):
        build_model(g)
