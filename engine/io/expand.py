"""Expand: a Backbone node replaced by the layers of its network, through the importer.

The network is built the way the Backbone builds it (no weights, nothing downloaded)
and handed to :func:`engine.io.importing.rebuild.project_from_model`, so a network
the importer cannot represent is refused with the importer's own list of what is
missing (layer types, settings). The caller applies the result as one undoable
step (remove the Backbone, paste the layers with their wires).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.build.backbone import application_kwargs
from engine.build.errors import BuildError, clean_message
from engine.io.importing.read import ModelImportError
from engine.io.importing.rebuild import project_from_model
from engine.model.graph import Edge, Graph, Node
from engine.model.problems import who


class ExpandError(ValueError):
    """The Backbone cannot be expanded (the message names it and says why)."""


@dataclass
class Expansion:
    """What replaces a Backbone node.

    Attributes:
        nodes: The network's layers (its Input left out), ids prefixed with the
            Backbone's id, frozen when the Backbone was.
        edges: Their wires, plus the Backbone's incoming and outgoing wires moved
            to the first and the last of them.
        notes: What the user should know (weights that do not come along).
    """

    nodes: list[Node]
    edges: list[Edge]
    notes: list[str] = field(default_factory=list)


def expand_backbone(graph: Graph, node_id: str, input_shape: Any) -> Expansion:
    """The layers that replace Backbone ``node_id`` fed with ``input_shape`` (no batch).

    Raises:
        ExpandError: Not a Backbone, no known input shape, a network Keras refuses
            at that shape, or one the importer cannot represent (listing what).
    """
    node = graph.nodes.get(node_id)
    if node is None or node.type != "Backbone":
        raise ExpandError(f"'{node_id}' is not a Backbone node")
    if not input_shape or any(d is None for d in input_shape):
        raise ExpandError(
            f"{who(node)}: its input shape is not known; connect it to an image input first"
        )
    import keras

    app = node.params.get("application")
    try:
        kwargs = application_kwargs(node)
        model = getattr(keras.applications, app)(
            include_top=False, weights=None, input_shape=tuple(input_shape), **kwargs
        )
    except BuildError as exc:
        raise ExpandError(str(exc)) from None
    except (ValueError, TypeError) as exc:
        raise ExpandError(f"{who(node)}: {app}: {clean_message(str(exc)).strip()}") from None
    try:
        project, _notes = project_from_model(model, name=app)
    except ModelImportError as exc:
        lines = str(exc).splitlines()
        shown = "; ".join(line.strip(" -") for line in lines[1:4])
        more = f" (and {len(lines) - 4} more)" if len(lines) > 4 else ""
        raise ExpandError(
            f"{who(node)} cannot be expanded: LayerLab cannot represent every layer of {app} "
            f"yet: {lines[0]}: {shown}{more}. It stays one Backbone node"
        ) from None
    except Exception as exc:  # the importer failing on a network is said, never a crash
        raise ExpandError(
            f"{who(node)} cannot be expanded: the importer failed on {app} "
            f"({type(exc).__name__}: {clean_message(str(exc)).strip()[:200]}). "
            "It stays one Backbone node"
        ) from None
    return _splice(graph, node, project.graph)


def _splice(graph: Graph, node: Node, sub: Graph) -> Expansion:
    inputs = [n for n, s in sub.nodes.items() if s.type == "Input"]
    outputs = sub.output_nodes()
    used = set(graph.nodes) - {node.id}
    ids: dict[str, str] = {}
    for sub_id in sub.nodes:
        if sub_id in inputs:
            continue
        base = f"{node.id}_{sub_id}"
        new, i = base, 2
        while new in used:
            new, i = f"{base}_{i}", i + 1
        ids[sub_id] = new
        used.add(new)
    ys = [s.position[1] for n, s in sub.nodes.items() if n in ids] or [0.0]
    top = min(ys)
    nodes = []
    for sub_id, new in ids.items():
        s = sub.nodes[sub_id]
        x, y = s.position
        nodes.append(
            Node(
                new,
                s.type,
                dict(s.params),
                (node.position[0] + x, node.position[1] + y - top),
                trainable=s.trainable and node.trainable,
            )
        )
    edges = []
    feeding = graph.inputs_of(node.id)
    for e in sub.edges:
        if e.source in inputs:  # the network's input: what fed the Backbone
            edges += [Edge(f.source, ids[e.target], e.port) for f in feeding]
        else:
            edges.append(Edge(ids[e.source], ids[e.target], e.port))
    last = ids[outputs[0]]
    edges += [Edge(last, e.target, e.port) for e in graph.outputs_of(node.id)]
    notes = []
    weights = node.params.get("weights")
    if weights not in (None, ""):
        notes.append(
            f"the {len(nodes)} layers start from fresh weights: the Backbone's {weights!r} "
            "weights do not come along"
        )
    return Expansion(nodes, edges, notes)
