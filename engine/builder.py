"""Project graph -> ``keras.Model`` with the functional API.

Node ids become layer names. Values from the project file are turned into
Keras objects by :func:`layer_kwargs`, driven by the catalog's parameter kinds.
Shape inference (:mod:`engine.shapes`) creates and calls layers with the same
:func:`make_layer` and :func:`call_layer`, so what it reports is what gets built.
"""

from __future__ import annotations

import re
from typing import Any

from engine.graph import Graph, Node


class BuildError(ValueError):
    """The graph cannot be built; the message names the node and what is wrong."""


# Layers that take their several inputs as separate positional arguments
# (query, value[, key]) instead of one list.
POSITIONAL_INPUTS = frozenset({"MultiHeadAttention", "GroupedQueryAttention"})

_REGULARIZERS = {"L1": ("l1",), "L2": ("l2",), "L1L2": ("l1", "l2")}


def _to_tuple(value: Any) -> Any:
    """Lists (also nested) to tuples; everything else unchanged."""
    if isinstance(value, (list, tuple)):
        return tuple(_to_tuple(v) for v in value)
    return value


def _regularizer(value: Any, where: str) -> Any:
    import keras

    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, dict) or value.get("type") not in _REGULARIZERS:
        raise BuildError(f"{where}: a regularizer must be null or "
                         f"{{\"type\": \"L1\"|\"L2\"|\"L1L2\", ...}}; got {value!r}")
    kind = value["type"]
    factors = {k: float(value[k]) for k in _REGULARIZERS[kind] if value.get(k) is not None}
    unknown = set(value) - {"type", *_REGULARIZERS[kind]}
    if unknown:
        raise BuildError(f"{where}: regularizer {kind} has no setting "
                         f"'{sorted(unknown)[0]}'; it takes {', '.join(_REGULARIZERS[kind])}")
    return getattr(keras.regularizers, kind)(**factors)


def layer_kwargs(node_type: str, params: dict[str, Any], *,
                 node_id: str | None = None) -> dict[str, Any]:
    """Convert project-file values to Keras constructor keyword arguments.

    ``ints``/``shape``/``axes`` lists become tuples, regularizer dicts become
    ``keras.regularizers`` objects, and ``layer`` values (``{"type": "LSTM",
    "params": {...}}``) become constructed inner layers. Other values pass as they are.

    Args:
        node_type: A catalog type.
        params: The node's params.
        node_id: Named in error messages when given.

    Raises:
        BuildError: For an unknown type or parameter, or a malformed value.
    """
    from engine.catalog import CATALOG

    where = f"{node_type} '{node_id}'" if node_id else node_type
    spec = CATALOG.get(node_type)
    if spec is None:
        raise BuildError(f"{where}: unknown layer type '{node_type}'")
    if not isinstance(params, dict):
        raise BuildError(f"{where}: params must be a mapping; got {params!r}")
    kwargs: dict[str, Any] = {}
    for name, value in params.items():
        pspec = spec.param(name)
        if pspec is None:
            raise BuildError(f"{where}: unknown parameter '{name}'")
        if pspec.kind in ("ints", "shape", "axes"):
            value = _to_tuple(value)
        elif pspec.kind == "regularizer":
            value = _regularizer(value, f"{where}: {name}")
        elif pspec.kind == "layer" and value is not None:
            value = _inner_layer(value, f"{where}: {name}")
        kwargs[name] = value
    return kwargs


def _inner_layer(value: Any, where: str) -> Any:
    import keras

    from engine.catalog import CATALOG

    if not isinstance(value, dict) or value.get("type") not in CATALOG:
        raise BuildError(f"{where} must be {{\"type\": <layer type>, \"params\": {{...}}}}; "
                         f"got {value!r}")
    inner_type = value["type"]
    kwargs = layer_kwargs(inner_type, value.get("params") or {})
    try:
        return getattr(keras.layers, inner_type)(**kwargs)
    except (ValueError, TypeError) as exc:
        raise BuildError(f"{where}: {inner_type}: {exc}") from None


def make_layer(node: Node) -> Any:
    """Create the Keras layer for ``node`` (named ``node.id``), not yet called.

    For an ``Input`` node this returns the ``keras.Input`` tensor itself.

    Raises:
        BuildError: If the type, a parameter or a value is unusable.
    """
    import keras

    kwargs = layer_kwargs(node.type, node.params, node_id=node.id)
    try:
        if node.type == "Input":
            return keras.Input(name=node.id, **kwargs)
        cls = getattr(keras.layers, node.type, None)
        if cls is None:
            raise BuildError(f"{node.type} '{node.id}': Keras has no layer type '{node.type}'")
        return cls(name=node.id, **kwargs)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, BuildError):
            raise
        from engine.shapes import clean_message

        raise BuildError(f"{node.type} '{node.id}': {clean_message(str(exc))}") from None


def call_layer(node_type: str, layer: Any, inputs: list[Any]) -> Any:
    """Call ``layer`` on its inputs (ordered by port) the way its type expects.

    One input is passed alone; attention layers get them positionally (query,
    value[, key]); merge layers get a list.
    """
    if len(inputs) == 1:
        return layer(inputs[0])
    if node_type in POSITIONAL_INPUTS:
        return layer(*inputs)
    return layer(list(inputs))


def model_name(name: Any) -> str:
    """A safe Keras model name derived from a project name ("LeNet-5 on digits" ->
    "LeNet_5_on_digits")."""
    text = re.sub(r"\W+", "_", str(name or ""), flags=re.ASCII).strip("_")
    if not text:
        return "model"
    return "model_" + text if text[0].isdigit() else text


def build_model(project_or_graph: Any) -> Any:
    """Build the functional ``keras.Model`` of a project (or a bare Graph).

    Model inputs are the Input nodes in node order; outputs are the nodes
    without outgoing edges (one output is returned alone, not in a list).

    Raises:
        BuildError: Naming the node, when the graph has structural errors or
            Keras refuses a layer.
    """
    import keras

    from engine.shapes import explain_error
    from engine.validation import ERROR, graph_of, incoming_index, structural_problems

    graph: Graph = graph_of(project_or_graph)
    errors = [p for p in structural_problems(graph) if p.severity == ERROR]
    if errors:
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise BuildError(errors[0].message + more)
    inc = incoming_index(graph)
    tensors: dict[str, Any] = {}
    for nid in graph.topological_order():
        node = graph.nodes[nid]
        layer = make_layer(node)
        if node.type == "Input":
            tensors[nid] = layer
            continue
        inputs = [tensors[e.source] for e in inc[nid]]
        try:
            tensors[nid] = call_layer(node.type, layer, inputs)
        except Exception as exc:  # Keras raises many kinds; all become one message
            shapes = [_shape_of(t) for t in inputs]
            raise BuildError(explain_error(node, layer, exc, shapes)) from None
    inputs = [tensors[n] for n, node in graph.nodes.items() if node.type == "Input"]
    outputs = [tensors[n] for n in graph.output_nodes()]
    name = getattr(project_or_graph, "name", None) or "model"
    return keras.Model(inputs=inputs[0] if len(inputs) == 1 else inputs,
                       outputs=outputs[0] if len(outputs) == 1 else outputs,
                       name=model_name(name))


def _shape_of(tensor: Any) -> Any:
    if isinstance(tensor, (list, tuple)):
        return [tuple(t.shape) for t in tensor]
    return tuple(tensor.shape)
