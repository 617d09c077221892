"""How much of a file LayerLab is willing to read: the numbers, and the bounded JSON reader.

A file from someone else can be built to exhaust memory or time (a 1 GB project,
JSON nested 100,000 deep, an integer of a million digits, a million nodes). Each
such bound is a :class:`Limit` with a generous default and an environment
variable that raises it (documented in ``docs/project-format.md``). Checks run
*before* the expensive work: the size before the file is read, the nesting depth
on the raw text before :func:`json.loads` can recurse, integer lengths before
``int()`` parses them.

Every refusal is a :class:`LimitExceeded` whose message names the limit, its value
and the variable that raises it; callers add the file's name.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any


class LimitExceeded(ValueError):
    """Input beyond one of the limits below; the message says which and how to raise it."""


@dataclass(frozen=True)
class Limit:
    """One bound on hostile input.

    Attributes:
        env: The environment variable that overrides the default (a whole number).
        default: The value used when the variable is not set.
        what: What is counted, for messages (``"nodes"``, ``"MB"``, ...).
    """

    env: str
    default: int
    what: str

    def value(self) -> int:
        """The bound in force: the environment variable when set, else the default.

        Raises:
            LimitExceeded: The variable is set but not a whole number >= 1.
        """
        raw = os.environ.get(self.env, "").strip()
        if not raw:
            return self.default
        try:
            number = int(raw)
        except ValueError:
            number = 0
        if number < 1:
            raise LimitExceeded(f"{self.env} must be a whole number >= 1; got {raw!r}")
        return number

    def refusal(self, found: str) -> LimitExceeded:
        """The error for input beyond this limit: ``found`` says what was seen."""
        limit = self.value()
        return LimitExceeded(
            f"{found}, more than the limit of {limit:,} {self.what} (set {self.env} to raise it)"
        )


#: A project file's size on disk, in MB (10**6 bytes).
PROJECT_MB = Limit("LAYERLAB_MAX_PROJECT_MB", 64, "MB")
#: How deeply objects and lists may nest in a project file.
JSON_DEPTH = Limit("LAYERLAB_MAX_JSON_DEPTH", 64, "levels of nesting")
#: Digits in one integer of a project file (sign aside).
INT_DIGITS = Limit("LAYERLAB_MAX_INT_DIGITS", 100, "digits")
#: Nodes in one graph.
NODES = Limit("LAYERLAB_MAX_NODES", 100_000, "nodes")
#: Edges in one graph.
EDGES = Limit("LAYERLAB_MAX_EDGES", 400_000, "edges")

# A JSON string (escapes included) or one bracket; strings are skipped when counting depth.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def check_size(size: int) -> None:
    """Refuse a file of ``size`` bytes beyond :data:`PROJECT_MB`."""
    if size > PROJECT_MB.value() * 10**6:
        raise PROJECT_MB.refusal(f"the file is {size / 10**6:,.1f} MB")


def check_depth(text: str) -> None:
    """Refuse JSON text nested deeper than :data:`JSON_DEPTH`, without parsing it.

    Brackets inside strings do not count. Stops at the first bracket past the limit,
    so a hostile file costs no more than the limit's worth of scanning.
    """
    limit = JSON_DEPTH.value()
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        ch = match.group()
        if ch in "[{":
            depth += 1
            if depth > limit:
                raise JSON_DEPTH.refusal(f"objects and lists nest more than {limit} deep")
        elif ch in "]}":
            depth -= 1


class _Duplicate:
    """An object that had a key twice (found while parsing, located afterwards)."""

    def __init__(self, key: str, obj: dict[str, Any]) -> None:
        self.key, self.obj = key, obj


def loads(text: str) -> Any:
    """:func:`json.loads` within the limits, refusing duplicate keys.

    Raises:
        LimitExceeded: Too deep, an integer too long, or a key twice in one object
            (the message names the key and where it is, e.g. ``graph.nodes[3]``).
        json.JSONDecodeError: Not JSON.
    """
    check_depth(text)
    digits = INT_DIGITS.value()
    duplicates: list[_Duplicate] = []

    def parse_int(s: str) -> int:
        if len(s.lstrip("-")) > digits:
            raise INT_DIGITS.refusal(f"an integer has {len(s.lstrip('-')):,} digits")
        return int(s)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) != len(items) and not duplicates:
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    duplicates.append(_Duplicate(key, obj))
                    break
                seen.add(key)
        return obj

    value = json.loads(text, parse_int=parse_int, object_pairs_hook=pairs)
    if duplicates:
        where = _where(value, duplicates[0].obj) or "the file"
        raise LimitExceeded(
            f'the key "{duplicates[0].key}" appears twice in {where} '
            "(a project file names each key once)"
        )
    return value


def _where(root: Any, target: dict[str, Any]) -> str | None:
    """The path to ``target`` inside ``root``, like ``graph.nodes[3]`` (depth is bounded)."""
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:
        value, path = stack.pop()
        if value is target:
            return path or "the top-level object"
        if isinstance(value, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(value))
    return None
