"""Checks of parameter values against their specs, and the one-line captions of cards.

:func:`check_value` checks one value, :func:`check_params` the rules tying two
params of a layer together, and :func:`caption` is the short text under a node's type.
"""

from __future__ import annotations

import math
from typing import Any

from engine.catalog.specs import INITIALIZERS, INT_MAX, REGULARIZERS, ParamSpec
from engine.catalog.table import CATALOG


# ------------------------------------------------------------------ checking
def check_value(pspec: ParamSpec, value: Any) -> str | None:
    """Say why ``value`` is wrong for ``pspec``, or return None when it is fine.

    Args:
        pspec: The parameter's spec.
        value: A project-file value (JSON form).

    Returns:
        A plain sentence naming the parameter and the value
        (``"units must be an int >= 1; got -3"``), or None.
    """
    if value is None and (pspec.optional or None in pspec.choices and pspec.kind == "choice"):
        return None
    if pspec.kind == "layer":
        return _check_layer(pspec, value)
    if pspec.kind == "regularizer":
        return _check_regularizer(pspec, value)
    if pspec.kind in ("int", "ints", "shape", "axes", "index") and _too_big(value):
        return f"{pspec.name} must be at most {INT_MAX} in size; got {value!r}"
    if _VALID[pspec.kind](pspec, value):
        return None
    return f"{pspec.name} must be {_expected(pspec)}; got {value!r}"


def _too_big(value: Any) -> bool:
    if isinstance(value, list):
        return any(_too_big(v) for v in value)
    return _is_int(value) and abs(value) > INT_MAX


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _in_range(pspec: ParamSpec, value: float) -> bool:
    return (pspec.min is None or value >= pspec.min) and (pspec.max is None or value <= pspec.max)


def _valid_ints(pspec: ParamSpec, value: Any) -> bool:
    if _is_int(value) and pspec.length is not None:
        return _in_range(pspec, value)
    if pspec.length is None:  # an order of axes: a permutation of 1..n
        return (
            isinstance(value, list)
            and len(value) > 0
            and all(_is_int(v) for v in value)
            and sorted(value) == list(range(1, len(value) + 1))
        )
    if pspec.pairs and isinstance(value, list) and all(isinstance(v, list) for v in value):
        return len(value) == pspec.length and all(
            len(pair) == 2 and all(_is_int(v) and _in_range(pspec, v) for v in pair)
            for pair in value
        )
    return (
        isinstance(value, list)
        and len(value) == pspec.length
        and all(_is_int(v) and _in_range(pspec, v) for v in value)
    )


def _valid_shape(pspec: ParamSpec, value: Any) -> bool:
    def dim_ok(v: Any) -> bool:
        return v is None or (_is_int(v) and (v >= 1 or (v == -1 and pspec.min == -1)))

    return isinstance(value, list) and len(value) > 0 and all(dim_ok(v) for v in value)


_VALID = {
    "int": lambda p, v: _is_int(v) and _in_range(p, v),
    "float": lambda p, v: (
        (_is_number(v) and _in_range(p, v))
        or (
            p.per_channel
            and isinstance(v, list)
            and len(v) > 0
            and all(_is_number(x) and _in_range(p, x) for x in v)
        )
    ),
    "bool": lambda p, v: isinstance(v, bool),
    "str": lambda p, v: isinstance(v, str),
    "choice": lambda p, v: any(v == c and type(v) is type(c) for c in p.choices),
    "initializer": lambda p, v: isinstance(v, str) and v in (p.choices or INITIALIZERS),
    "ints": _valid_ints,
    "axes": lambda p, v: (
        _is_int(v)
        or (isinstance(v, list) and len(v) == 2 and all(_is_int(a) for a in v))
        or (
            p.many
            and isinstance(v, list)
            and len(v) > 0
            and all(_is_int(a) for a in v)
            and len(set(v)) == len(v)
        )
    ),
    "shape": _valid_shape,
    "index": lambda p, v: valid_index(v),
}


