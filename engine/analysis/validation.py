"""The validation report: structure first, then exact shapes and counts.

:func:`validate` adds the shapes and parameter counts of
:class:`engine.analysis.shapes.ShapeInference` to the structural problems of
:mod:`engine.model.problems` and returns the report that
``layerlab validate --json`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.analysis.shapes import LayerInfo, ShapeInference
from engine.build.backbone import imagenet_problem
from engine.model.graph import Graph
from engine.model.problems import (
    ERROR,
    Problem,
    graph_of,
    incoming_index,
    structural_problems,
    weights_problems,
)


# ------------------------------------------------------------------- report
@dataclass
class Report:
    """The result of :func:`validate`.

    Attributes:
        valid: True when there is no error (warnings allowed).
        problems: Structural problems first, then shape problems.
        layers: Per-layer shapes and parameter counts, in topological order.
        total_params: Parameters of the whole model (as ``model.summary()``).
        trainable_params: Trainable part.
        non_trainable_params: Non-trainable part (e.g. BatchNormalization statistics,
            and every weight of a frozen layer).
    """

    valid: bool
    problems: list[Problem] = field(default_factory=list)
    layers: list[LayerInfo] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    def to_dict(self) -> dict[str, Any]:
        """The ``layerlab validate --json`` object."""
        return {
            "valid": self.valid,
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "layers": [
                {
                    "id": i.id,
                    "type": i.type,
                    "output_shape": _json_shape(i.output_shape),
                    "params": i.params,
                    "trainable_params": i.trainable,
                    "non_trainable_params": i.non_trainable,
                    "trainable": not i.frozen,
                }
                for i in self.layers
            ],
            "problems": [p.to_dict() for p in self.problems],
        }


def _json_shape(shape: Any) -> Any:
    if shape is None:
        return None
    if isinstance(shape, list):
        return [list(s) for s in shape]
    return list(shape)


def validate(project: Any) -> Report:
    """Check a project (or a bare Graph): structure, then exact shapes with Keras.

    A Backbone's weights file is checked first (relative to the project's folder;
    :func:`engine.model.problems.weights_problems`), and with downloads off, an
    ImageNet weights file that is not in Keras's cache (:func:`download_problems`).

    Args:
        project: An :class:`engine.model.project.Project`, anything with a ``graph``
            attribute, or a :class:`engine.model.graph.Graph`.

    Returns:
        The report; ``report.valid`` is False when any problem is an error.
    """
    graph = graph_of(project)
    problems = structural_problems(graph)
    base_dir = getattr(project, "base_dir", None)
    problems.extend(weights_problems(graph, base_dir))  # before any TensorFlow work
    inference = ShapeInference(graph)
    problems.extend(inference.problems)
    problems.extend(download_problems(graph, inference))
    try:
        order = graph.topological_order()
    except ValueError:
        order = list(graph.nodes)
    layers = [inference.info[n] for n in order if n in inference.info]
    total, trainable, non_trainable = inference.totals()
    return Report(
        valid=not any(p.severity == ERROR for p in problems),
        problems=problems,
        layers=layers,
        total_params=total,
        trainable_params=trainable,
        non_trainable_params=non_trainable,
    )


def download_problems(graph: Graph, inference: ShapeInference) -> list[Problem]:
    """With ``LAYERLAB_OFFLINE`` set, one error per Backbone whose ImageNet weights
    are not in Keras's cache, naming the file and the folder to put it in
    (:func:`engine.build.backbone.imagenet_problem`)."""
    out: list[Problem] = []
    incoming = None
    for nid, node in graph.nodes.items():
        params = node.params if isinstance(node.params, dict) else {}
        if node.type != "Backbone" or params.get("weights") != "imagenet":
            continue
        incoming = incoming if incoming is not None else incoming_index(graph)
        edges = incoming.get(nid) or []
        source = inference.info.get(edges[0].source) if edges else None
        shape = source.output_shape if source is not None else None
        if not isinstance(shape, tuple):
            continue  # no input shape: shape inference says why
        message = imagenet_problem(node, tuple(shape[1:]))
        if message:
            out.append(Problem(nid, ERROR, message))
    return out
