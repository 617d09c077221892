"""Problems between the data and the model, for the Problems list and the status bar,
each with its one-click fix where the fix is certain (:func:`data_problems`): the data
section's own fix for a file that did not load, the Input shape, the output units, the
loss for the data's task, and the output layer's activation. Pure Python: the data
panel's findings and the graph, no TensorFlow."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.data.dataset import loss_key
from engine.model.commands import SetParams, SetSection
from engine.train.config import chosen_metrics, loss_name
from engine.train.outputs import output_activation_problem, single_output


@dataclass
class DataProblem:
    """A problem between the data and the model, for the Problems list and status bar.

    Attributes:
        node: The layer it concerns (the Input or output layer), or None.
        severity: ``"error"`` (a run would not start) or ``"warning"``.
        message: One sentence.
        fix_text: What the one-click fix does ("" when no fix is certain).
        fix: Makes the undoable command of the fix (None when there is none).
    """

    node: str | None
    severity: str
    message: str
    fix_text: str = ""
    fix: Callable[[], Any] | None = None


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def data_problems(
    project: Any,
    dataset: Any,
    problems: list[str],
    load_error: str = "",
    load_fix: tuple[str, Callable[[], Any]] | None = None,
) -> list[DataProblem]:
    """The data panel's findings as :class:`DataProblem` objects, with a fix where it is
    certain: ``load_fix`` (its text, and what makes its command) for a file that did not
    load (one-hot encode a text column, drop rows with missing values); the one Input
    layer takes the data's sample shape; the output Dense layer gets one unit per class
    (or 1 for binary cross-entropy), or one per regression target; a loss for the other
    task gives way to the task's usual one (:data:`TASK_LOSSES`)."""
    if project is None:
        return []
    if load_error:
        problem = DataProblem(None, "error", f"The data cannot be loaded: {load_error}")
        if load_fix is not None:
            problem.fix_text, problem.fix = load_fix
        return [problem]
    graph = project.graph
    inputs = [n for n in graph.nodes.values() if n.type == "Input"]
    output = single_output(graph)
    out: list[DataProblem] = []
    for text in problems:
        sentence = "The data does not fit the model: " + text
        problem = DataProblem(None, "error", sentence)
        if text.startswith("the model's input") and len(inputs) == 1 and dataset is not None:
            shape = tuple(int(d) for d in dataset.input_shape)
            node = inputs[0].id
            problem.node = node
            if None not in shape and tuple(inputs[0].params.get("shape") or ()) != shape:
                problem.fix_text = f"Set the Input shape to the data's {_shape_text(shape)}"
                problem.fix = lambda node=node, shape=shape, t=problem.fix_text: _set_param(
                    project, node, "shape", list(shape), t
                )
        elif text.startswith("loss ") and not _units_problem(text) and dataset is not None:
            training = _task_loss(project.training or {}, dataset)
            metric = (
                "" if "metrics" not in training else f" and the metric {training['metrics'][0]}"
            )
            problem.fix_text = f"Use the loss {training['loss']}{metric}"
            problem.fix = lambda training=training, t=problem.fix_text: SetSection(
                "training", {**(project.training or {}), **training}, t
            )
        elif "output" in text and output is not None and dataset is not None:
            node = output
            problem.node = node.id
            units = _class_units(project, dataset, text) or _target_units(dataset, text)
            if node.type == "Dense" and units is not None and node.params.get("units") != units:
                k = dataset.num_classes
                problem.fix_text = (
                    f"Set the output units to the {k} classes"
                    if units == k
                    else f"Set the output units to {units}"
                )
                problem.fix = lambda nid=node.id, units=units, t=problem.fix_text: _set_param(
                    project, nid, "units", units, t
                )
        out.append(problem)
    if dataset is not None:
        found = output_activation_problem(
            graph, project.training or {}, dataset.task, dataset.num_classes
        )
        if found is not None:
            problem = DataProblem(
                found.node, "warning", found.message[0].upper() + found.message[1:]
            )
            if found.activation is not None:
                problem.fix_text = f"Give '{found.node}' the activation {found.activation}"
                problem.fix = lambda f=found, t=problem.fix_text: _set_param(
                    project, f.node, "activation", f.activation, t
                )
            out.append(problem)
    return out


def _set_param(project: Any, node_id: str, name: str, value: Any, text: str) -> SetParams:
    """The command setting one param of ``node_id``, keeping its others (its activation,
    its dtype): ``SetParams`` replaces the whole dict, read here when the fix is
    clicked, not when the problem was found."""
    return SetParams(node_id, {**project.graph.nodes[node_id].params, name: value}, text)


TASK_LOSSES = {"classification": "sparse_categorical_crossentropy", "regression": "mse"}
"""The loss a loss-for-the-other-task problem is fixed with: what the engine picks for
the task when the training section names none."""


def _task_loss(section: dict[str, Any], dataset: Any) -> dict[str, Any]:
    """The training keys that suit the data's task: its usual loss, and a metric for it
    when none of the section's metrics would apply (accuracy means nothing to a
    regression: an empty Metrics plot)."""
    want = TASK_LOSSES[dataset.task]
    kept, _ = chosen_metrics({**section, "loss": want}, want, dataset.num_classes, dataset.task)
    if kept:
        return {"loss": want}
    return {"loss": want, "metrics": ["mae" if dataset.task == "regression" else "accuracy"]}


def _units_problem(text: str) -> bool:
    """A loss problem whose fix is the output units, not the loss ("loss X needs one
    output unit per class")."""
    return "output unit" in text


def _target_units(dataset: Any, text: str) -> int | None:
    """How many output units a regression needs: one per target, when both the
    model's output and the targets are flat (a Dense layer's units then decide)."""
    if getattr(dataset, "task", None) != "regression":
        return None
    target = tuple(dataset.target_shape)
    if len(target) != 1 or not re.search(r"output has shape \(\d+,\)", text):
        return None
    return int(target[0])


def _class_units(project: Any, dataset: Any, text: str) -> int | None:
    """How many output units a classifier needs for the data and loss, when certain."""
    if getattr(dataset, "task", None) != "classification":
        return None
    if "output has" not in text or "output has shape" in text:  # units alone would not do
        return None
    k = int(dataset.num_classes)
    key = loss_key(loss_name(project.training or {}, dataset.task, k))
    if key in ("sparsecategoricalcrossentropy", "categoricalcrossentropy"):
        return k
    if key in ("binarycrossentropy", "binaryfocalcrossentropy") and k == 2:
        return 1
    return None
