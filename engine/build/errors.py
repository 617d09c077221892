"""Keras error wording: what Keras raised, said in plain words with the shapes.

:func:`explain_error` turns an exception from creating or calling a layer into one
sentence that names the node; :func:`clean_message` strips TensorFlow's banners
and colour codes from any message shown to a user, and :func:`first_line` keeps
the first line of a long one.
"""

from __future__ import annotations

import re
from typing import Any

from engine.model.graph import Node
from engine.model.problems import who


class BuildError(ValueError):
    """The graph cannot be built; the message names the node and what is wrong."""


# --------------------------------------------------------- error messages
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def fmt(shape: Any) -> str:
    """A shape as users read it: ``(None, 8, 8, 32)``."""
    if isinstance(shape, list):
        return " and ".join(fmt(s) for s in shape)
    if shape is None:
        return "(unknown)"
    shape = tuple(shape)
    return f"({shape[0]},)" if len(shape) == 1 else str(shape)


def clean_message(text: str) -> str:
    """Keras's message without colour codes, call banners and argument dumps."""
    text = _ANSI.sub("", text)
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\]", "", text)  # TF banners
    text = re.sub(r"Exception encountered when calling [\w.]+\(\)\.\s*", "", text)
    text = text.split("Arguments received by")[0]
    text = re.sub(
        r"Input \d+ with name '[^']*' of layer '[^']*' is incompatible with the "
        r"layer: ",
        "",
        text,
    )
    text = " ".join(text.replace("`", "").split())
    return text.rstrip(".") or "Keras refused this layer"


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-blank line of an exception's message (its type name when it has
    none), cut to ``limit`` characters with ``...`` when longer."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


_LAYOUTS = {
    2: "(batch, features)",
    3: "(batch, steps, channels)",
    4: "(batch, height, width, channels)",
    5: "(batch, depth, height, width, channels)",
}


#: Layer types that read a sequence: ``(batch, time, features)``.
RECURRENT_TYPES = {"LSTM", "GRU", "SimpleRNN", "Bidirectional", "TimeDistributed"}


_MERGE_SAME = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}


def explain_error(node: Node, layer: Any, exc: BaseException, input_shapes: list[Any]) -> str:
    """Turn a Keras exception raised while calling ``node``'s layer into one sentence.

    Args:
        node: The node whose layer failed.
        layer: The Keras layer (already constructed).
        exc: What Keras raised.
        input_shapes: The shapes of its inputs, batch axis None.

    Returns:
        ``"<Type> '<id>': <what is wrong, with the shapes involved>"``.
    """
    raw = clean_message(str(exc))
    first = input_shapes[0] if input_shapes else None
    text = (
        _rank_message(node, raw, first)
        or _merge_message(node, raw, input_shapes)
        or _window_message(node, layer, raw, first)
        or _reshape_message(node, raw, first)
        or _axis_message(node, layer, exc, first)
        or _per_channel_message(node, raw, first)
        or _unknown_size_message(raw, exc, first)
    )
    if text is None:
        text = raw
        if not re.search(r"\(None[,)]", text):
            text += f" (input shape {fmt(input_shapes if len(input_shapes) > 1 else first)})"
    return f"{who(node)}: {text}"


def _rank_message(node: Node, raw: str, shape: Any) -> str | None:
    m = re.search(
        r"expected (min_|max_)?ndim=(\d+), found ndim=\d+\. Full shape received: "
        r"(\([^)]*\))",
        raw,
    )
    if m:
        bound, want, got = m.group(1), int(m.group(2)), m.group(3)
    else:
        m = re.search(r"at least (\d+) dimensions, received: (\([^)]*\))", raw)
        if not m:
            return None
        bound, want, got = "min_", int(m.group(1)), m.group(2)
    if node.type in RECURRENT_TYPES and want == 3:
        layout = "(batch, time, features)"
    elif node.type in ("Permute", "Reshape"):
        layout = ""  # the rank follows from the layer's own params
    else:
        layout = _LAYOUTS.get(want, "")
    prefix = {"min_": "at least ", "max_": "at most "}.get(bound or "", "")
    return f"expects {prefix}{want}-D input {layout} but got {got}".replace("  ", " ")


