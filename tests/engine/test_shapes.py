"""Exact shapes, parameter counts and shape problems from Keras, incrementally."""

from __future__ import annotations

import time

import pytest

from engine.analysis.shapes import LayerInfo, ShapeInference
from engine.model.graph import Edge, Graph, Node


def make_graph(*nodes: tuple) -> Graph:
    """Nodes as (id, type, params, [input ids in port order])."""
    g = Graph()
    for nid, ntype, params, *rest in nodes:
        g.nodes[nid] = Node(nid, ntype, dict(params))
        for port, src in enumerate(rest[0] if rest else ()):
            g.edges.append(Edge(src, nid, port))
    return g


def problems_on(si: ShapeInference, node: str) -> list[str]:
    return [p.message for p in si.problems if p.node == node]


def test_shape_inference_shapes_and_counts_of_a_small_cnn():
    g = make_graph(
        ("img", "Input", {"shape": [8, 8, 1]}),
        ("conv", "Conv2D", {"filters": 4, "kernel_size": 3}, ["img"]),
        ("bn", "BatchNormalization", {}, ["conv"]),
        ("pool", "MaxPooling2D", {}, ["bn"]),
        ("flat", "Flatten", {}, ["pool"]),
        ("out", "Dense", {"units": 10, "activation": "softmax"}, ["flat"]),
    )
    si = ShapeInference(g)
    assert si.problems == []
    assert si.info["img"] == LayerInfo("img", "Input", (None, 8, 8, 1), 0, 0, 0)
    assert si.info["conv"] == LayerInfo("conv", "Conv2D", (None, 6, 6, 4), 40, 40, 0)
    assert si.info["bn"] == LayerInfo("bn", "BatchNormalization", (None, 6, 6, 4), 16, 8, 8)
    assert si.info["pool"].output_shape == (None, 3, 3, 4)
    assert si.info["flat"].output_shape == (None, 36)
    assert si.info["out"] == LayerInfo("out", "Dense", (None, 10), 370, 370, 0)
    assert tuple(si.totals()) == (40 + 16 + 370, 40 + 8 + 370, 8)


def test_shape_inference_multi_output_layer_lists_its_shapes():
    g = make_graph(
        ("seq", "Input", {"shape": [5, 3]}),
        ("rnn", "LSTM", {"units": 4, "return_sequences": True}, ["seq"]),
        ("bi", "Bidirectional", {"layer": {"type": "GRU", "params": {"units": 2}}}, ["rnn"]),
        ("td", "TimeDistributed", {"layer": {"type": "Dense", "params": {"units": 3}}}, ["rnn"]),
    )
    si = ShapeInference(g)
    assert si.problems == []
    assert si.info["rnn"].output_shape == (None, 5, 4)
    assert si.info["bi"].output_shape == (None, 4)
    assert si.info["td"].output_shape == (None, 5, 3)
    assert si.info["td"].params == 4 * 3 + 3


