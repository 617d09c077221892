"""Whether a classifier's output layer gives what its cross-entropy loss expects.

Keras's cross-entropy losses take probabilities unless told ``from_logits``: a final
Dense layer without softmax (or sigmoid, for binary cross-entropy) then trains to a
flat loss of ln(classes) with no gradient, and Keras says nothing. The opposite, a
softmax before a loss that takes logits, squashes the outputs twice and learns slowly;
and a softmax at the end of a regression makes its outputs sum to 1 (one output is
always 1), so it cannot fit its targets at all.
:func:`output_activation_problem` finds both from the graph alone (no TensorFlow): the
window lists it with a one-click fix, and a run warns about it at its start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.catalog.table import CATALOG
from engine.data.dataset import loss_key
from engine.model.project import Project, ProjectError
from engine.train.config import loss_from_logits, loss_name

PROBABILITIES = ("softmax", "sigmoid")


@dataclass
class OutputProblem:
    """What is wrong with the output layer ``node``; ``activation`` is the certain fix
    (the activation to give it), or None when the fix is the user's to choose."""

    node: str
    message: str
    activation: str | None = None


def final_activation(node_type: str, params: dict[str, Any]) -> str | None:
    """The activation a layer ends in ("linear" for none), or None when the layer
    type does not say (a Dropout or Reshape passes on what came before it)."""
    if node_type == "Softmax":
        return "softmax"
    spec = CATALOG.get(node_type)
    param = spec.param("activation") if spec is not None else None
    if param is None:
        return None
    return str(params.get("activation", param.default) or "linear")


def output_activation_problem(
    graph: Any, section: dict[str, Any], task: str | None, num_classes: int | None
) -> OutputProblem | None:
    """The problem of a one-output classifier whose last layer and cross-entropy loss
    disagree about probabilities and logits, or of a regression ending in softmax; or
    None."""
    if task == "regression":
        return _regression_softmax(graph)
    if task != "classification":
        return None
    loss = loss_name(section, task, num_classes)
    key = loss_key(loss)
    if key not in (
        "sparsecategoricalcrossentropy",
        "categoricalcrossentropy",
        "binarycrossentropy",
    ):
        return None
    node = single_output(graph)
    act = final_activation(node.type, node.params) if node is not None else None
    if act is None:
        return None
    want = "sigmoid" if key == "binarycrossentropy" else "softmax"
    if loss_from_logits(section):
        if act in PROBABILITIES:
            return OutputProblem(
                node.id,
                f"the output layer '{node.id}' ends in {act} but the loss {loss} takes "
                "logits (from_logits): the outputs are squashed twice and learn slowly; "
                f"remove the activation, or turn from_logits off",
            )
        return None
    if act in PROBABILITIES:
        return None
    return OutputProblem(
        node.id,
        f"the output layer '{node.id}' has no {want}: the loss {loss} expects "
        f"probabilities, so the model cannot learn from its raw outputs; give "
        f"'{node.id}' the activation {want} (or set the loss's from_logits)",
        want,
    )


def single_output(graph: Any) -> Any:
    """The graph's one output layer that has an input, or None (none, or several)."""
    outputs = [n for n in graph.output_nodes() if graph.inputs_of(n)]
    return graph.nodes[outputs[0]] if len(outputs) == 1 else None


def _regression_softmax(graph: Any) -> OutputProblem | None:
    node = single_output(graph)
    if node is None or final_activation(node.type, node.params) != "softmax":
        return None
    fix = "linear" if node.type != "Softmax" else None  # a Softmax layer is removed, not set
    return OutputProblem(
        node.id,
        f"the output layer '{node.id}' ends in softmax but the data is regression: softmax "
        "makes the outputs sum to 1 (a single output is always 1), so the model cannot fit "
        f"its targets; give '{node.id}' no activation (linear)",
        fix,
    )


def warn_about_output(project: dict[str, Any], ds: Any, emit: Any) -> None:
    """At a run's start: a ``warning`` event for :func:`output_activation_problem`."""
    try:
        graph = Project.from_dict(project).graph
    except ProjectError:
        return  # the build has refused it already, by name
    found = output_activation_problem(graph, project.get("training") or {}, ds.task, ds.num_classes)
    if found is not None:
        emit({"event": "warning", "message": found.message})
