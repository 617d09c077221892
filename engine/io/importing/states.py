"""RNN states in imported models: ``return_state`` outputs and ``initial_state`` inputs.

A recurrent layer called with ``initial_state=[h, c]`` becomes a node whose inputs 1..
are those states; a layer with ``return_state=True`` outputs them on ports 1.. (see
:func:`engine.model.graph.output_ports`), and an edge reading one records it as its
``source_port``.
"""

from __future__ import annotations

from typing import Any

from engine.model.graph import STATES


def is_recurrent(op: Any) -> bool:
    """Whether the operation takes an initial state and can return its states."""
    cls = type(op).__name__
    if cls == "Bidirectional":
        return type(getattr(op, "forward_layer", None)).__name__ in STATES
    return cls in STATES


def state_inputs(op: Any, kwargs: dict[str, Any]) -> list[Any]:
    """The tensors a recurrent layer's call passes as ``initial_state`` (in order), or []."""
    if not is_recurrent(op) or kwargs.get("initial_state") is None:
        return []
    from keras import tree

    return list(tree.flatten(kwargs["initial_state"]))


def output_port(op: Any, tensor_index: int) -> int | None:
    """The output port reading ``op``'s output ``tensor_index``: the index itself for a
    recurrent layer with ``return_state`` (0 the output, then the states), 0 for a
    layer's only output; None when LayerLab has no such port."""
    if tensor_index == 0:
        return 0
    if is_recurrent(op) and getattr(op, "return_state", False):
        return tensor_index
    return None