# Each case: nodes after the Input(s), the node that must get the problem, and
# texts its message must contain (the input shapes involved, in Keras's notation).
SHAPE_ERRORS = {
    "dense_after_4d": (
        [("x", "Input", {"shape": [8, 8, 32]}), ("fc", "Dense", {"units": 10}, ["x"])],
        "fc",
        "warning",
        ["Dense", "(None, 8, 8, 32)", "Flatten"],
    ),
    "add_different_shapes": (
        [
            ("a", "Input", {"shape": [16]}),
            ("b", "Input", {"shape": [32]}),
            ("sum", "Add", {}, ["a", "b"]),
        ],
        "sum",
        "error",
        ["different shapes", "(None, 16)", "(None, 32)"],
    ),
    "concatenate_mismatch": (
        [
            ("a", "Input", {"shape": [4, 4, 8]}),
            ("b", "Input", {"shape": [2, 2, 8]}),
            ("cat", "Concatenate", {}, ["a", "b"]),
        ],
        "cat",
        "error",
        ["(None, 4, 4, 8)", "(None, 2, 2, 8)", "axis -1"],
    ),
    "pooling_below_one": (
        [("x", "Input", {"shape": [2, 2, 8]}), ("pool", "MaxPooling2D", {"pool_size": 3}, ["x"])],
        "pool",
        "error",
        ["pool size 3 shrinks side 2 below 1", "(None, 2, 2, 8)"],
    ),
    "pooling_1d_below_one": (
        [("x", "Input", {"shape": [2, 8]}), ("pool", "AveragePooling1D", {"pool_size": 4}, ["x"])],
        "pool",
        "error",
        ["pool size 4 shrinks side 2", "(None, 2, 8)"],
    ),
    "conv_kernel_too_big": (
        [
            ("x", "Input", {"shape": [3, 3, 1]}),
            ("conv", "Conv2D", {"filters": 2, "kernel_size": 5}, ["x"]),
        ],
        "conv",
        "error",
        ["kernel size 5 shrinks side 3", "(None, 3, 3, 1)"],
    ),
    "lstm_fed_2d": (
        [("x", "Input", {"shape": [64]}), ("rnn", "LSTM", {"units": 8}, ["x"])],
        "rnn",
        "error",
        ["3-D input (batch, time, features)", "(None, 64)"],
    ),
    "bidirectional_fed_2d": (
        [
            ("x", "Input", {"shape": [64]}),
            ("bi", "Bidirectional", {"layer": {"type": "LSTM", "params": {"units": 4}}}, ["x"]),
        ],
        "bi",
        "error",
        ["3-D input", "(None, 64)"],
    ),
    "time_distributed_fed_2d": (
        [
            ("x", "Input", {"shape": [16]}),
            ("td", "TimeDistributed", {"layer": {"type": "Dense", "params": {"units": 3}}}, ["x"]),
        ],
        "td",
        "error",
        ["at least 3-D input", "(None, 16)"],
    ),
    "conv2d_fed_2d": (
        [
            ("x", "Input", {"shape": [64]}),
            ("conv", "Conv2D", {"filters": 4, "kernel_size": 3}, ["x"]),
        ],
        "conv",
        "error",
        ["4-D input (batch, height, width, channels)", "(None, 64)"],
    ),
    "conv1d_fed_2d": (
        [
            ("x", "Input", {"shape": [64]}),
            ("conv", "Conv1D", {"filters": 4, "kernel_size": 3}, ["x"]),
        ],
        "conv",
        "error",
        ["3-D input", "(None, 64)"],
    ),
    "global_pool_fed_2d": (
        [("x", "Input", {"shape": [16]}), ("gap", "GlobalAveragePooling2D", {}, ["x"])],
        "gap",
        "error",
        ["4-D input", "(None, 16)"],
    ),
    "reshape_wrong_size": (
        [("x", "Input", {"shape": [64]}), ("re", "Reshape", {"target_shape": [5, 5]}, ["x"])],
        "re",
        "error",
        ["(None, 64)", "(5, 5)", "64 values", "25 values"],
    ),
    "reshape_not_divisible": (
        [("x", "Input", {"shape": [64]}), ("re", "Reshape", {"target_shape": [-1, 5]}, ["x"])],
        "re",
        "error",
        ["(None, 64)", "(-1, 5)", "divisible"],
    ),
    "flatten_then_conv": (
        [
            ("x", "Input", {"shape": [4, 4, 2]}),
            ("flat", "Flatten", {}, ["x"]),
            ("conv", "Conv2D", {"filters": 2, "kernel_size": 1}, ["flat"]),
        ],
        "conv",
        "error",
        ["4-D", "(None, 32)"],
    ),
    "embedding_then_conv2d": (
        [
            ("ids", "Input", {"shape": [10]}),
            ("emb", "Embedding", {"input_dim": 50, "output_dim": 8}, ["ids"]),
            ("conv", "Conv2D", {"filters": 2, "kernel_size": 3}, ["emb"]),
        ],
        "conv",
        "error",
        ["4-D", "(None, 10, 8)"],
    ),
    "attention_key_value_mismatch": (
        [
            ("q", "Input", {"shape": [10, 16]}),
            ("v", "Input", {"shape": [5, 16]}),
            ("k", "Input", {"shape": [6, 16]}),
            ("mha", "MultiHeadAttention", {"num_heads": 2, "key_dim": 8}, ["q", "v", "k"]),
        ],
        "mha",
        "error",
        ["(None, 5, 16)", "(None, 6, 16)"],
    ),
    "batchnorm_axis_out_of_range": (
        [("x", "Input", {"shape": [16]}), ("bn", "BatchNormalization", {"axis": 5}, ["x"])],
        "bn",
        "error",
        ["axis 5", "(None, 16)"],
    ),
    "layernorm_axis_out_of_range": (
        [("x", "Input", {"shape": [16]}), ("ln", "LayerNormalization", {"axis": 3}, ["x"])],
        "ln",
        "error",
        ["axis 3", "(None, 16)"],
    ),
    "dot_axis_mismatch": (
        [
            ("a", "Input", {"shape": [16]}),
            ("b", "Input", {"shape": [8]}),
            ("dot", "Dot", {"axes": 1}, ["a", "b"]),
        ],
        "dot",
        "error",
        ["(None, 16)", "(None, 8)"],
    ),
    "cropping_too_much": (
        [("x", "Input", {"shape": [4, 4, 3]}), ("crop", "Cropping2D", {"cropping": [3, 3]}, ["x"])],
        "crop",
        "error",
        ["(None, 4, 4, 3)"],
    ),
    "group_norm_groups": (
        [("x", "Input", {"shape": [6]}), ("gn", "GroupNormalization", {"groups": 4}, ["x"])],
        "gn",
        "error",
        ["4", "6"],
    ),
    "dense_unknown_last_axis": (
        [("x", "Input", {"shape": [None]}), ("fc", "Dense", {"units": 3}, ["x"])],
        "fc",
        "error",
        ["(None, None)"],
    ),
}


