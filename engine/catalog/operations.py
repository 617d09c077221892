"""The ``Operation`` node's rules: which params each allow-listed ``keras.ops`` function
reads, which it needs, and how many inputs it takes. The allow-list itself is
:data:`engine.catalog.specs.OPERATIONS`; the builder, the generated script and the
importer all check an Operation through :func:`op_problems`.
"""

from __future__ import annotations

from typing import Any

#: Elementwise arithmetic: a constant and one input, or two inputs.
ARITHMETIC = ("add", "subtract", "multiply", "divide")

#: Ops that take a list of tensors.
LIST_OPS = ("concatenate", "stack")

#: The params each op reads (every other Operation param must stay unset).
OP_PARAMS: dict[str, tuple[str, ...]] = {
    **{op: ("constant", "constant_first") for op in ARITHMETIC},
    **{op: () for op in ("relu", "relu6", "silu", "hard_sigmoid", "hard_silu", "sigmoid")},
    "tanh": (),
    "gelu": ("approximate",),
    "softmax": ("axis",),
    "expand_dims": ("axis",),
    "squeeze": ("axis",),
    "reshape": ("newshape",),
    "transpose": ("axes",),
    "concatenate": ("axis",),
    "stack": ("axis",),
    "mean": ("axis", "keepdims"),
    "sum": ("axis", "keepdims"),
    "max": ("axis", "keepdims"),
    "get_item": ("key",),
}

#: Params an op cannot do without.
REQUIRED: dict[str, str] = {"expand_dims": "axis", "reshape": "newshape", "get_item": "key"}

#: Default values that count as "not set" for ops that do not read them.
_UNSET = {"constant": None, "constant_first": False, "keepdims": False, "approximate": True}


def op_problems(op: Any, params: dict[str, Any], n_inputs: int | None = None) -> list[str]:
    """What is wrong with an Operation node's params (and its number of inputs)."""
    if op not in OP_PARAMS:
        return [f"op must be one of {', '.join(OP_PARAMS)}; got {op!r}"]
    problems = []
    for name, value in params.items():
        if name == "op" or name in OP_PARAMS[op]:
            continue
        if name in _UNSET and value == _UNSET[name] or value is None:
            continue
        problems.append(f"op '{op}' takes no {name} (got {value!r})")
    need = REQUIRED.get(op)
    if need and params.get(need) is None:
        problems.append(f"op '{op}' needs {need}")
    if n_inputs is not None:
        if op in ARITHMETIC:
            want = 1 if params.get("constant") is not None else 2
            if n_inputs != want:
                problems.append(
                    f"op '{op}' takes {want} input{'s' if want > 1 else ''} "
                    + ("with a constant" if want == 1 else "(or one and a constant)")
                    + f"; got {n_inputs}"
                )
        elif op not in LIST_OPS and n_inputs != 1:
            problems.append(f"op '{op}' takes 1 input; got {n_inputs}")
    return problems
