"""Writing Python source safely: literals, docstrings, wrapped calls, script parts.

Shared by :mod:`engine.codegen.script` (the model), :mod:`engine.codegen.data`
(``load_data()``) and :mod:`engine.codegen.train` (``main()``). Text from the
project only ever reaches the script through :func:`literal` or :func:`docstring`.
"""

from __future__ import annotations

import math
from typing import Any

WIDTH = 96  # generated lines are wrapped at argument boundaries past this width


class CodegenError(ValueError):
    """The project cannot be written as a script; the message names the node or key."""


def literal(value: Any, tuples: bool = False) -> str:
    """Python source for a JSON-like value that evaluates back to the same value.

    Strings use double quotes when they contain none (``"relu"``), else ``repr``;
    either way the result is one string literal and nothing in the text can
    escape it. Lists become tuples when ``tuples`` is true (Keras sizes).

    Raises:
        CodegenError: For a value that is not None, bool, number, text, list or dict.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return 'float("nan")'
        if math.isinf(value):
            return 'float("inf")' if value > 0 else '-float("inf")'
        return repr(float(value))
    if isinstance(value, str):
        text = repr(value)
        if text[0] == "'" and '"' not in value and "'" not in value:
            return '"' + text[1:-1] + '"'
        return text
    if isinstance(value, (list, tuple)):
        items = [literal(v, tuples) for v in value]
        if tuples or isinstance(value, tuple):
            return "(" + items[0] + ",)" if len(items) == 1 else "(" + ", ".join(items) + ")"
        return "[" + ", ".join(items) + "]"
    if isinstance(value, dict):
        if not all(isinstance(k, str) or type(k) is int for k in value):
            raise CodegenError(f"cannot write {value!r} as code: dict keys must be text")
        return (
            "{" + ", ".join(f"{literal(k)}: {literal(v, tuples)}" for k, v in value.items()) + "}"
        )
    raise CodegenError(f"cannot write {value!r} ({type(value).__name__}) as code")


def encodable(text: str) -> str:
    """``text`` with each character UTF-8 cannot encode (a lone surrogate such as
    ``"\\udc80"``, from a file name in another encoding) written as its escape, as text.

    A generated script shows such text (``--help``, docstrings) without failing.
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def argparse_text(text: str, *, always_formatted: bool = True) -> str:
    """``text`` for an argparse help string or description, shown as written.

    argparse %-formats every help string (so ``%`` is written ``%%``) but a
    description only when it contains ``%(prog)`` (pass ``always_formatted=False``:
    it is escaped only then). Characters UTF-8 cannot encode become escapes
    (:func:`encodable`), so ``--help`` can print them.
    """
    text = encodable(text)
    if always_formatted or "%(prog)" in text:
        text = text.replace("%", "%%")
    return text


def docstring(text: str, indent: str = "") -> str:
    """A triple-quoted docstring holding ``text``, whatever the text contains.

    Backslashes and double quotes are escaped, and so is every character that
    is not printable (newlines and tabs aside), so the text cannot end the
    string. Characters UTF-8 cannot encode are kept as the text of their escape
    (:func:`encodable`), so the docstring can be printed. Lines after the first get
    ``indent``; trailing spaces are dropped.
    """
    out = []
    for ch in encodable(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch in "\n\t" or ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    lines = "".join(out).split("\n")
    lines = [lines[0].rstrip()] + [
        (indent + line).rstrip() if line.strip() else "" for line in lines[1:]
    ]
    body = "\n".join(lines)
    return '"""' + body + ("\n" + indent if len(lines) > 1 else "") + '"""'


def call_code(head: str, args: list[str], indent: str, tail: str = "") -> str:
    """``head(arg, arg, ...)tail``, wrapped at argument boundaries when too long."""
    one = f"{indent}{head}({', '.join(args)}){tail}"
    if len(one.rsplit("\n", 1)[-1]) <= WIDTH or not args:  # a head may end a wrapped tuple
        return one
    lines, line = [], indent + "    "
    for i, arg in enumerate(args):
        piece = arg + ("," if i < len(args) - 1 else "")
        if line.strip() and len(line) + 1 + len(piece) > WIDTH:
            lines.append(line.rstrip())
            line = indent + "    "
        line += ("" if not line.strip() else " ") + piece
    lines.append(line.rstrip())
    return f"{indent}{head}(\n" + "\n".join(lines) + f"\n{indent}){tail}"


def tuple_code(names: list[str], indent: str, brackets: str = "") -> str:
    """``a, b, c`` (what a block function returns, or its call assigns to; with
    ``brackets="[]"``, ``[a, b, c]``), or, when that would not fit in :data:`WIDTH`,
    the names one a line inside brackets (parentheses by default)."""
    one = ", ".join(names)
    if len(indent) + len(one) + 24 <= WIDTH or len(names) < 2:
        return f"{brackets[:1]}{one}{brackets[1:]}"
    opening, closing = brackets or "()"
    inner = "".join(f"{indent}    {n},\n" for n in names)
    return f"{opening}\n{inner}{indent}{closing}"


class ScriptPart:
    """Imports, module constants and function sources contributed to the script."""

    def __init__(self) -> None:
        self.imports: set[str] = set()
        self.constants: list[str] = []
        self.functions: list[str] = []
        self.task: str | None = None  # what the data is, when known without loading it
        self.num_classes: int | None = None
        self.has_val = True
        self.streamed = False  # load_data() returns tf.data datasets of (x, y) batches


def dedupe(items: list[str]) -> list[str]:
    """``items`` without repeats, in first-seen order."""
    return list(dict.fromkeys(items))
