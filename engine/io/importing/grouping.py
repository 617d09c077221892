"""Blocks for an imported model, from its layer names (a pure function of the names).

Keras's big networks name their layers by stage and unit: ResNet-50's
``conv2_block1_1_conv`` is layer ``1_conv`` of residual block ``block1`` of stage
``conv2``; DenseNet121's ``conv3_block4_concat`` is a dense unit of stage ``conv3``;
EfficientNet's ``block2a_expand_conv`` is unit ``2a`` of stage ``block2``;
MobileNetV2's ``block_3_expand`` belongs to its inverted-residual block ``block_3``. An
imported model opens grouped that way (see :mod:`engine.model.blocks`):

- a *stage* is every layer whose name starts with the same ``<letters><digits>``
  token (``conv2_``, ``pool1_``, ``block3_``; EfficientNet's ``block2a_`` belongs to
  stage ``block2``), when there are at least two;
- a *unit* inside a stage is every layer sharing the next such token too
  (``conv2_block1_``; EfficientNet: the letter, ``block2a_``), at least two layers, and
  fewer than the whole stage;
- stages are shown expanded and units collapsed; a stage without units (ResNet's
  ``conv1``, ``pool1``; DenseNet's transitions ``pool2``..``pool4``, which are their
  own blocks beside the stages; VGG's ``block1``..) is collapsed, as the innermost
  level is.

Names that do not follow such a scheme (``dense``, ``dense_1``, ``conv2d_3``, ``add7``) give no
blocks. A block's id is its prefix (``conv2_block1``), made unique if a layer already
has that name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from engine.model.blocks import Block
from engine.model.graph import is_valid_id

_STAGE = re.compile(r"([A-Za-z]+[0-9]+)([a-z]?)")
_UNIT = re.compile(r"[A-Za-z]+[0-9]+")
#: First tokens of the names Keras gives unnamed layers (``conv2d_3``): not stages.
_AUTO = {"conv1d", "conv2d", "conv3d"}
#: Fewest layers a stage or a unit holds.
MIN_LAYERS = 2


def _keys(name: str) -> tuple[str, str | None] | None:
    """``(stage, unit or None)`` prefixes of a layer name, or None when it has no stage."""
    tokens = name.split("_")
    if len(tokens) > 2 and tokens[0].isalpha() and tokens[1].isdigit():
        return f"{tokens[0]}_{tokens[1]}", None  # MobileNetV2's block_1_expand
    m = _STAGE.fullmatch(tokens[0])
    if not m or tokens[0].lower() in _AUTO:
        return None
    stage = m.group(1)
    if m.group(2):  # block2a_...: unit "block2a" of stage "block2"
        return stage, tokens[0]
    if len(tokens) > 2 and _UNIT.fullmatch(tokens[1]):  # conv2_block1_<layer>
        return stage, f"{tokens[0]}_{tokens[1]}"
    return stage, None


def group_by_prefix(names: Iterable[str]) -> list[Block]:
    """Stage and unit blocks for layers named ``names`` (in graph order), stages first,
    each stage followed by its units, in the order of their first layers."""
    names = list(names)
    stages: dict[str, list[str]] = {}
    units: dict[str, dict[str, list[str]]] = {}
    for name in names:
        keys = _keys(name)
        if keys is None:
            continue
        stage, unit = keys
        stages.setdefault(stage, []).append(name)
        if unit is not None:
            units.setdefault(stage, {}).setdefault(unit, []).append(name)
    taken = set(names)
    out: list[Block] = []

    def block_id(prefix: str) -> str:
        bid, i = prefix, 2
        if not is_valid_id(bid):
            bid = f"block_{prefix}"
        while bid in taken:
            bid, i = f"{prefix}_group{'' if i == 2 else i}", i + 1
        taken.add(bid)
        return bid

    for stage, members in stages.items():
        if len(members) < MIN_LAYERS:
            continue
        inner = [m for m in units.get(stage, {}).values() if MIN_LAYERS <= len(m) < len(members)]
        stage_block = Block(block_id(stage), stage, members, collapsed=not inner)
        out.append(stage_block)
        for m in inner:
            prefix = _keys(m[0])[1]  # type: ignore[index]
            out.append(Block(block_id(str(prefix)), str(prefix), m, collapsed=True))
    return out
