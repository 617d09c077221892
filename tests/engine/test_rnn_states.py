"""RNN states as ports: ``return_state`` outputs, ``initial_state`` inputs (issue 16).

The seq2seq model is the one keras.io's "character-level recurrent sequence-to-sequence
model" example writes: an encoder LSTM whose states start a decoder LSTM.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.analysis.shapes import ShapeInference
from engine.build.builder import build_model
from engine.build.errors import BuildError
from engine.build.weights import load_start_weights
from engine.codegen.script import model_code
from engine.io.importing.rebuild import import_model
from engine.model.graph import Edge, Graph, GraphError, Node, output_ports
from engine.model.project import VERSION, Project, dumps, load_project

keras = pytest.importorskip("keras")
layers = keras.layers


def seq2seq_keras(tokens_in=7, tokens_out=9, latent=16):
    """keras.io's seq2seq example, as written there (smaller)."""
    encoder_inputs = keras.Input(shape=(None, tokens_in), name="encoder_inputs")
    encoder = layers.LSTM(latent, return_state=True, name="encoder")
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = keras.Input(shape=(None, tokens_out), name="decoder_inputs")
    decoder_lstm = layers.LSTM(latent, return_sequences=True, return_state=True, name="decoder")
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = layers.Dense(tokens_out, activation="softmax", name="dense")
    decoder_outputs = decoder_dense(decoder_outputs)
    return keras.Model([encoder_inputs, decoder_inputs], decoder_outputs, name="seq2seq")


def seq2seq_graph(tokens_in=7, tokens_out=9, latent=16) -> Graph:
    g = Graph()
    g.add_node(Node("encoder_inputs", "Input", {"shape": [None, tokens_in]}))
    g.add_node(Node("decoder_inputs", "Input", {"shape": [None, tokens_out]}))
    g.add_node(Node("encoder", "LSTM", {"units": latent, "return_state": True}))
    g.add_node(Node("decoder", "LSTM", {"units": latent, "return_sequences": True}))
    g.add_node(Node("dense", "Dense", {"units": tokens_out, "activation": "softmax"}))
    g.connect(Edge("encoder_inputs", "encoder"))
    g.connect(Edge("decoder_inputs", "decoder"))
    g.connect(Edge("encoder", "decoder", 1, source_port=1))
    g.connect(Edge("encoder", "decoder", 2, source_port=2))
    g.connect(Edge("decoder", "dense"))
    return g


def inputs_for(model, n=3, steps=5):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((n, steps, t.shape[-1])).astype("float32") for t in model.inputs]


@pytest.mark.parametrize(
    "inner, states",
    [("LSTM", ["h", "c"]), ("GRU", ["h"]), ("SimpleRNN", ["h"])],
)
def test_return_state_shapes_per_port_match_keras(inner, states):
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": [6, 3]}))
    g.add_node(Node("rnn", inner, {"units": 4, "return_state": True, "return_sequences": True}))
    g.connect(Edge("x", "rnn"))
    assert output_ports(g.nodes["rnn"]) == ("out", *states)
    info = ShapeInference(g).info["rnn"]
    assert info.output_shape == [(None, 6, 4)] + [(None, 4)] * len(states)
    ref = getattr(layers, inner)(4, return_state=True, return_sequences=True)
    out = ref(keras.Input((6, 3)))
    assert info.output_shape == [tuple(t.shape) for t in out]
    assert info.params == ref.count_params()


def test_bidirectional_states_forward_then_backward():
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": [6, 3]}))
    lstm = {"type": "LSTM", "params": {"units": 4, "return_state": True}}
    g.add_node(Node("bi", "Bidirectional", {"layer": lstm}))
    g.add_node(Node("bi2", "Bidirectional", {"layer": {"type": "LSTM", "params": {"units": 4}}}))
    g.connect(Edge("x", "bi"))
    g.connect(Edge("x", "bi2"))
    for port in range(1, 5):
        g.connect(Edge("bi", "bi2", port, source_port=port))
    assert output_ports(g.nodes["bi"]) == ("out", "h_fw", "c_fw", "h_bw", "c_bw")
    si = ShapeInference(g)
    assert si.problems == []
    assert si.info["bi"].output_shape == [(None, 8)] + [(None, 4)] * 4
    assert si.info["bi2"].output_shape == (None, 8)
    model = build_model(g)
    assert model.count_params() == si.totals().total