@pytest.mark.parametrize("case", list(SHAPE_ERRORS))
def test_shape_inference_reports_shape_error_on_the_right_node(case):
    nodes, bad, severity, texts = SHAPE_ERRORS[case]
    si = ShapeInference(make_graph(*nodes))
    found = [p for p in si.problems if p.node == bad]
    assert len(found) == 1, si.problems
    problem = found[0]
    assert problem.severity == severity
    assert f"'{bad}'" in problem.message
    for text in texts:
        assert text in problem.message, problem.message
    assert "Traceback" not in problem.message and "Arguments received" not in problem.message
    assert "\x1b[" not in problem.message and len(problem.message) < 300
    others = [p for p in si.problems if p.node != bad]
    assert others == []


def test_shape_inference_stacked_recurrent_layers_suggest_return_sequences():
    g = make_graph(
        ("seq", "Input", {"shape": [5, 3]}),
        ("first", "LSTM", {"units": 8}, ["seq"]),
        ("second", "GRU", {"units": 4}, ["first"]),
    )
    si = ShapeInference(g)
    (message,) = problems_on(si, "second")
    assert "(None, 8)" in message and "return_sequences in 'first'" in message
    g.set_params("first", {"units": 8, "return_sequences": True})
    si.update(["first"])
    assert si.problems == [] and si.info["second"].output_shape == (None, 4)


def test_shape_inference_downstream_of_a_broken_node_stays_quiet():
    g = make_graph(
        ("x", "Input", {"shape": [64]}),
        ("rnn", "LSTM", {"units": 8}, ["x"]),
        ("d1", "Dense", {"units": 4}, ["rnn"]),
        ("d2", "Dense", {"units": 2}, ["d1"]),
    )
    si = ShapeInference(g)
    assert [p.node for p in si.problems] == ["rnn"]
    assert si.info["d1"].output_shape is None and si.info["d2"].output_shape is None
    assert si.info["x"].output_shape == (None, 64)


