"""What travels between the window and the engine service: request kinds and the
graph as compact JSON text.

The graph is sent whole on every edit, as the JSON of what shape inference needs
(:func:`graph_text`: id, type, params and trainable of each node, and the edges
with their input and output ports;
positions are left out, so moving a layer asks for nothing). For a ResNet-152-sized
graph that is ~60 KB and well under a millisecond to write; the service keeps the
last one and compares.
"""

from __future__ import annotations

import json

from engine.model.graph import Edge, Graph, Node

KINDS = ("shapes", "lr_curve", "devices", "samples", "ping", "try_it")
LATEST_ONLY = frozenset({"shapes", "lr_curve", "devices", "try_it"})
"""Kinds where only the newest request counts: older ones waiting are dropped unanswered."""


def graph_text(graph: Graph) -> str:
    """What shape inference needs of ``graph``, as compact JSON text."""
    nodes = [[n.id, n.type, n.params, n.trainable] for n in graph.nodes.values()]
    edges = [[e.source, e.target, e.port, e.source_port] for e in graph.edges]
    return json.dumps({"n": nodes, "e": edges}, separators=(",", ":"), default=repr)


def graph_from_text(text: str) -> Graph:
    """The graph :func:`graph_text` wrote (positions at the origin)."""
    data = json.loads(text)
    graph = Graph()
    for nid, ntype, params, trainable in data["n"]:
        graph.nodes[nid] = Node(nid, ntype, params, (0.0, 0.0), {}, bool(trainable))
    graph.edges = [Edge(s, t, int(p), int(sp)) for s, t, p, sp in data["e"]]
    return graph
