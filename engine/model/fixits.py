"""One-click fixes for layers whose input does not fit, offered only where the fix is certain.

:func:`fixits` reads the problems a validation produced (each names its node) and the
output shapes it computed, and returns :class:`FixIt` objects: what the fix will do,
in words (``fix_text``), and ``fix()``, which builds the one undoable command that
does it on the graph as it is when the fix is applied. Pure graph logic: no
TensorFlow; the shapes come from the caller (``engine.analysis.shapes.LayerInfo``
objects or plain shape tuples, batch axis first).

The fixes:

- a ``Dense`` fed 4-D data (a warning: it would act on the last axis only): insert
  ``Flatten``, or ``GlobalAveragePooling2D``, before it;
- an elementwise merge (``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``,
  ``Minimum``) whose inputs differ: insert a 1x1 convolution on the branch that
  differs from the widest one (``filters`` = that branch's channels, ``strides`` when
  its sizes are an exact multiple), or set ``padding`` "same" on the stride-1
  convolution(s) that shrank a branch;
- a recurrent layer fed 2-D data: insert a ``Reshape`` to ``(steps, 1)`` or ``(1, features)``.

An inserted layer takes its target's place and the target and everything below it
move down one row, all in one undo step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.model.commands import AddNode, Command, Disconnect, Macro, MoveNodes, SetParams
from engine.model.graph import Edge, Graph, Node
from engine.model.layout import LEVEL_SPACING

MERGE_SAME = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
RECURRENT_2D = ("SimpleRNN", "LSTM", "GRU", "Bidirectional")
CONVOLUTIONS = ("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D")
_ONE_BY_ONE = {3: "Conv1D", 4: "Conv2D", 5: "Conv3D"}


@dataclass(frozen=True)
class FixIt:
    """One certain fix for the problem on ``node``.

    Attributes:
        node: The node whose problem it fixes.
        fix_text: What it will do, said before it is done ("Insert Flatten before 'fc'").
        fix: Builds the command (one undo step) against the graph as it is then.
    """

    node: str
    fix_text: str
    fix: Callable[[], Command]


def fixits(graph: Graph, problems: Iterable[Any], shapes: Mapping[str, Any]) -> list[FixIt]:
    """The certain fixes for ``problems`` (objects or dicts with ``node``), in problem order.

    Args:
        graph: The graph the problems were found in (the fixes edit it later).
        problems: The validation's problems.
        shapes: Node id -> output shape (a tuple with the batch axis first) or an object
            with ``output_shape``; missing or None: unknown.
    """
    out: list[FixIt] = []
    seen: set[str] = set()
    for problem in problems:
        node_id = problem.get("node") if isinstance(problem, dict) else problem.node
        if not node_id or node_id in seen or node_id not in graph.nodes:
            continue
        seen.add(node_id)
        node = graph.nodes[node_id]
        if node.type == "Dense":
            out += _dense(graph, node, shapes)
        elif node.type in MERGE_SAME:
            out += _merge(graph, node, shapes)
        elif node.type in RECURRENT_2D:
            out += _recurrent(graph, node, shapes)
    return out


# ------------------------------------------------------------------ the fixes
def _dense(graph: Graph, node: Node, shapes: Mapping[str, Any]) -> list[FixIt]:
    edge = _single_input(graph, node.id)
    shape = _shape(shapes, edge.source) if edge else None
    if shape is None or len(shape) != 4:
        return []
    fixes = [_insert(graph, edge, "Flatten", {}, f"Insert Flatten before '{node.id}'")]
    fixes.append(
        _insert(
            graph,
            edge,
            "GlobalAveragePooling2D",
            {},
            f"Insert GlobalAveragePooling2D before '{node.id}' (average each channel)",
        )
    )
    return fixes


def _recurrent(graph: Graph, node: Node, shapes: Mapping[str, Any]) -> list[FixIt]:
    edge = _single_input(graph, node.id)
    shape = _shape(shapes, edge.source) if edge else None
    if shape is None or len(shape) != 2 or shape[1] is None:
        return []
    n = shape[1]
    return [
        _insert(
            graph,
            edge,
            "Reshape",
            {"target_shape": [n, 1]},
            f"Insert Reshape to ({n}, 1) before '{node.id}' ({n} time steps of 1 value)",
        ),
        _insert(
            graph,
            edge,
            "Reshape",
            {"target_shape": [1, n]},
            f"Insert Reshape to (1, {n}) before '{node.id}' (1 time step of {n} values)",
        ),
    ]


def _merge(graph: Graph, node: Node, shapes: Mapping[str, Any]) -> list[FixIt]:
    edges = sorted(graph.inputs_of(node.id), key=lambda e: e.port)
    inputs = [(e, _shape(shapes, e.source)) for e in edges]
    if len(inputs) < 2 or any(s is None or None in s[1:] for _e, s in inputs):
        return []
    ranks = {len(s) for _e, s in inputs}
    if len(ranks) != 1 or len({s for _e, s in inputs}) == 1:
        return []
    rank = ranks.pop()
    if rank not in _ONE_BY_ONE:
        return []
    # the reference: the widest input (most channels, then the largest sizes)
    _ref_edge, target = max(inputs, key=lambda i: (i[1][-1], i[1][1:-1]))
    fixes: list[FixIt] = []
    for edge, shape in inputs:
        if shape == target:
            continue
        padding = _padding_fix(graph, node, edge, shape, target, shapes)
        if padding is not None:
            fixes.append(padding)
        conv = _projection_fix(graph, node, edge, shape, target)
        if conv is not None:
            fixes.append(conv)
    return fixes


def _projection_fix(
    graph: Graph, merge: Node, edge: Edge, shape: tuple, target: tuple
) -> FixIt | None:
    """A 1x1 convolution on ``edge``'s branch that turns ``shape`` into ``target``."""
    strides = []
    for have, want in zip(shape[1:-1], target[1:-1]):
        stride = -(-have // want)  # ceil
        if (have - 1) // stride + 1 != want:  # what a 1x1 'valid' window gives
            return None
        strides.append(stride)
    conv_type = _ONE_BY_ONE[len(shape)]
    params: dict[str, Any] = {"filters": target[-1], "kernel_size": [1] * len(strides)}
    said = f"{target[-1]} filters"
    if any(s != 1 for s in strides):
        params["strides"] = strides
        said += ", strides " + "x".join(str(s) for s in strides)
    kernel = "x".join("1" for _ in strides)
    return _insert(
        graph,
        edge,
        conv_type,
        params,
        f"Insert a {kernel} {conv_type} ({said}) between '{edge.source}' and '{merge.id}'",
    )


def _padding_fix(
    graph: Graph, merge: Node, edge: Edge, shape: tuple, target: tuple, shapes: Mapping[str, Any]
) -> FixIt | None:
    """Padding "same" on the stride-1 convolutions that shrank ``edge``'s branch, when
    that alone gives ``target`` (same channels; every other layer up the branch keeps
    the sizes)."""
    if shape[-1] != target[-1] or any(h > w for h, w in zip(shape[1:-1], target[1:-1])):
        return None
    want = target[1:-1]
    convs: list[str] = []
    current = edge.source
    for _ in range(len(graph.nodes)):
        here = _shape(shapes, current)
        if here is None:
            return None
        if here[1:-1] == want:
            break
        feed = _single_input(graph, current)
        above = _shape(shapes, feed.source) if feed else None
        if above is None or len(above) != len(here):
            return None
        if above[1:-1] == here[1:-1]:
            pass  # keeps the sizes (normalisation, activation, ...)
        elif _shrinking_conv(graph.nodes[current]):
            convs.append(current)
        else:
            return None  # pooling, strides, cropping: not certain
        current = feed.source
    else:
        return None
    if not convs:
        return None
    names = " and ".join(f"'{c}'" for c in reversed(convs))

    def build() -> Command:
        steps: list[Command] = []
        for nid in reversed(convs):
            params = dict(graph.nodes[nid].params)
            params["padding"] = "same"
            steps.append(SetParams(nid, params, f"Set padding of '{nid}' to 'same'"))
        return Macro(f"Set padding 'same' on {names}", steps)

    return FixIt(
        merge.id,
        f"Set padding 'same' on {names} (keeps the sizes for '{merge.id}')",
        build,
    )


def _shrinking_conv(node: Node) -> bool:
    if node.type not in CONVOLUTIONS:
        return False
    if node.params.get("padding", "valid") != "valid":
        return False
    strides = node.params.get("strides", 1)
    strides = strides if isinstance(strides, (list, tuple)) else [strides]
    return all(s == 1 for s in strides)


# -------------------------------------------------------------------- helpers
def _insert(graph: Graph, edge: Edge, layer_type: str, params: dict, text: str) -> FixIt:
    """A fix that puts a new ``layer_type`` layer on ``edge``."""

    def build() -> Command:
        target = graph.nodes[edge.target]
        new_id = graph.unique_id(_snake(layer_type))
        node = Node(new_id, layer_type, dict(params), tuple(target.position))
        moves = {}
        for nid in graph.downstream([edge.target]):
            x, y = graph.nodes[nid].position
            moves[nid] = ((x, y), (x, y + LEVEL_SPACING))
        return Macro(
            text,
            [
                MoveNodes(moves),
                Disconnect(edge),
                AddNode(
                    node,
                    [
                        Edge(edge.source, new_id, 0, edge.source_port),
                        Edge(new_id, edge.target, edge.port),
                    ],
                ),
            ],
        )

    return FixIt(edge.target, text, build)


def _single_input(graph: Graph, node_id: str) -> Edge | None:
    edges = graph.inputs_of(node_id)
    return edges[0] if len(edges) == 1 else None


def _shape(shapes: Mapping[str, Any], node_id: str) -> tuple | None:
    value = shapes.get(node_id)
    if value is not None and not isinstance(value, (list, tuple)):
        value = getattr(value, "output_shape", None)
    if not isinstance(value, (list, tuple)) or not value:
        return None
    if isinstance(value[0], (list, tuple)):  # several outputs: no certain fix
        return None
    return tuple(value)


def _snake(name: str) -> str:
    out = ""
    for i, c in enumerate(name):
        if c.isupper() and i and name[i - 1].islower():
            out += "_"
        out += c.lower()
    return out