def test_shape_inference_skips_structurally_broken_nodes():
    g = make_graph(
        ("x", "Input", {"shape": [4]}),
        ("bad", "Dense", {"units": -1}, ["x"]),
        ("nope", "Dnese", {}, ["x"]),
        ("ok", "Dense", {"units": 2}, ["x"]),
    )
    si = ShapeInference(g)
    assert si.problems == []  # structural_problems reports these
    assert si.info["bad"].output_shape is None and si.info["nope"].output_shape is None
    assert si.info["ok"].output_shape == (None, 2)


def chain_graph() -> Graph:
    return make_graph(
        ("x", "Input", {"shape": [16, 16, 3]}),
        ("c1", "Conv2D", {"filters": 8, "kernel_size": 3}, ["x"]),
        ("c2", "Conv2D", {"filters": 8, "kernel_size": 3}, ["c1"]),
        ("c3", "Conv2D", {"filters": 4, "kernel_size": 3}, ["c2"]),
        ("flat", "Flatten", {}, ["c3"]),
        ("out", "Dense", {"units": 2}, ["flat"]),
    )


@pytest.fixture
def count_layers(monkeypatch):
    """Counts the layers shape inference creates, by wrapping make_layer."""
    import engine.analysis.shapes

    made: list[str] = []
    real = engine.analysis.shapes.make_layer

    def counting(node):
        made.append(node.id)
        return real(node)

    monkeypatch.setattr(engine.analysis.shapes, "make_layer", counting)
    return made


def test_shape_inference_update_recomputes_only_downstream(count_layers):
    g = chain_graph()
    si = ShapeInference(g)
    assert si.info["out"].output_shape == (None, 2) and si.info["c3"].params == 8 * 9 * 4 + 4
    count_layers.clear()
    g.set_params("c2", {"filters": 6, "kernel_size": 3})
    recomputed = si.update(["c2"])
    # c2's channels changed -> c3's weights change, but c3's output shape is the same: stop
    assert recomputed == {"c2", "c3"}
    assert sorted(count_layers) == ["c2", "c3"]
    assert si.info["c2"].output_shape == (None, 12, 12, 6)
    assert si.info["c3"].params == 6 * 9 * 4 + 4
    assert si.info["out"].params == 10 * 10 * 4 * 2 + 2  # unchanged: its input is the same


def test_shape_inference_activation_edit_revalidates_one_node(count_layers):
    g = chain_graph()
    si = ShapeInference(g)
    count_layers.clear()
    g.set_params("c1", {"filters": 8, "kernel_size": 3, "activation": "relu"})
    assert si.update(["c1"]) == {"c1"}
    assert count_layers == ["c1"]


def test_shape_inference_shape_change_propagates_to_the_end(count_layers):
    g = chain_graph()
    si = ShapeInference(g)
    count_layers.clear()
    g.set_params("c1", {"filters": 8, "kernel_size": 5})
    assert si.update(["c1"]) == {"c1", "c2", "c3", "flat", "out"}
    assert si.info["flat"].output_shape == (None, 8 * 8 * 4)  # 16 -> 12 -> 10 -> 8
    assert si.info["out"].params == 8 * 8 * 4 * 2 + 2


def test_shape_inference_update_follows_structural_edits():
    g = chain_graph()
    si = ShapeInference(g)
    g.nodes["pool"] = Node("pool", "MaxPooling2D", {})
    g.edges.remove(Edge("c3", "flat", 0))
    g.edges += [Edge("c3", "pool", 0), Edge("pool", "flat", 0)]
    recomputed = si.update(["pool", "flat"])
    assert recomputed == {"pool", "flat", "out"}
    assert si.info["flat"].output_shape == (None, 5 * 5 * 4)
    # removing a node drops its info; its consumer (found without being named) loses its shape
    del g.nodes["pool"]
    g.edges = [e for e in g.edges if "pool" not in (e.source, e.target)]
    si.update([])
    assert "pool" not in si.info and si.info["flat"].output_shape is None
    assert si.info["out"].output_shape is None


