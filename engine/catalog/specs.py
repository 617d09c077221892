"""What the catalog is made of: :class:`ParamSpec`, :class:`LayerSpec` and the name lists.

The layer table itself is :data:`engine.catalog.table.CATALOG`; the checks of
values against these specs are in :mod:`engine.catalog.checks`.

Parameter kinds and the values they hold in a project file:

- ``int``, ``float``, ``bool``: plain JSON numbers / booleans (a ``float`` also
  takes an int; an ``int`` never takes ``true``/``false``); a ``per_channel``
  ``float`` also takes a list of numbers, one per channel.
- ``str``: free text (e.g. a layer's ``dtype``).
- ``choice``: one of ``choices`` (which may include ``None``).
- ``ints``: an int or a list of ``length`` ints (kernel sizes, strides, ...), and
  with ``pairs`` also ``length`` ``[before, after]`` pairs (uneven padding);
  with ``length`` None, an order of axes: the numbers 1..n in any order (Permute's ``dims``).
- ``axes``: an axis index or a list of two (Dot's ``axes``); with ``many`` a list of
  any number of distinct axes (an operation's ``axis``, a transpose's order).
- ``index``: constant indices for slicing (the Operation node's ``get_item``), a JSON
  list with one item per axis: an int, ``null`` (a new axis), ``"..."`` (the rest),
  or ``[start, stop, step]`` (a slice; each an int or ``null``). Data, never code.
- ``shape``: a list of positive ints, ``None`` allowed for variable length;
  ``min=-1`` also allows ``-1`` ("whatever is left", Reshape's ``target_shape``).
- ``regularizer``: ``None`` or ``{"type": "L1"|"L2"|"L1L2", "l1": f, "l2": f}``;
  exactly the key(s) the type uses (``l1`` for L1, ``l2`` for L2, both for L1L2).
- ``initializer``: the name of a Keras initializer, one of :data:`INITIALIZERS`.
- ``layer``: a wrapped layer, ``{"type": "LSTM", "params": {...}}`` (Bidirectional,
  TimeDistributed); ``choices`` lists the types it may wrap and ``params`` are
  checked against that type's own spec.
- ``optional=True`` allows ``None`` where Keras takes it ("not set").

Defaults are Keras's own defaults in JSON form: a Keras tuple default such as
``(1, 1)`` is written as the list ``[1, 1]``; an int default stays an int.
Ints, also inside lists, are at most :data:`INT_MAX` in size.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from engine.catalog.operations import OP_PARAMS

KINDS = (
    "int",
    "float",
    "bool",
    "str",
    "choice",
    "ints",
    "shape",
    "regularizer",
    "initializer",
    "layer",
    "axes",
    "index",
)


@dataclass(frozen=True)
class ParamSpec:
    """One constructor argument of a layer type.

    Attributes:
        name: The Keras constructor argument name.
        kind: One of :data:`KINDS`.
        default: Keras's default value, in project-file form.
        doc: One short sentence for the inspector.
        choices: Allowed values for ``choice`` (and wrapped types for ``layer``).
        min: Smallest allowed value (ints, floats, and each element of ``ints``).
        max: Largest allowed value.
        length: For ``ints``: how many ints a list must have.
        optional: ``None`` is allowed as a value.
        required: Keras has no default; the project must give a value
            (``default`` is then what a new node starts with).
        pairs: For ``ints``: also accept ``length`` ``[before, after]`` pairs
            (uneven padding or cropping, ``[[top, bottom], [left, right]]``).
        per_channel: For ``float``: also accept a list of numbers, one per channel
            (ImageNet's ``[0.485, 0.456, 0.406]``).
        many: For ``axes``: a list of any number of distinct axes (not just two).
    """

    name: str
    kind: str
    default: Any
    doc: str
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    length: int | None = None
    optional: bool = False
    required: bool = False
    pairs: bool = False
    per_channel: bool = False
    many: bool = False


@dataclass(frozen=True)
class LayerSpec:
    """One layer type.

    Attributes:
        type: The Keras class name (``Input`` for model inputs).
        category: Palette group.
        doc: Two plain-language sentences: what the layer does and when to use it.
        min_inputs: Fewest incoming edges.
        max_inputs: Most incoming edges; ``None`` for no limit.
        params: The constructor arguments the editor exposes, in display order.
        summary: Names of the two or three params that matter most (node captions).
        repeat_source: One tensor may feed several of its inputs (self-attention
            feeds the same sequence as query and value).
    """

    type: str
    category: str
    doc: str
    min_inputs: int = 1
    max_inputs: int | None = 1
    params: tuple[ParamSpec, ...] = ()
    summary: tuple[str, ...] = ()
    repeat_source: bool = False
    _by_name: dict[str, ParamSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({p.name: p for p in self.params})

    def param(self, name: str) -> ParamSpec | None:
        return self._by_name.get(name)

    def defaults(self) -> dict[str, Any]:
        """Params a new node starts with: the required ones (others default in Keras).

        Returns fresh copies, so editing a node's lists never changes the catalog.
        """
        return {p.name: copy.deepcopy(p.default) for p in self.params if p.required}


CATEGORIES: tuple[str, ...] = (
    "Input",
    "Core",
    "Convolution",
    "Pooling",
    "Recurrent",
    "Normalization",
    "Regularization",
    "Merge",
    "Operations",
    "Attention",
    "Preprocessing & augmentation",
    "Pretrained",
)


#: The keras.ops functions an ``Operation`` node may apply (the allow-list; nothing else
#: is ever called or evaluated). Arithmetic, activations, shape ops, reductions, slicing.
OPERATIONS: tuple[str, ...] = tuple(OP_PARAMS)


#: Activation names offered for ``activation`` params (``None`` means linear).
ACTIVATIONS: tuple[str | None, ...] = (
    None,
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "swish",
    "gelu",
    "elu",
    "selu",
    "leaky_relu",
    "relu6",
    "softplus",
    "softsign",
    "hard_sigmoid",
    "hard_silu",
    "mish",
    "linear",
)


#: Names Keras writes into saved configs that the catalog spells differently.
ACTIVATION_ALIASES: dict[str, str] = {"silu": "swish", "hard_swish": "hard_silu"}


#: Keras initializer names offered for ``initializer`` params.
INITIALIZERS: tuple[str, ...] = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "uniform",
    "variance_scaling",
    "zeros",
    "ones",
)


#: Regularizer types and the keys each one uses.
REGULARIZERS: dict[str, tuple[str, ...]] = {"L1": ("l1",), "L2": ("l2",), "L1L2": ("l1", "l2")}


#: The largest int a param may hold (what Keras's and Qt's 32-bit ints take).
INT_MAX = 2**31 - 1


#: Layer types that join several inputs into one.
MERGE_TYPES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot")
