"""Keras operations recorded in functional models as ``Operation`` nodes.

Keras 3 records what Keras code writes inline (``x + y``, ``x * 0.5``,
``keras.ops.expand_dims(x, 1)``, ``x[:, 0]``) as operation objects among a functional
model's ``operations`` (not its ``layers``); a ``.keras`` config holds them as entries
whose module is ``keras.src.ops.*``. :func:`operation_node` maps one of them to an
``Operation`` node (the allow-list of :mod:`engine.build.operations`) from the
operation's config and the constant arguments of its call; anything else is named in
the refusal. Nothing is evaluated: slices become ``index`` data.
"""

from __future__ import annotations

import math
from typing import Any

from engine.build.operations import OP_CLASSES, from_key, operation_of_class
from engine.catalog.checks import check_value
from engine.catalog.operations import ARITHMETIC, OP_PARAMS, op_problems
from engine.catalog.table import CATALOG
from engine.io.importing.mapping import snake_case
from engine.model.graph import Node

#: Where Keras keeps its operation classes (the ``module`` of a config entry).
OPERATION_MODULES = ("keras.src.ops", "keras.ops")


def is_operation_entry(entry: dict[str, Any]) -> bool:
    """Whether a config entry of a functional model is a recorded Keras operation."""
    return str(entry.get("module") or "").startswith(OPERATION_MODULES)


def is_operation(obj: Any) -> bool:
    """Whether a functional model's operation is a Keras operation rather than a layer."""
    import keras

    return not isinstance(obj, keras.layers.Layer)


def unsupported_operation(name: str, cls: str) -> str | None:
    """The refusal line for a recorded operation outside the allow-list, or None."""
    if operation_of_class(cls) is not None:
        return None
    offered = ", ".join(OP_CLASSES)
    return (
        f"'{name}' ({cls}): the Keras operation keras.ops.{snake_case(cls)} is not one "
        f"the Operation node offers ({offered}); rewrite it with those or catalog layers"
    )


def operation_node(op: Any, nid: str) -> tuple[Node, list[str]]:
    """The ``Operation`` node for one recorded operation, and what it cannot hold.

    Returns:
        ``(node, problems)``; each problem names the operation.
    """
    cls = type(op).__name__
    where = f"'{op.name}' ({cls})"
    name = operation_of_class(cls)
    if name is None:
        return Node(nid, "Operation", {}), [unsupported_operation(op.name, cls) or where]
    params: dict[str, Any] = {"op": name}
    problems: list[str] = []
    config = op.get_config()
    if config.get("initial") is not None:
        problems.append(f"{where}: initial={config['initial']!r} cannot be represented")
    spec = CATALOG["Operation"]
    for key in OP_PARAMS[name]:
        if key in config and config[key] is not None:
            value = _plain(config[key])
            pspec = spec.param(key)
            if pspec is not None and value != pspec.default:
                params[key] = value
    calls = getattr(op, "_inbound_nodes", [])
    if calls:
        args = list(calls[0].arguments.args)
        if name in ARITHMETIC:
            constants = [a for a in args if not hasattr(a, "_keras_history")]
            if constants:
                value = constants[0]
                number = _number(value)
                if number is None or len(constants) > 1:
                    problems.append(
                        f"{where}: combines the input with {_short(value)}; the Operation "
                        "node takes one number as a constant"
                    )
                else:
                    params["constant"] = number
                    if not hasattr(args[0], "_keras_history"):
                        params["constant_first"] = True
        elif name == "get_item" and len(args) > 1:
            key = from_key(args[1])
            if key is None:
                problems.append(
                    f"{where}: indexes with {_short(args[1])}; the Operation node takes "
                    "constant ints, slices, None and ... only"
                )
            else:
                params["key"] = key
    for key, value in params.items():
        pspec = spec.param(key)
        problem = check_value(pspec, value) if pspec is not None else None
        if problem:
            problems.append(f"{where}: {problem}")
    if not problems:
        problems += [f"{where}: {p}" for p in op_problems(name, params)]
    return Node(nid, "Operation", params), problems


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _number(value: Any) -> float | int | None:
    """A Python or NumPy scalar as a JSON number, or None."""
    if hasattr(value, "shape") and getattr(value, "shape", None) == ():
        value = value.item() if hasattr(value, "item") else value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
