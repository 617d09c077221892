"""The graph document: edits, refusals with reasons, and events for views."""

import pytest

from engine.model.graph import Edge, Graph, GraphError, Node


def _chain(*specs):
    g = Graph()
    for nid, ntype in specs:
        g.add_node(Node(nid, ntype))
    ids = [s[0] for s in specs]
    for a, b in zip(ids, ids[1:]):
        g.connect(Edge(a, b, 0))
    return g


def test_graph_emits_an_event_for_every_change():
    g = Graph()
    seen = []
    for name in (
        "node_added",
        "node_removed",
        "edge_added",
        "edge_removed",
        "params_changed",
        "node_moved",
        "node_renamed",
    ):
        getattr(g.events, name).connect(lambda *a, name=name: seen.append(name))
    g.add_node(Node("inp", "Input"))
    g.add_node(Node("d", "Dense"))
    g.connect(Edge("inp", "d"))
    g.set_params("d", {"units": 3})
    g.move("d", (10, 20))
    g.rename("d", "dense")
    g.remove_node("dense")
    assert seen == [
        "node_added",
        "node_added",
        "edge_added",
        "params_changed",
        "node_moved",
        "node_renamed",
        "edge_removed",
        "node_removed",
    ]


@pytest.mark.parametrize(
    "src, dst, port, reason",
    [
        ("c", "a", None, "would make a cycle"),
        ("b", "b", None, "cannot feed itself"),
        ("a", "b", None, "already connected"),
        ("a", "inp2", None, "takes no inputs"),
        ("ghost", "b", None, "no layer named 'ghost'"),
        ("inp2", "b", None, "takes at most 1 input"),
    ],
)
def test_graph_refuses_bad_connections_with_reason(src, dst, port, reason):
    g = _chain(("a", "Input"), ("b", "Dense"), ("c", "Dense"))
    g.add_node(Node("inp2", "Input"))
    assert reason in g.check_connect(src, dst, port)
    with pytest.raises(GraphError, match=reason):
        g.connect(Edge(src, dst, port or 0))


def test_graph_refuses_a_taken_port():
    g = _chain(("a", "Input"), ("add", "Add"))
    g.add_node(Node("b", "Input"))
    assert "input 0 of 'add' is already fed by 'a'" in g.check_connect("b", "add", 0)
    assert g.check_connect("b", "add", 1) is None
    assert g.next_free_port("add") == 1


def test_graph_topological_order_and_outputs():
    g = _chain(("inp", "Input"), ("a", "Dense"), ("b", "Dense"))
    g.add_node(Node("c", "Dense"))
    g.connect(Edge("inp", "c"))
    assert g.topological_order().index("inp") == 0
    assert g.output_nodes() == ["b", "c"]
    assert g.downstream(["a"]) == {"a", "b"}


def test_graph_reports_cycle_in_loaded_documents():
    g = _chain(("a", "Dense"), ("b", "Dense"))
    g.edges.append(Edge("b", "a", 0))  # a file can hold a cycle; connect() never makes one
    assert set(g.find_cycle()) == {"a", "b"}
    with pytest.raises(GraphError, match="cycle"):
        g.topological_order()


def test_graph_rename_rewires_edges_and_refuses_bad_names():
    g = _chain(("inp", "Input"), ("a", "Dense"))
    g.rename("a", "hidden")
    assert g.edges == [Edge("inp", "hidden", 0)]
    with pytest.raises(GraphError, match="not a valid layer name"):
        g.rename("hidden", "2bad")
    with pytest.raises(GraphError, match="already exists"):
        g.rename("hidden", "inp")
    with pytest.raises(GraphError, match="not a valid layer name"):
        g.add_node(Node("class", "Dense"))


def test_graph_unique_id():
    g = _chain(("dense", "Input"))
    assert g.unique_id("Dense") == "dense_1"
    assert g.unique_id("Conv2D") == "conv2d"


def test_graph_allows_self_attention_on_separate_ports():
    g = _chain(("inp", "Input"), ("mha", "MultiHeadAttention"))
    assert g.check_connect("inp", "mha", 1) is None
    g.connect(Edge("inp", "mha", 1))
    assert [e.port for e in g.inputs_of("mha")] == [0, 1]