def valid_index(value: Any) -> bool:
    """Whether ``value`` is an ``index`` value: a list of ints, ``null``, ``"..."`` and
    ``[start, stop, step]`` slices (at most one ``"..."``)."""

    def item_ok(v: Any) -> bool:
        if v is None or v == "..." or _is_int(v):
            return True
        return (
            isinstance(v, list)
            and len(v) == 3
            and all(x is None or _is_int(x) for x in v)
            and v[2] != 0
        )

    return (
        isinstance(value, list)
        and len(value) > 0
        and all(item_ok(v) for v in value)
        and sum(1 for v in value if v == "...") <= 1
    )


def parse_index(text: str) -> list[Any]:
    """Python subscript text (``":, 1:5, 0, None, ..."``) as an ``index`` value.

    Parsed by a small grammar, never evaluated.

    Raises:
        ValueError: Naming the part that is not an int, a slice, None or ``...``.
    """
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    out: list[Any] = []
    for part in (p.strip() for p in text.split(",")):
        if part == "...":
            out.append("...")
        elif part in ("None", "newaxis"):
            out.append(None)
        elif ":" in part:
            pieces = [p.strip() for p in part.split(":")]
            if len(pieces) > 3 or not all(p == "" or _int_text(p) for p in pieces):
                raise ValueError(f"{part!r} is not a slice of whole numbers (start:stop:step)")
            pieces += [""] * (3 - len(pieces))
            out.append([int(p) if p else None for p in pieces])
        elif _int_text(part):
            out.append(int(part))
        else:
            raise ValueError(f"{part!r} is not an int, a slice (1:5), None or ...")
    if not valid_index(out):
        raise ValueError(f"{text!r} is not a valid index")
    return out


def _int_text(text: str) -> bool:
    return text.lstrip("-").isdigit() and len(text) <= 11


def format_index(value: Any) -> str:
    """An ``index`` value as Python subscript text (``[[None, None, None], [1, 5, None]]``
    -> ``":, 1:5"``)."""
    if not isinstance(value, list):
        return ""

    def item(v: Any) -> str:
        if v is None:
            return "None"
        if isinstance(v, list):
            start, stop, step = (("" if x is None else str(x)) for x in v)
            return f"{start}:{stop}" + (f":{step}" if step else "")
        return str(v)

    return ", ".join(item(v) for v in value)


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def _range_text(pspec: ParamSpec) -> str:
    if pspec.min is not None and pspec.max is not None:
        return f" between {_num(pspec.min)} and {_num(pspec.max)}"
    if pspec.min is not None:
        return f" >= {_num(pspec.min)}"
    if pspec.max is not None:
        return f" <= {_num(pspec.max)}"
    return ""


def _expected(pspec: ParamSpec) -> str:
    """What a valid value looks like, in words (after "must be")."""
    kind, rng = pspec.kind, _range_text(pspec)
    if kind == "int":
        text = "an int" + rng
    elif kind == "float":
        text = "a number" + rng
        if pspec.per_channel:
            text += " or a list of numbers (one per channel)"
    elif kind == "bool":
        text = "true or false"
    elif kind == "str":
        text = "a text"
    elif kind in ("choice", "initializer"):
        text = "one of " + ", ".join(repr(c) for c in (pspec.choices or INITIALIZERS))
    elif kind == "ints":
        each = f" (each{rng})" if rng else ""
        if pspec.length is None:
            text = "a list of the axis numbers 1..n in some order"
        else:
            text = f"an int or a list of {pspec.length} ints{each}"
            if pspec.pairs:
                text += f", or {pspec.length} [before, after] pairs"
    elif kind == "axes":
        text = "an axis (int) or a list of " + ("distinct axes" if pspec.many else "2 axes")
    elif kind == "index":
        text = (
            'a list with one item per axis: an int, null (new axis), "..." or [start, stop, step]'
        )
    else:  # shape
        minus = ", -1 for the rest" if pspec.min == -1 else ""
        text = f"a list of positive ints (None for any size{minus})"
    return text + (" or None" if pspec.optional and kind != "choice" else "")