def _merge_message(node: Node, raw: str, shapes: list[Any]) -> str | None:
    if len(shapes) < 2:
        return None
    if node.type in _MERGE_SAME and "incompatible shapes" in raw.lower():
        base = shapes[0]
        other = next((s for s in shapes[1:] if s != base), shapes[1])
        return (
            f"inputs have different shapes {fmt(base)} and {fmt(other)}; "
            "they must be equal (or broadcastable)"
        )
    if node.type == "Concatenate" and "matching shapes" in raw:
        axis = node.params.get("axis", -1)
        base = shapes[0]
        other = next((s for s in shapes[1:] if s != base), shapes[1])
        return f"cannot join {fmt(base)} and {fmt(other)} on axis {axis}: all other axes must match"
    if node.type == "Dot" and "Incompatible input shapes" in raw:
        return (
            f"the summed axes differ in size: {fmt(shapes[0])} and {fmt(shapes[1])} "
            f"with axes {node.params.get('axes')}"
        )
    return None


def _size(value: Any) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _window_message(node: Node, layer: Any, raw: str, shape: Any) -> str | None:
    if "output size would be zero or negative" not in raw or not isinstance(shape, tuple):
        return None
    pool = getattr(layer, "pool_size", None)
    window = _size(pool if pool is not None else getattr(layer, "kernel_size", ()))
    dilation = _size(getattr(layer, "dilation_rate", 1) or 1)
    if len(dilation) < len(window):
        dilation = dilation * len(window)
    first_spatial = 2 if getattr(layer, "data_format", "") == "channels_first" else 1
    sides = shape[first_spatial : first_spatial + len(window)]
    what = "pool size" if pool is not None else "kernel size"
    for side, w, d in zip(sides, window, dilation):
        span = (w - 1) * d + 1
        if side is not None and side < span:
            size = "x".join(str(v) for v in window) if len(set(window)) > 1 else str(window[0])
            return (
                f"{what} {size} shrinks side {side} below 1 (input {fmt(shape)}, padding "
                f"'{getattr(layer, 'padding', 'valid')}'); use padding 'same' or a smaller "
                f"{what}"
            )
    return None


def _reshape_message(node: Node, raw: str, shape: Any) -> str | None:
    if "total size of the tensor must be unchanged" not in raw or not isinstance(shape, tuple):
        return None
    target = tuple(node.params.get("target_shape", ()))
    have = 1
    for d in shape[1:]:
        have *= d if d is not None else 1
    want = 1
    for d in target:
        want *= d if d not in (None, -1) else 1
    what = "divisible by" if -1 in target else "equal to"
    return (
        f"cannot reshape {fmt(shape)} ({have} values per example) to {tuple(target)} "
        f"({want} values); the sizes must be {what} each other"
    )


def _axis_message(node: Node, layer: Any, exc: BaseException, shape: Any) -> str | None:
    if not isinstance(exc, IndexError) or "axis" not in node.params or shape is None:
        return None
    return (
        f"axis {node.params['axis']} is out of range for input of shape {fmt(shape)}, "
        f"which has axes -{len(shape)}..{len(shape) - 1}"
    )


def _per_channel_message(node: Node, raw: str, shape: Any) -> str | None:
    """A per-channel mean, variance, scale or offset whose length is not the channels'."""
    lists = {
        k: v
        for k, v in node.params.items()
        if isinstance(v, list) and k in ("mean", "variance", "scale", "offset")
    }
    if not lists or "broadcast" not in raw.lower() or shape is None:
        return None
    axis = node.params.get("axis", -1)
    axis = axis if isinstance(axis, int) else -1
    channels = shape[axis] if -len(shape) <= axis < len(shape) else None
    given = ", ".join(f"{k} has {len(v)} values" for k, v in lists.items())
    noun = "channel" if channels == 1 else "channels"
    return (
        f"{given}, but the input {fmt(shape)} has {channels} {noun} on axis {axis}; "
        "give one value per channel, or a single number"
    )


def _unknown_size_message(raw: str, exc: BaseException, shape: Any) -> str | None:
    if "must be fully-defined" in raw or (isinstance(exc, TypeError) and "NoneType" in raw):
        return (
            f"needs to know the size of every feature axis but got input of shape "
            f"{fmt(shape)}; give the Input a fixed shape"
        )
    return None
