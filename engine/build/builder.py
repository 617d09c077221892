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
from engine.model.graph import Edge, Graph, Node, output_ports, state_names
from engine.model.problems import ERROR, graph_of, incoming_index, structural_problems, who


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
        inputs = [port_output(graph, e, tensors[e.source]) for e in inc[nid]]
        check_states(node, inc[nid])
        try:
            tensors[nid] = call_node(node, layer, inputs)
        except BuildError:
            raise  # already worded, naming the node (a Backbone's weights)
        except Exception as exc:  # Keras raises many kinds; all become one message
            shapes = [_shape_of(t) for t in inputs]
            raise BuildError(explain_error(node, layer, exc, shapes)) from None
    inputs = [tensors[n] for n, node in graph.nodes.items() if node.type == "Input"]
    outputs = [main_output(graph.nodes[n], tensors[n]) for n in graph.output_nodes()]
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


# ------------------------------------------------------------ several outputs, states
def port_output(graph: Graph, edge: Edge, value: Any) -> Any:
    """What ``edge`` carries: output ``edge.source_port`` of its source's ``value`` (the
    layer's result: a list for a recurrent layer with ``return_state``).

    Raises:
        BuildError: See :func:`port_problem`.
    """
    problem = port_problem(graph, edge)
    if problem:
        raise BuildError(problem)
    if len(output_ports(graph.nodes[edge.source])) > 1:
        return value[edge.source_port]
    return value


def port_problem(graph: Graph, edge: Edge) -> str | None:
    """Why ``edge`` reads an output its source does not have (e.g. ``return_state`` was
    turned off), naming the target, its input and the source; None when it is fine."""
    source = graph.nodes[edge.source]
    ports = output_ports(source)
    if edge.source_port < len(ports):
        return None
    target = graph.nodes[edge.target]
    hint = (
        f"; turn on return_state in '{source.id}'"
        if state_names(source) and edge.source_port <= len(state_names(source))
        else ""
    )
    return (
        f"{who(target)}: input {edge.port} reads output {edge.source_port} of "
        f"'{source.id}', which has only {_outputs(ports)}{hint}"
    )


def main_output(node: Node, value: Any) -> Any:
    """A node's output as a model output: the first one (a recurrent layer's sequence
    or last output, without its states)."""
    return value[0] if len(output_ports(node)) > 1 else value


def check_states(node: Node, edges: list[Edge]) -> None:
    """A recurrent layer's inputs past the first are its whole initial state, or none.

    Raises:
        BuildError: Naming the node, the states it needs and the ports they go to.
    """
    states = state_names(node)
    given = len(edges) - 1
    if not states or given <= 0 or given == len(states):
        return
    names = ", ".join(states)
    ports = "port 1" if len(states) == 1 else f"ports 1-{len(states)}"
    raise BuildError(
        f"{who(node)}: its initial state is {len(states)} input"
        f"{'s' if len(states) > 1 else ''} ({names}) on {ports}, all or none; it has {given}"
    )


def call_node(node: Node, layer: Any, inputs: list[Any]) -> Any:
    """Call a node's layer on its inputs: a recurrent layer's inputs past the first are
    its initial state (``layer(x, initial_state=[h, c])``); others as
    :func:`engine.build.layers.call_layer` calls them."""
    if state_names(node) and len(inputs) > 1:
        return layer(inputs[0], initial_state=list(inputs[1:]))
    return call_layer(node.type, layer, inputs)


def _outputs(ports: tuple[str, ...]) -> str:
    if len(ports) == 1:
        return "one output"
    return f"{len(ports)} outputs ({', '.join(ports)})"