def _check_regularizer(pspec: ParamSpec, value: Any) -> str | None:
    if value is None:
        return None
    head = f"{pspec.name} must be None or {{'type': 'L1'|'L2'|'L1L2', 'l1': ..., 'l2': ...}}"
    if not isinstance(value, dict) or str(value.get("type")) not in REGULARIZERS:
        return f"{head}; got {value!r}"
    extra = sorted(set(value) - {"type", *REGULARIZERS[value["type"]]})
    if extra:
        uses = " and ".join(repr(k) for k in REGULARIZERS[value["type"]])
        return f"{pspec.name} of type {value['type']} takes only {uses}; got {extra[0]!r}"
    for key in REGULARIZERS[value["type"]]:
        if key not in value:
            return f"{pspec.name} of type {value['type']} needs '{key}'; got {value!r}"
        if not (_is_number(value[key]) and value[key] >= 0):
            return f"{pspec.name} {key} must be a number >= 0; got {value[key]!r}"
    return None


def _check_layer(pspec: ParamSpec, value: Any) -> str | None:
    types = ", ".join(repr(c) for c in pspec.choices)
    if (
        not isinstance(value, dict)
        or value.get("type") not in pspec.choices
        or not isinstance(value.get("params", {}), dict)
        or set(value) - {"type", "params"}
    ):
        return f"{pspec.name} must be {{'type': one of {types}, 'params': {{...}}}}; got {value!r}"
    inner = CATALOG[value["type"]]
    params = value.get("params", {})
    for name, v in params.items():
        p = inner.param(name)
        if p is None:
            return f"{pspec.name} ({inner.type}) has no parameter '{name}'"
        problem = check_value(p, v)
        if problem:
            return f"{pspec.name} ({inner.type}): {problem}"
    missing = [p.name for p in inner.params if p.required and p.name not in params]
    if missing:
        return f"{pspec.name} ({inner.type}) needs {missing[0]}"
    return None


def check_params(node_type: str, params: dict[str, Any]) -> list[str]:
    """Rules that tie two params of one layer together (each value alone being fine).

    Args:
        node_type: A catalog type.
        params: The node's params; missing ones take their defaults.

    Returns:
        One plain sentence per broken rule, naming the params and values.
    """
    spec = CATALOG.get(node_type)
    if spec is None:
        return []
    value = {p.name: params.get(p.name, p.default) for p in spec.params}
    problems = []
    if node_type == "Normalization" and (value["mean"] is None) != (value["variance"] is None):
        problems.append(
            "mean and variance must be given together (or both left empty); "
            f"got mean={value['mean']!r}, variance={value['variance']!r}"
        )
    groups, filters = value.get("groups"), value.get("filters")
    if _is_int(groups) and _is_int(filters) and groups > 0 and filters % groups:
        problems.append(
            f"filters must be a multiple of groups; got filters={filters}, groups={groups}"
        )
    queries, kv_heads = value.get("num_query_heads"), value.get("num_key_value_heads")
    if _is_int(queries) and _is_int(kv_heads) and kv_heads > 0 and queries % kv_heads:
        problems.append(
            "num_query_heads must be a multiple of num_key_value_heads; got "
            f"num_query_heads={queries}, num_key_value_heads={kv_heads}"
        )
    strides, dilation = _dims(value.get("strides")), _dims(value.get("dilation_rate"))
    if max(strides) > 1 and max(dilation) > 1:
        problems.append(
            "strides above 1 cannot be combined with dilation_rate above 1; "
            f"got strides={value['strides']!r}, "
            f"dilation_rate={value['dilation_rate']!r}"
        )
    padding = _dims(value.get("output_padding"), fill=0)
    n = max(len(padding), len(strides))
    if any(p >= s for p, s in zip(_widen(padding, n), _widen(strides, n))):
        problems.append(
            "output_padding must be smaller than strides in every dimension; "
            f"got output_padding={value['output_padding']!r}, "
            f"strides={value['strides']!r}"
        )
    return problems


