"""The ``Operation`` node: one allow-listed ``keras.ops`` function applied to its inputs.

Functional Keras models record operations written inline (``x + y``, ``x * 0.5``,
``keras.ops.expand_dims(x, 1)``, ``x[:, 0]``) as operation objects of
``keras.src.ops``; they save into ``.keras`` files and load back without custom
objects. An ``Operation`` node (catalog type ``Operation``, its ``op`` one of
:data:`engine.catalog.specs.OPERATIONS`) builds the very same operation object, named
after the node, so the built model is what Keras code writes. Nothing outside the
allow-list is ever called, and nothing is evaluated: slicing indices are data
(``key``, an ``index`` value: ints, ``null``, ``"..."`` and ``[start, stop, step]``).

:func:`make_operation` is called by :func:`engine.build.layers.make_layer`, so the
builder and shape inference share it.
"""

from __future__ import annotations

from typing import Any

from engine.build.errors import BuildError, clean_message
from engine.catalog.operations import ARITHMETIC, LIST_OPS, OP_PARAMS, op_problems
from engine.model.graph import Node

#: op -> (``keras.src.ops`` module, class name) of the operation Keras records.
OP_CLASSES: dict[str, tuple[str, str]] = {
    "add": ("numpy", "Add"),
    "subtract": ("numpy", "Subtract"),
    "multiply": ("numpy", "Multiply"),
    "divide": ("numpy", "Divide"),
    "relu": ("nn", "Relu"),
    "relu6": ("nn", "Relu6"),
    "silu": ("nn", "Silu"),
    "hard_sigmoid": ("nn", "HardSigmoid"),
    "hard_silu": ("nn", "HardSilu"),
    "sigmoid": ("nn", "Sigmoid"),
    "tanh": ("numpy", "Tanh"),
    "gelu": ("nn", "Gelu"),
    "softmax": ("nn", "Softmax"),
    "expand_dims": ("numpy", "ExpandDims"),
    "squeeze": ("numpy", "Squeeze"),
    "reshape": ("numpy", "Reshape"),
    "transpose": ("numpy", "Transpose"),
    "concatenate": ("numpy", "Concatenate"),
    "stack": ("numpy", "Stack"),
    "mean": ("numpy", "Mean"),
    "sum": ("numpy", "Sum"),
    "max": ("numpy", "Max"),
    "get_item": ("numpy", "GetItem"),
}

#: Recorded Keras operation classes that mean one of the ops above
#: (``x / y`` records TrueDivide; ``keras.ops.swish`` records Silu).
CLASS_ALIASES: dict[str, str] = {"TrueDivide": "divide", "Swish": "silu", "HardSwish": "hard_silu"}

#: Constructor arguments of the operation classes (the rest are call arguments).
_CONSTRUCTOR = ("axis", "keepdims", "newshape", "axes", "approximate")


def operation_of_class(class_name: str) -> str | None:
    """The op a recorded Keras operation class stands for (``"ExpandDims"`` ->
    ``"expand_dims"``), or None when it is not on the allow-list."""
    if class_name in CLASS_ALIASES:
        return CLASS_ALIASES[class_name]
    return next((op for op, (_m, cls) in OP_CLASSES.items() if cls == class_name), None)


def to_key(value: Any) -> tuple[Any, ...]:
    """An ``index`` value as the Python key Keras takes (slices, ints, None, Ellipsis)."""
    out: list[Any] = []
    for item in value:
        if isinstance(item, list):
            out.append(slice(*item))
        elif item == "...":
            out.append(Ellipsis)
        else:
            out.append(item)
    return tuple(out)


def from_key(key: Any) -> list[Any] | None:
    """A recorded ``get_item`` key as an ``index`` value, or None when it is not constant
    indices (a tensor, a list of positions, ...)."""
    items = key if isinstance(key, (tuple, list)) else (key,)
    out: list[Any] = []
    for item in items:
        if isinstance(item, slice):
            parts = [item.start, item.stop, item.step]
            if not all(
                p is None or (isinstance(p, int) and not isinstance(p, bool)) for p in parts
            ):
                return None
            out.append(parts)
        elif item is Ellipsis:
            out.append("...")
        elif item is None or (isinstance(item, int) and not isinstance(item, bool)):
            out.append(item)
        else:
            return None
    return out


class OperationCall:
    """A Keras operation object with the node's constant arguments, called on inputs.

    Attributes:
        op: The op name.
        operation: The ``keras.src.ops`` operation object (named after the node).
    """

    trainable_weights: list[Any] = []
    non_trainable_weights: list[Any] = []
    trainable = True

    def __init__(self, op: str, operation: Any, params: dict[str, Any], where: str) -> None:
        self.op = op
        self.operation = operation
        self.params = params
        self.where = where

    def count_params(self) -> int:
        return 0

    def __call__(self, inputs: list[Any]) -> Any:
        problems = op_problems(self.op, self.params, len(inputs))
        if problems:
            raise BuildError(f"{self.where}: {problems[0]}")
        p = self.params
        if self.op in LIST_OPS:
            return self.operation(list(inputs))
        if self.op in ARITHMETIC:
            if p.get("constant") is None:
                return self.operation(inputs[0], inputs[1])
            args = [inputs[0], p["constant"]]
            return self.operation(*(args[::-1] if p.get("constant_first") else args))
        if self.op == "get_item":
            return self.operation(inputs[0], to_key(p["key"]))
        return self.operation(inputs[0])


def make_operation(node: Node) -> OperationCall:
    """The operation of an ``Operation`` node, not yet called.

    Raises:
        BuildError: For an op outside the allow-list, a param the op does not take, or
            a value Keras refuses.
    """
    from keras.src.ops import nn, numpy

    where = f"Operation '{node.id}'"
    params = dict(node.params)
    op = params.get("op")
    problems = op_problems(op, params)
    if problems:
        raise BuildError(f"{where}: {problems[0]}")
    module, cls_name = OP_CLASSES[op]
    cls = getattr({"nn": nn, "numpy": numpy}[module], cls_name)
    kwargs = {}
    for name in _CONSTRUCTOR:
        if name in OP_PARAMS[op] and params.get(name) is not None:
            value = params[name]
            kwargs[name] = tuple(value) if isinstance(value, list) else value
    try:
        operation = cls(name=node.id, **kwargs)
    except (ValueError, TypeError) as exc:
        raise BuildError(f"{where}: {clean_message(str(exc))}") from None
    return OperationCall(op, operation, params, where)