def test_shape_inference_fixing_an_error_clears_it():
    g = make_graph(
        ("x", "Input", {"shape": [2, 2, 8]}),
        ("pool", "MaxPooling2D", {"pool_size": 3}, ["x"]),
        ("flat", "Flatten", {}, ["pool"]),
    )
    si = ShapeInference(g)
    assert problems_on(si, "pool") and si.info["flat"].output_shape is None
    g.set_params("pool", {"pool_size": 3, "padding": "same"})
    si.update(["pool"])
    assert si.problems == []
    assert si.info["flat"].output_shape == (None, 8)


def resnet_graph(blocks: int, side: int = 224) -> Graph:
    """A deep chain of residual bottleneck blocks (12 nodes each), with distinct widths."""
    g = Graph()

    def add(nid: str, ntype: str, inputs: list[str], **params) -> str:
        g.nodes[nid] = Node(nid, ntype, params)
        g.edges.extend(Edge(src, nid, port) for port, src in enumerate(inputs))
        return nid

    add("image", "Input", [], shape=[side, side, 3])
    add("stem", "Conv2D", ["image"], filters=64, kernel_size=7, strides=2, padding="same")
    prev = add("stem_pool", "MaxPooling2D", ["stem"], pool_size=3, strides=2, padding="same")
    for b in range(blocks):
        p, width = f"b{b}_", 32 + b % 17  # mostly distinct blocks: little help from the memo
        stride = 2 if b in (blocks // 4, blocks // 2, 3 * blocks // 4) else 1
        add(p + "c1", "Conv2D", [prev], filters=width, kernel_size=1, strides=stride)
        add(p + "n1", "BatchNormalization", [p + "c1"])
        add(p + "a1", "Activation", [p + "n1"], activation="relu")
        add(p + "c2", "Conv2D", [p + "a1"], filters=width, kernel_size=3, padding="same")
        add(p + "n2", "BatchNormalization", [p + "c2"])
        add(p + "a2", "Activation", [p + "n2"], activation="relu")
        add(p + "c3", "Conv2D", [p + "a2"], filters=256, kernel_size=1)
        add(p + "n3", "BatchNormalization", [p + "c3"])
        add(p + "sc", "Conv2D", [prev], filters=256, kernel_size=1, strides=stride)
        add(p + "scn", "BatchNormalization", [p + "sc"])
        add(p + "add", "Add", [p + "n3", p + "scn"])
        prev = add(p + "out", "Activation", [p + "add"], activation="relu")
    add("gap", "GlobalAveragePooling2D", [prev])
    add("fc", "Dense", ["gap"], units=1000, activation="softmax")
    return g


def test_shape_inference_500_layers_edit_is_fast():
    g = resnet_graph(42)
    assert len(g.nodes) > 500
    start = time.perf_counter()
    si = ShapeInference(g)
    full = time.perf_counter() - start
    assert si.problems == [] and si.info["fc"].output_shape == (None, 1000)
    total = si.totals().total
    g.set_params("b20_c2", {"filters": 40, "kernel_size": 3, "padding": "same"})
    start = time.perf_counter()
    recomputed = si.update(["b20_c2"])
    edit = time.perf_counter() - start
    print(
        f"\n{len(g.nodes)} layers: full {full * 1000:.0f} ms, one edit {edit * 1000:.1f} ms "
        f"({len(recomputed)} layers recomputed)"
    )
    assert recomputed == {"b20_c2", "b20_n2", "b20_a2", "b20_c3"}
    assert si.totals().total != total
    assert edit < 0.3


def test_shape_inference_creates_no_real_weights():
    """Shapes come from deferred variables: nothing is left for Keras to initialise."""
    from keras.src.backend.common import global_state

    si = ShapeInference(resnet_graph(2, side=32))
    assert si.totals().total > 0
    assert not global_state.get_global_attribute("uninitialized_variables")