def _widen(dims: list[int], n: int) -> list[int]:
    """One int for every one of ``n`` dimensions (a single int applies to all)."""
    return dims * n if len(dims) == 1 else dims


def _dims(value: Any, fill: int = 1) -> list[int]:
    """An ``ints`` value as a list of ints (``fill`` for None or a malformed value)."""
    if _is_int(value):
        return [value]
    if isinstance(value, list) and value and all(_is_int(v) for v in value):
        return value
    return [fill]


# ------------------------------------------------------------------- captions
#: How a summary param reads on a node: "{}" is replaced by the formatted value.
_CAPTION_FORMATS = {
    "units": "{} units",
    "filters": "{} filters",
    "rate": "rate {}",
    "stddev": "noise {}",
    "num_heads": "{} heads",
    "key_dim": "key_dim {}",
    "num_query_heads": "{} q heads",
    "num_key_value_heads": "{} kv heads",
    "op": "{}",
    "constant": "{}",
    "newshape": "to {}",
    "input_dim": "{} ids",
    "output_dim": "-> {}",
    "n": "x{}",
    "target_shape": "to {}",
    "dims": "dims {}",
    "axis": "axis {}",
    "axes": "axes {}",
    "scale": "scale {}",
    "groups": "{} groups",
    "negative_slope": "slope {}",
    "alpha": "alpha {}",
    "shared_axes": "shared axes {}",
    "padding": "pad {}",
    "cropping": "crop {}",
    "size": "up {}",
    "factor": "factor {}",
    "height_factor": "h {}",
    "width_factor": "w {}",
    "return_sequences": "sequences",
    "l1": "l1 {}",
    "l2": "l2 {}",
    "mean": "mean {}",
    "variance": "var {}",
}


#: ``ints`` params whose single int means the same size in every dimension.
_SQUARE = ("kernel_size", "pool_size", "strides", "size", "dilation_rate")


def caption(node_type: str, params: dict[str, Any]) -> str:
    """The short text a canvas node shows under its type, such as ``"32 filters 3x3 relu"``.

    Built from the spec's ``summary`` params, with defaults for those not set;
    unset or off values (None, False) are left out. Unknown types give ``""``.
    """
    spec = CATALOG.get(node_type)
    if spec is None:
        return ""
    parts = []
    for name in spec.summary:
        pspec = spec.param(name)
        if pspec is None:
            continue
        text = _caption_value(pspec, params.get(name, pspec.default))
        if text:
            parts.append(_CAPTION_FORMATS.get(name, "{}").format(text))
    return " ".join(parts)


def _caption_value(pspec: ParamSpec, value: Any) -> str:
    """One value in a few characters ("" for values not worth showing)."""
    if value is None or value is False:
        return ""
    if value is True:
        return "yes"
    if isinstance(value, float):
        return f"{value:.3g}"
    if pspec.kind == "index":
        return f"[{format_index(value)}]"
    if pspec.kind == "layer" and isinstance(value, dict):
        inner = value.get("type", "?")
        return f"{inner} {caption(inner, value.get('params') or {})}".strip()
    if pspec.kind == "ints" and pspec.length == 1 and pspec.name in _SQUARE:
        return f"size {value[0] if isinstance(value, list) else value}"
    if pspec.kind == "ints" and _is_int(value) and pspec.name in _SQUARE:
        value = [value] * (pspec.length or 1)
    if isinstance(value, list) and pspec.kind == "float":  # one per channel
        return ",".join(f"{v:.3g}" for v in value)
    if isinstance(value, list):
        listed = pspec.kind in ("ints", "axes") or pspec.name == "shared_axes"  # axis numbers
        sep = "," if listed and pspec.name not in _SQUARE else "x"
        return sep.join("?" if v is None else str(v) for v in value)
    return str(value)
