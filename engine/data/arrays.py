"""NumPy arrays read without copies: ``.npy`` files and ``.npz`` members memory-mapped,
and the float32 cache files that big CSV files (and non-float32 arrays) are turned into.

- A ``.npy`` file is memory-mapped (its header is read and checked here, then
  ``np.memmap`` at the data's offset): the operating system pages in what a batch
  touches, and nothing is copied whole.
- An ``.npz`` member stored uncompressed (``numpy.savez``) is memory-mapped the same
  way, at its offset inside the zip (``np.load(mmap_mode=...)`` cannot map a zip member:
  the offset is the member's local header offset + 30 + the name and extra lengths).
- A compressed member (``numpy.savez_compressed``) has to be unpacked into memory; one
  larger than :data:`engine.limits.DATA_MEMORY_MB` is refused with how to save it
  uncompressed.
- Inputs that are not float32 (uint8 images, float64) become float32: in memory when
  small, else chunk by chunk into a cache file (:func:`as_float32`).

Every header is checked against the bytes really there before an array is made, and
object (pickled) arrays are refused, as :func:`read_npz_arrays` always did.

Cache files live in ``$LAYERLAB_CACHE_DIR`` (default ``$XDG_CACHE_HOME/layerlab`` or
``~/.cache/layerlab``), in ``tables/``, named by the source file's path and a key of its
size, modification time and the settings; a changed file's old entries are removed when
the new one is made, and temporary files of killed writers by ``clean_stale_temps``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.files import TEMP_MARK, clean_stale_temps, write_atomic
from engine.limits import (
    DATA_MEMORY_MB,
    NPZ_MB,
    LimitExceeded,
    NotRegularFile,
    check_mb,
    check_zip_member,
    open_regular,
    read_zip_member,
)

NPY_MAGIC = b"\x93NUMPY"
CHUNK_BYTES = 32 * 2**20  # rows checked or converted at a time, about this many bytes
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip member's local file header (30 bytes)


class ArrayError(ValueError):
    """An array file that cannot be used; the message names the file and the array."""


def is_npy(path: Path) -> bool:
    """Whether ``path`` starts like a ``.npy`` file (a single array)."""
    with open_regular(path) as f:
        return f.read(6) == NPY_MAGIC


# --------------------------------------------------------------------------- .npy


def open_npy(path: Path, key: str) -> np.ndarray:
    """The array of a ``.npy`` file, memory-mapped read-only (``key`` names it in messages)."""
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            shape, fortran, dtype, start = _npy_header(path, key, f)
        return _mapped(path, key, shape, fortran, dtype, start, size - start)
    except NotRegularFile as exc:
        raise ArrayError(str(exc)) from None
    except (OSError, ValueError, EOFError) as exc:
        if isinstance(exc, ArrayError):
            raise
        raise ArrayError(f"{path} is not a readable .npy file ({_first(exc)})") from None


def _npy_header(path: Path, key: str, f) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Shape, Fortran order, dtype and the data's offset (from the start of ``f``'s
    array, wherever ``f`` stands); object dtypes are refused."""
    begin = f.tell()
    try:
        version = np.lib.format.read_magic(f)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, fortran, dtype = read_header(f)
    except ValueError as exc:
        raise ArrayError(f"{path}: array {key!r} is not a NumPy array ({exc})") from None
    if dtype.hasobject:
        raise ArrayError(
            f"{path}: array {key!r} holds Python objects, which are never loaded "
            "(pickled data can run code); save numbers or text"
        )
    return shape, fortran, dtype, f.tell() - begin


def _mapped(path, key, shape, fortran, dtype, offset: int, available: int) -> np.ndarray:
    """``np.memmap`` of ``path`` at ``offset``, once the header's size is checked."""
    count = math.prod(shape)
    if count * dtype.itemsize > available:
        raise ArrayError(
            f"{path}: array {key!r} declares shape {shape} ({count * dtype.itemsize:,} bytes) "
            f"but holds {available:,} bytes: the file is damaged"
        )
    if count == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(
        path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C"
    )


# --------------------------------------------------------------------------- .npz