def test_seq2seq_builds_trains_and_counts_equal_keras():
    g = seq2seq_graph()
    si = ShapeInference(g)
    assert si.problems == []
    ref = seq2seq_keras()
    model = build_model(g)
    assert model.count_params() == ref.count_params() == si.totals().total
    xs = inputs_for(model, n=8)
    y = np.random.default_rng(1).integers(0, 9, (8, 5))
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(xs, y, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # the decoder really starts from the encoder's state: a different encoder input
    # changes the decoder's output
    other = [xs[0] + 1.0, xs[1]]
    assert not np.allclose(model(xs), model(other))


def test_seq2seq_import_round_trips_exactly(tmp_path):
    ref = seq2seq_keras()
    path = tmp_path / "seq2seq.keras"
    ref.save(path)
    project = import_model(path, weights_out=tmp_path / "seq2seq.weights.h5")
    g = project.graph
    assert [n.type for n in g.nodes.values()] == ["Input", "Input", "LSTM", "LSTM", "Dense"]
    assert g.nodes["encoder"].params["return_state"] is True
    states = sorted((e.port, e.source_port) for e in g.inputs_of("decoder") if e.port)
    assert states == [(1, 1), (2, 2)]
    assert ShapeInference(g).totals().total == ref.count_params()
    project.path = tmp_path / "seq2seq.json"
    rebuilt = build_model(project)
    load_start_weights(rebuilt, project)
    assert rebuilt.count_params() == ref.count_params()
    xs = inputs_for(ref)
    np.testing.assert_allclose(np.asarray(rebuilt(xs)), np.asarray(ref(xs)), atol=1e-5)
    # and the generated script builds the same model
    scope: dict = {"keras": keras, "layers": layers}
    exec(model_code(g, "seq2seq"), scope)
    again = scope["build_model"]()
    again.set_weights(rebuilt.get_weights())
    assert again.count_params() == ref.count_params()
    np.testing.assert_allclose(np.asarray(again(xs)), np.asarray(ref(xs)), atol=1e-5)


def test_codegen_writes_the_keras_states_code():
    code = model_code(seq2seq_graph(), "s")
    assert "encoder, encoder_h, encoder_c = layers.LSTM(" in code
    assert "return_state=True" in code
    assert "(decoder_inputs, initial_state=[encoder_h, encoder_c])" in code


def test_codegen_state_names_do_not_clash_with_node_ids():
    g = seq2seq_graph()
    g.add_node(Node("encoder_h", "Dense", {"units": 2}))
    g.connect(Edge("dense", "encoder_h"))
    code = model_code(g, "s")
    assert "encoder, encoder_h_2, encoder_c = layers.LSTM(" in code
    scope: dict = {"keras": keras, "layers": layers}
    exec(code, scope)
    assert scope["build_model"]().count_params() == build_model(g).count_params()


def test_a_state_port_without_return_state_is_a_problem_naming_the_port():
    g = seq2seq_graph()
    g.set_params("encoder", {"units": 16})  # return_state turned off
    si = ShapeInference(g)
    [problem] = si.problems
    assert problem.node == "decoder"
    assert "input 1 reads output 1 of 'encoder'" in problem.message
    assert "turn on return_state in 'encoder'" in problem.message
    with pytest.raises(BuildError, match="input 1 reads output 1 of 'encoder'"):
        build_model(g)


def test_half_an_initial_state_is_a_problem_naming_the_states():
    g = seq2seq_graph()
    g.disconnect(Edge("encoder", "decoder", 2, source_port=2))
    [problem] = ShapeInference(g).problems
    assert "initial state is 2 inputs (h, c) on ports 1-2" in problem.message
    assert "it has 1" in problem.message


def test_a_wire_from_an_output_the_source_lacks_is_a_problem_and_undo_keeps_working():
    from engine.model.commands import RemoveNodes, SetParams, UndoStack

    g = seq2seq_graph()
    g.add_node(Node("d2", "Dense", {"units": 2}))
    with pytest.raises(GraphError, match="'dense' has no output -1"):
        g.connect(Edge("dense", "d2", 0, source_port=-1))
    g.connect(Edge("dense", "d2", 0, source_port=1))  # as a file may hold it
    [problem] = ShapeInference(g).problems
    assert "Dense 'd2': input 0 reads output 1 of 'dense', which has only one output" in (
        problem.message
    )
    # return_state off under the wires, delete the decoder, undo both: all wires back
    project = Project(name="s2s", graph=seq2seq_graph())
    stack = UndoStack(project)
    stack.push(SetParams("encoder", {"units": 16}))
    stack.push(RemoveNodes(["decoder"]))
    stack.undo()
    stack.undo()
    assert set(project.graph.edges) == set(seq2seq_graph().edges)
    # two outputs of one layer may feed one merge layer
    g.add_node(Node("cat", "Concatenate", {}))
    g.connect(Edge("encoder", "cat", 0, source_port=1))
    g.connect(Edge("encoder", "cat", 1, source_port=2))


def test_project_file_keeps_source_ports_and_version(tmp_path):
    project = Project(name="s2s", graph=seq2seq_graph())
    text = dumps(project)
    d = json.loads(text)
    assert d["version"] == 2 and VERSION == 3
    edges = d["graph"]["edges"]
    assert {"source": "encoder", "target": "decoder", "port": 1, "source_port": 1} in edges
    assert {"source": "decoder", "target": "dense", "port": 0} in edges  # 0 is not written
    path = tmp_path / "s2s.json"
    path.write_text(text)
    again = load_project(path)
    assert set(again.graph.edges) == set(project.graph.edges)


def test_version_1_file_migrates(tmp_path):
    path = tmp_path / "old.json"
    old = {
        "format": "layerlab",
        "version": 1,
        "name": "old",
        "graph": {
            "nodes": [
                {"id": "x", "type": "Input", "params": {"shape": [5, 3]}},
                {"id": "rnn", "type": "LSTM", "params": {"units": 4}},
                {"id": "out", "type": "Dense", "params": {"units": 2}},
            ],
            # version 1 ignored keys it did not know on edges: this one stays ignored
            "edges": [
                {"source": "x", "target": "rnn", "port": 0},
                {"source": "rnn", "target": "out", "port": 0, "source_port": 2},
            ],
        },
    }
    path.write_text(json.dumps(old))
    project = load_project(path)
    assert [e.source_port for e in project.graph.edges] == [0, 0]
    saved = json.loads(dumps(project))
    assert saved["version"] == 1  # nothing in it needs version 2: older LayerLab opens it
    assert all("source_port" not in e for e in saved["graph"]["edges"])
    assert build_model(project).count_params() == 4 * (4 * (3 + 4 + 1)) + 10


@pytest.mark.parametrize("bad", [-1, "1", True, 10**6])
def test_bad_source_port_is_refused_naming_the_edge(tmp_path, bad):
    project = Project(name="s2s", graph=seq2seq_graph())
    d = json.loads(dumps(project))
    d["graph"]["edges"][0]["source_port"] = bad
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    from engine.model.project import ProjectError

    with pytest.raises(ProjectError, match=r'edge #1 .*"source_port" must be a whole number'):
        load_project(path)


def test_bidirectional_and_gru_states_import_round_trip(tmp_path):
    x = keras.Input((5, 3), name="x")
    y = keras.Input((4, 2), name="y")
    bi_out, *bi_states = layers.Bidirectional(layers.LSTM(4, return_state=True), name="bi")(x)
    gru_out, gru_h = layers.GRU(5, return_state=True, name="gru")(x)
    bi_dec = layers.Bidirectional(layers.LSTM(4), name="bi_dec")(y, initial_state=bi_states)
    gru_dec = layers.GRU(5, name="gru_dec")(y, initial_state=[gru_h])
    cat = layers.Concatenate(name="cat")([bi_dec, gru_dec, bi_out, gru_out])
    model = keras.Model([x, y], layers.Dense(2, name="head")(cat), name="states")
    path = tmp_path / "states.h5"
    model.save(path)
    project = import_model(path, weights_out=tmp_path / "states.weights.h5")
    g = project.graph
    assert sorted((e.port, e.source_port) for e in g.inputs_of("bi_dec")) == [
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 3),
        (4, 4),
    ]
    assert [(e.source, e.source_port) for e in g.inputs_of("gru_dec")] == [("y", 0), ("gru", 1)]
    assert ShapeInference(g).totals().total == model.count_params()
    project.path = tmp_path / "states.json"
    rebuilt = build_model(project)
    load_start_weights(rebuilt, project)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((3, 5, 3)), rng.standard_normal((3, 4, 2))]
    xs = [a.astype("float32") for a in xs]
    np.testing.assert_allclose(np.asarray(rebuilt(xs)), np.asarray(model(xs)), atol=1e-5)


def test_a_state_as_model_output_is_refused_naming_it():
    x = keras.Input((5, 3), name="x")
    _out, h, _c = layers.LSTM(4, return_state=True, name="enc")(x)
    from engine.io.importing.read import ModelImportError

    with pytest.raises(ModelImportError, match="a model output is output 1 of 'enc'"):
        import_model(keras.Model(x, h, name="encoder_model"))


@pytest.mark.parametrize("fmt", ["keras", "python", "onnx"])
def test_seq2seq_exports_and_verifies(tmp_path, fmt):
    from engine.io.export import export

    project = Project(name="s2s", graph=seq2seq_graph(latent=8))
    result = export(project, fmt, tmp_path / "s2s")
    assert result.verified, result.message
