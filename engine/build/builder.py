"""Project graph -> ``keras.Model`` with the functional API.

Node ids become layer names. Values from the project file are turned into
Keras objects by :func:`engine.build.layers.layer_kwargs`, driven by the catalog's parameter kinds.
Shape inference (:mod:`engine.analysis.shapes`) creates and calls layers with the same
:func:`make_layer` and :func:`call_layer`, so what it reports is what gets built.
"""

from __future__ import annotations

import re
from typing import Any

from engine.build.errors import BuildError, explain_error
from engine.build.layers import call_layer, make_layer
from engine.model.graph import Graph
from engine.model.problems import ERROR, graph_of, incoming_index, structural_problems


def model_name(name: Any) -> str:
    """A safe Keras model name derived from a project name ("LeNet-5 on digits" ->
    "LeNet_5_on_digits")."""
    text = re.sub(r"\W+", "_", str(name or ""), flags=re.ASCII).strip("_")
    if not text:
        return "model"
    return "model_" + text if text[0].isdigit() else text


def build_model(project_or_graph: Any, *, base_dir: Any = None, weights: bool = True) -> Any:
    """Build the functional ``keras.Model`` of a project (or a bare Graph).

    Model inputs are the Input nodes in node order; outputs are the nodes
    without outgoing edges (one output is returned alone, not in a list).
    Backbone nodes load their pretrained weights when ``weights`` is true
    (ImageNet through Keras's download and cache, or a file relative to
    ``base_dir``, by default the project's folder).

    Raises:
        BuildError: Naming the node, when the graph has structural errors or
            Keras refuses a layer.
    """
    import keras

    graph: Graph = graph_of(project_or_graph)
    errors = [p for p in structural_problems(graph) if p.severity == ERROR]
    if errors:
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise BuildError(errors[0].message + more)
    inc = incoming_index(graph)
    if base_dir is None:
        base_dir = getattr(project_or_graph, "base_dir", None)
    tensors: dict[str, Any] = {}
    for nid in graph.topological_order():
        node = graph.nodes[nid]
        layer = make_layer(node, load_weights=weights, base_dir=base_dir)
        if node.type == "Input":
            tensors[nid] = layer
            continue
        inputs = [tensors[e.source] for e in inc[nid]]
        try:
            tensors[nid] = call_layer(node.type, layer, inputs)
        except BuildError:
            raise  # already worded, naming the node (a Backbone's weights)
        except Exception as exc:  # Keras raises many kinds; all become one message
            shapes = [_shape_of(t) for t in inputs]
            raise BuildError(explain_error(node, layer, exc, shapes)) from None
    inputs = [tensors[n] for n, node in graph.nodes.items() if node.type == "Input"]
    outputs = [tensors[n] for n in graph.output_nodes()]
    name = getattr(project_or_graph, "name", None) or "model"
    return keras.Model(
        inputs=inputs[0] if len(inputs) == 1 else inputs,
        outputs=outputs[0] if len(outputs) == 1 else outputs,
        name=model_name(name),
    )


def _shape_of(tensor: Any) -> Any:
    if isinstance(tensor, (list, tuple)):
        return [tuple(t.shape) for t in tensor]
    return tuple(tensor.shape)