def read_npz_arrays(path: Path, x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Two arrays of an ``.npz`` file: memory-mapped when stored, unpacked when compressed.

    Each member's declared unpacked size (and packing ratio) is checked against
    :data:`engine.limits.NPZ_MB` before anything is read; a compressed member is read
    bounded, and only when it fits :data:`engine.limits.DATA_MEMORY_MB`. The array
    header's shape must match the bytes there are before an array is made. Pickled
    (object) arrays are refused.
    """
    try:
        with open_regular(path) as f:
            if f.read(6) == NPY_MAGIC:
                raise ArrayError(
                    f"{path} is a single .npy array, not an .npz archive with "
                    "named arrays (save it with numpy.savez(path, x=..., y=...), or give "
                    'the targets\' .npy file as "y")'
                )
            f.seek(0)
            with zipfile.ZipFile(f) as archive:
                members = {(n[:-4] if n.endswith(".npy") else n): n for n in archive.namelist()}
                for key, role in ((x_key, "inputs"), (y_key, "targets")):
                    if key not in members:
                        raise ArrayError(
                            f"{path} has no array {key!r} (for the {role}); arrays "
                            f"in the file: {', '.join(members) or 'none'}"
                        )
                infos = [archive.getinfo(members[k]) for k in (x_key, y_key)]
                for info in infos:
                    check_zip_member(info, NPZ_MB)
                check_mb(NPZ_MB, sum(i.file_size for i in infos), "the data unpacked")
                return tuple(  # type: ignore[return-value]
                    _member(path, f, archive, key, info) for key, info in zip((x_key, y_key), infos)
                )
    except NotRegularFile as exc:
        raise ArrayError(str(exc)) from None
    except LimitExceeded as exc:
        raise ArrayError(f"{path}: {exc}") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        if isinstance(exc, ArrayError):
            raise
        raise ArrayError(f"{path} is not a readable .npz file ({_first(exc)})") from None


def _member(path: Path, f, archive: zipfile.ZipFile, key: str, info: zipfile.ZipInfo):
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
        f.seek(info.header_offset)
        fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
        if fields[0] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header for {info.filename}")
        start = info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1]
        f.seek(start)
        shape, fortran, dtype, offset = _npy_header(path, key, f)
        return _mapped(path, key, shape, fortran, dtype, start + offset, info.file_size - offset)
    budget = DATA_MEMORY_MB.value()
    if info.file_size > budget * 10**6:
        raise ArrayError(
            f"{path}: array {key!r} is compressed and unpacks to "
            f"{info.file_size / 10**6:,.1f} MB, more than the {budget:,} MB read into memory "
            f"({DATA_MEMORY_MB.env}); save it uncompressed and it is read from disk as "
            "needed: numpy.savez(path, x=..., y=...) instead of numpy.savez_compressed, "
            'or numpy.save("x.npy", x) and numpy.save("y.npy", y) with "path": "x.npy", '
            '"y": "y.npy"'
        )
    return _npy_bytes(path, key, read_zip_member(archive, info.filename, NPZ_MB))


def _npy_bytes(path: Path, key: str, data: bytes) -> np.ndarray:
    """The array in one unpacked ``.npy`` member, checked against the bytes it really has."""
    buf = io.BytesIO(data)
    shape, fortran, dtype, start = _npy_header(path, key, buf)
    count = math.prod(shape)
    if count * dtype.itemsize > len(data) - start:
        raise ArrayError(
            f"{path}: array {key!r} declares shape {shape} ({count * dtype.itemsize:,} bytes) "
            f"but holds {len(data) - start:,} bytes: the file is damaged"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=start)
    return array.reshape(shape, order="F" if fortran else "C")


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


# --------------------------------------------------------------------------- chunks


def chunk_rows(array: np.ndarray) -> int:
    """How many samples of ``array`` make about :data:`CHUNK_BYTES`."""
    per_row = max(1, math.prod(array.shape[1:]) * max(array.dtype.itemsize, 4))
    return max(1, CHUNK_BYTES // per_row)


def first_nonfinite(array: np.ndarray) -> int | None:
    """The first sample holding a NaN or an infinity (as float32), read chunk by chunk."""
    step = chunk_rows(array)
    for start in range(0, len(array), step):
        block = np.asarray(array[start : start + step], dtype=np.float32)
        bad = ~np.isfinite(block.reshape(len(block), -1)).all(axis=1)
        if bad.any():
            return start + int(np.argmax(bad))
    return None


def as_float32(array: np.ndarray, source: Path, key: str) -> np.ndarray:
    """``array`` as float32, never copied whole into memory when it is large.

    A float32 C-ordered array (memory-mapped or not) is returned as it is; a small one
    is converted in memory; a large one (beyond :data:`engine.limits.DATA_MEMORY_MB`
    as float32) is converted chunk by chunk into a cache file and memory-mapped.
    """
    if array.dtype == np.float32 and array.flags.c_contiguous:
        return array
    if not isinstance(array, np.memmap) or array.size * 4 <= DATA_MEMORY_MB.value() * 10**6:
        return np.ascontiguousarray(array, dtype=np.float32)
    st = os.stat(source)
    entry = table_cache(source, st.st_size, repr(("float32-1", key, array.shape)))
    cached = entry.load()
    if cached is not None:
        return cached[1].reshape(array.shape)
    width = math.prod(array.shape[1:])
    with FloatRowWriter(entry.x_path, width) as writer:
        step = chunk_rows(array)
        for start in range(0, len(array), step):
            writer.write(np.asarray(array[start : start + step], np.float32).reshape(-1, width))
    x = entry.save(writer.rows, width, np.zeros(0), {"shape": list(array.shape)})
    return x.reshape(array.shape)


# --------------------------------------------------------------------------- cache files


def cache_root() -> Path:
    """Where cache files go: ``$LAYERLAB_CACHE_DIR``, else the user's cache folder."""
    chosen = os.environ.get("LAYERLAB_CACHE_DIR", "").strip()
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.expanduser("~/.cache")
    return Path(base) / "layerlab"


@dataclass
class CacheEntry:
    """One cached float32 matrix (``x_path``), its targets and facts (``meta_path``).

    The meta file is written last: an entry without one is incomplete and ignored.
    """

    folder: Path
    stem: str

    @property
    def x_path(self) -> Path:
        return self.folder / f"{self.stem}.f32"

    @property
    def y_path(self) -> Path:
        return self.folder / f"{self.stem}.y.npy"

    @property
    def meta_path(self) -> Path:
        return self.folder / f"{self.stem}.json"

    def load(self) -> tuple[dict[str, Any], np.memmap, np.ndarray] | None:
        """(meta, x, targets) when a complete entry is there, else None."""
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            rows, width = int(meta["rows"]), int(meta["width"])
            if self.x_path.stat().st_size != rows * width * 4:
                return None
            x = np.memmap(self.x_path, dtype=np.float32, mode="r", shape=(rows, width))
            target = np.load(self.y_path, allow_pickle=False)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return meta, x, target

    def save(self, rows: int, width: int, target: np.ndarray, meta: dict[str, Any]) -> np.memmap:
        """Make the entry complete (the x file is the writer's); x memory-mapped."""
        buffer = io.BytesIO()
        np.save(buffer, target, allow_pickle=False)
        write_atomic(self.y_path, buffer.getvalue())
        write_atomic(self.meta_path, json.dumps({**meta, "rows": rows, "width": width}))
        return np.memmap(self.x_path, dtype=np.float32, mode="r", shape=(rows, width))


def table_cache(source: Path, size: int, settings: str) -> CacheEntry:
    """The cache entry of ``source`` (as it is now: ``size``, modification time) read
    with ``settings``. Entries of an earlier version of the same file are removed;
    entries of the same version read with other settings are kept.

    Raises:
        OSError: The cache folder cannot be made.
    """
    real = os.path.realpath(source)
    mtime = os.stat(real).st_mtime_ns
    name = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    version = hashlib.sha256(f"{size}|{mtime}".encode()).hexdigest()[:12]
    key = hashlib.sha256(settings.encode()).hexdigest()[:12]
    folder = cache_root() / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(folder)
    for old in folder.glob(f"{name}-*"):
        if not old.name.startswith(f"{name}-{version}-"):
            try:
                old.unlink()
            except OSError:
                pass
    return CacheEntry(folder, f"{name}-{version}-{key}")


class FloatRowWriter:
    """Rows of float32 appended to a temporary file that becomes ``path`` on success.

    Use as a context manager; the file is renamed into place when the block ends
    normally, removed when it raises.
    """

    def __init__(self, path: Path, width: int) -> None:
        self.path, self.width, self.rows = Path(path), width, 0
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}{TEMP_MARK}", dir=self.path.parent)
        self.temp = Path(name)
        self.file = os.fdopen(fd, "wb")

    def __enter__(self) -> FloatRowWriter:
        return self

    def write(self, block: np.ndarray) -> None:
        np.ascontiguousarray(block, dtype=np.float32).tofile(self.file)
        self.rows += len(block)

    def fill_nan(self, values: np.ndarray) -> int:
        """Replace each NaN written so far by its column's value; how many there were."""
        self.file.flush()
        if self.rows == 0:
            return 0
        x = np.memmap(self.temp, dtype=np.float32, mode="r+", shape=(self.rows, self.width))
        filled = 0
        for start in range(0, self.rows, chunk_rows(x)):
            filled += fill_nan_columns(x[start : start + chunk_rows(x)], values)
        x.flush()
        del x
        return filled

    def __exit__(self, kind, value, tb) -> None:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
        finally:
            self.file.close()
        if kind is None:
            os.replace(self.temp, self.path)
        else:
            self.temp.unlink(missing_ok=True)


def fill_nan_columns(x: np.ndarray, values: np.ndarray) -> int:
    """Replace NaNs in ``x`` (in place) by ``values[column]``; return how many."""
    rows, cols = np.nonzero(np.isnan(x))
    if len(rows):
        x[rows, cols] = values[cols]
    return len(rows)
