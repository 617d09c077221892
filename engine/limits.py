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
import stat
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO


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
NODES = Limit("LAYERLAB_MAX_NODES", 10_000, "nodes")
#: Edges in one graph.
EDGES = Limit("LAYERLAB_MAX_EDGES", 40_000, "edges")

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


# --------------------------------------------------------------------------- data and model files

#: Pixels of one image (width x height, times the frames of an animated GIF), read from
#: the image's header before it is decoded.
IMAGE_MEGAPIXELS = Limit("LAYERLAB_MAX_IMAGE_MEGAPIXELS", 100, "megapixels")
#: A CSV data file's size in MB (one beyond :data:`DATA_MEMORY_MB` is streamed to a cache
#: file, not read into memory).
CSV_MB = Limit("LAYERLAB_MAX_CSV_MB", 2048, "MB")
#: One line of a CSV file, in KB.
CSV_LINE_KB = Limit("LAYERLAB_MAX_CSV_LINE_KB", 1024, "KB")
#: One field (cell) of a CSV file, in KB.
CSV_FIELD_KB = Limit("LAYERLAB_MAX_CSV_FIELD_KB", 128, "KB")
#: The arrays of an .npz file together, unpacked, in MB (stored members are memory-mapped,
#: compressed ones are also bounded by :data:`DATA_MEMORY_MB`).
NPZ_MB = Limit("LAYERLAB_MAX_NPZ_MB", 65536, "MB")
#: How much of a data file is read into memory: a CSV file larger than this is read in
#: blocks into a float32 cache file (memory-mapped), a compressed .npz member larger than
#: this is refused (saved uncompressed it is memory-mapped instead).
DATA_MEMORY_MB = Limit("LAYERLAB_DATA_MEMORY_MB", 512, "MB")
#: A model's config (``config.json`` of a ``.keras`` file, ``model_config`` of an ``.h5``
#: file, a config JSON file), in MB.
MODEL_CONFIG_MB = Limit("LAYERLAB_MAX_MODEL_CONFIG_MB", 64, "MB")
#: The members of a ``.keras`` file together, unpacked, in MB.
MODEL_MB = Limit("LAYERLAB_MAX_MODEL_MB", 4096, "MB")
#: How many times its packed size a zip member larger than :data:`RATIO_FROM_MB` may unpack to.
ZIP_RATIO = Limit("LAYERLAB_MAX_ZIP_RATIO", 200, "times its packed size")
RATIO_FROM_MB = 10  # small members (JSON, headers) may compress well without suspicion

_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFile(ValueError):
    """A path that names a FIFO, a device, a socket or a folder where a file is expected."""


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open ``path`` for binary reading, refusing anything that is not a regular file.

    The kind is checked before opening (a FIFO's ``open`` would wait for a writer)
    and again on the open file (it may have been swapped meanwhile); the file is
    opened without blocking, so neither check can hang.

    Raises:
        NotRegularFile: ``"PATH is not a regular file (a FIFO (named pipe))"``.
        OSError: It cannot be opened (missing, no permission, ...).
    """
    _require_regular(path, os.stat(path))
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    f = os.fdopen(fd, "rb")
    try:
        _require_regular(path, os.fstat(fd))
    except BaseException:
        f.close()
        raise
    return f


def require_regular(path: str | os.PathLike) -> int:
    """Refuse ``path`` unless it is a regular file (symlinks followed); return its size.

    Raises:
        NotRegularFile: See :func:`open_regular`.
        OSError: It cannot be looked at (missing, ...).
    """
    st = os.stat(path)
    _require_regular(path, st)
    return st.st_size


def _require_regular(path: str | os.PathLike, st: os.stat_result) -> None:
    if stat.S_ISREG(st.st_mode):
        return
    kind = next((name for test, name in _FILE_KINDS if test(st.st_mode)), "not a file")
    raise NotRegularFile(f"{path} is not a regular file ({kind})")


def check_mb(limit: Limit, size: int, what: str) -> None:
    """Refuse ``size`` bytes of ``what`` beyond ``limit`` (a limit counted in MB)."""
    if size > limit.value() * 10**6:
        raise limit.refusal(f"{what} is {size / 10**6:,.1f} MB")


def check_zip_member(info: zipfile.ZipInfo, limit: Limit) -> None:
    """Refuse a zip member whose declared unpacked size is beyond ``limit`` (in MB), or
    which unpacks to more than :data:`ZIP_RATIO` times its packed size (a zip bomb).

    Declared sizes are all that is known before unpacking; :func:`read_zip_member`
    reads no more than they say, so a member that lies is cut short (and fails its
    checksum) rather than read beyond the limit.
    """
    check_mb(limit, info.file_size, f"{info.filename} unpacked")
    if info.file_size > RATIO_FROM_MB * 10**6:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > ZIP_RATIO.value():
            raise ZIP_RATIO.refusal(
                f"{info.filename} unpacks to {ratio:,.0f} times its packed size "
                f"({info.compress_size:,} -> {info.file_size:,} bytes)"
            )


def read_zip_member(archive: zipfile.ZipFile, name: str, limit: Limit) -> bytes:
    """One member of ``archive``, checked by :func:`check_zip_member` and read bounded.

    Raises:
        LimitExceeded: Beyond ``limit`` or :data:`ZIP_RATIO`.
        KeyError: No such member.
        zipfile.BadZipFile: The member is corrupt (or lied about its size).
    """
    info = archive.getinfo(name)
    check_zip_member(info, limit)
    cap = limit.value() * 10**6
    with archive.open(info) as f:
        data = f.read(min(info.file_size, cap) + 1)
    if len(data) > info.file_size:  # zipfile stops at the declared size; never trust it alone
        raise zipfile.BadZipFile(f"{name} holds more than the {info.file_size:,} bytes it declares")
    return data
