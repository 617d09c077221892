"""Image sources: a folder of class sub-folders, or a CSV list of images.

Loading an image source only *indexes* it: file names and labels, no decoding
(:func:`index_folder`, :func:`index_list`), so a folder of 100,000 photos is ready in
about a second. The pixels come later, batch by batch, from the ``tf.data`` pipeline of
:mod:`engine.data.image_stream`, which fits each decoded image to the model's size with
the ops here (:func:`_fit_group`: ``stretch``, ``crop`` or ``pad`` to the aspect ratio).
:func:`load_pixels` decodes a few chosen images strictly, with the same ops (previews,
evaluation, the first samples of a run, small sets): a bad file is a ``DataError``
naming it.

TensorFlow is imported inside the functions that decode.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.build.errors import clean_message
from engine.data.image_size import ImageHeaderError, check_pixels, image_size
from engine.data.sources import DataError, get_int, get_str
from engine.data.table import DataFix
from engine.limits import (
    CSV_MB,
    LimitExceeded,
    NotRegularFile,
    check_mb,
    open_regular,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
RESIZE_MODES = ("stretch", "crop", "pad")
CACHE_MODES = ("auto", "none", "memory", "file")
CORRUPT_MODES = ("skip", "error")
DEFAULT_CACHE_MB = 512
"""``"cache": "auto"`` keeps a split's decoded images in memory up to this size."""
MAX_IMAGE_MB = 4096
"""Most MB of decoded float32 pixels :func:`load_pixels` makes at once (``max_memory_mb``)."""


@dataclass
class ImageFiles:
    """An indexed image source: one file and one class index per sample.

    Attributes:
        paths: The image files (absolute paths).
        labels: int64 class index of each file.
        class_names: One name per class index.
        size: (height, width) every image is resized to.
        channels: 1 (grayscale) or 3 (rgb).
        resize: ``stretch``, ``crop`` (to the aspect ratio, centred) or ``pad``.
        cache: ``auto``, ``none``, ``memory`` or ``file``.
        corrupt: ``skip`` or ``error``.
        memory_mb: The section's ``max_memory_mb`` (None: not set): the largest
            in-memory cache ``"auto"`` makes, and the most :func:`load_pixels` decodes.
        description: What the data is, in words.
    """

    paths: list[str]
    labels: np.ndarray
    class_names: list[str]
    size: tuple[int, int]
    channels: int
    resize: str = "stretch"
    cache: str = "auto"
    corrupt: str = "skip"
    memory_mb: int | None = None
    description: str = ""
    origin: list[str] = field(default_factory=list)
    """Where each file was named ("list.csv line 3"), for an image list."""
    missing: list[str] = field(default_factory=list)
    """Files an image list names that do not exist ("a.png (list.csv line 7)"), left
    out under ``"corrupt_files": "skip"``."""

    def __len__(self) -> int:
        return len(self.paths)

    def decoded_mb(self, count: int) -> float:
        """MB of float32 pixels ``count`` images take once decoded."""
        return count * self.size[0] * self.size[1] * self.channels * 4 / 2**20


# --------------------------------------------------------------------------- indexing


def _hidden(name: str) -> bool:
    """Hidden files and folders, and what macOS adds to zips (``._x.png``, ``__MACOSX``)."""
    return name.startswith(".") or name == "__MACOSX"


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()  # follows symlinks; FIFOs and sockets are not files
    except OSError:
        return False


def index_folder(
    folder: Path, section: dict[str, Any], input_shape: tuple[int | None, ...] | None
) -> ImageFiles:
    """One sub-folder per class, listed (never decoded); classes in name order."""
    with os.scandir(folder) as entries:
        classes = sorted(e.name for e in entries if e.is_dir() and not _hidden(e.name))
    if not classes:
        raise DataError(
            f"{folder} has no class sub-folders (put each class's images in a "
            "sub-folder named after the class)"
        )
    paths: list[str] = []
    labels: list[np.ndarray] = []
    for index, name in enumerate(classes):
        class_dir = folder / name
        with os.scandir(class_dir) as entries:
            found = sorted(
                e.path
                for e in entries
                if not _hidden(e.name)
                and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES
                and _is_file(e)
            )
        if not found:
            raise DataError(
                f"class folder {class_dir} holds no images ({', '.join(IMAGE_SUFFIXES)})"
            )
        paths.extend(found)
        labels.append(np.full(len(found), index, dtype=np.int64))
    return _image_files(paths, np.concatenate(labels), classes, section, input_shape, folder.name)


def index_list(
    path: Path, section: dict[str, Any], input_shape: tuple[int | None, ...] | None
) -> ImageFiles:
    """A CSV of ``path,label`` rows (a header row names the columns; paths relative to
    the CSV). An empty label or a short row names the CSV's line; so does a listed file
    that does not exist, unless ``"corrupt_files"`` is ``"skip"`` (the default): then it
    is left out and listed in :attr:`ImageFiles.missing` (the description counts them)."""
    path_column = get_str(section, "path_column", "path")
    skip_missing = get_str(section, "corrupt_files", "skip", CORRUPT_MODES) == "skip"
    label_column = get_str(section, "label_column", "label")
    try:
        with open_regular(path) as f:
            check_mb(CSV_MB, os.fstat(f.fileno()).st_size, f"{path}: the file")
            text = f.read().decode("utf-8-sig")
    except (NotRegularFile, LimitExceeded) as exc:
        raise DataError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    base = path.parent
    paths: list[str] = []
    names: list[str] = []
    origin: list[str] = []
    missing: list[str] = []
    try:
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            line = reader.line_num
            if header is None:
                header = [c.strip() for c in cells]
                for column in (path_column, label_column):
                    if column not in header:
                        raise DataError(
                            f"{path} line {line}: the header has no column {column!r} "
                            f"(columns: {', '.join(header)}); an image list needs a "
                            f"header row naming a {path_column!r} and a {label_column!r} column"
                        )
                p_at, l_at = header.index(path_column), header.index(label_column)
                continue
            if len(cells) != len(header):
                raise DataError(
                    f"{path} line {line}: {len(cells)} values but the header has "
                    f"{len(header)} columns"
                )
            name, label = cells[p_at].strip(), cells[l_at].strip()
            if not label:
                raise DataError(f"{path} line {line}: the label of {name!r} is empty")
            if not name:
                raise DataError(f"{path} line {line}: the image path is empty")
            file = Path(name) if os.path.isabs(name) else base / name
            if os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES:
                raise DataError(
                    f"{path} line {line}: {name!r} is not an image file "
                    f"({', '.join(IMAGE_SUFFIXES)})"
                )
            if not file.is_file():
                if skip_missing:
                    missing.append(f"{file} ({path.name} line {line})")
                    continue
                raise DataError(
                    f"{path} line {line}: image file not found: {file}",
                    DataFix("Skip the listed images that are missing", {"corrupt_files": "skip"}),
                )
            paths.append(str(file))
            names.append(label)
            origin.append(f"{path.name} line {line}")
    except csv.Error as exc:
        raise DataError(f"{path} line {reader.line_num}: not valid CSV ({exc})") from None
    if header is None or not paths:
        raise DataError(f"{path} lists no images (a header row, then one path,label row each)")
    classes, labels = np.unique(np.array(names), return_inverse=True)
    if len(classes) < 2:
        raise DataError(
            f"{path}: every label is {classes[0]!r}: a classifier needs at least two classes"
        )
    gone = f"; {len(missing):,} listed image{'s' * (len(missing) != 1)} not found, left out"
    files = _image_files(
        paths,
        labels.astype(np.int64),
        [str(c) for c in classes],
        section,
        input_shape,
        path.name,
        note=gone if missing else "",
    )
    files.origin, files.missing = origin, missing
    return files


def _image_files(
    paths: list[str],
    labels: np.ndarray,
    classes: list[str],
    section: dict[str, Any],
    input_shape: tuple[int | None, ...] | None,
    name: str,
    note: str = "",
) -> ImageFiles:
    size, channels = image_geometry(section, input_shape)
    if size is None:
        size = _header_size(paths[0])
    resize = get_str(section, "resize", "stretch", RESIZE_MODES)
    mode = "grayscale" if channels == 1 else "rgb"
    how = "" if resize == "stretch" else f", {resize}"
    return ImageFiles(
        paths=paths,
        labels=labels,
        class_names=classes,
        size=size,
        channels=channels,
        resize=resize,
        cache=get_str(section, "cache", "auto", CACHE_MODES),
        corrupt=get_str(section, "corrupt_files", "skip", CORRUPT_MODES),
        memory_mb=(get_int(section, "max_memory_mb", 1, 1) if "max_memory_mb" in section else None),
        description=f"images: {name} ({size[0]}x{size[1]} {mode}{how}{note})",
    )


def _header_size(path: str) -> tuple[int, int]:
    """(height, width) the first image declares in its header (no decoding)."""
    try:
        with open_regular(path) as f:
            head = f.read(1 << 16)
        width, height, _ = image_size(head)
    except (NotRegularFile, ImageHeaderError, OSError) as exc:
        raise DataError(
            f'cannot read the size of image {path} ({exc}); set "image_size" in the data section'
        ) from None
    if not width or not height:
        raise DataError(f'image {path} declares a size of 0; set "image_size"')
    return height, width


def image_geometry(
    section: dict[str, Any],
    input_shape: tuple[int | None, ...] | None,
) -> tuple[tuple[int, int] | None, int]:
    """The image size ((height, width) or None) and channels (1 or 3) images load with.

    From the section's ``image_size`` and ``color_mode``; an image-shaped model
    input ``(height, width, 1 or 3)`` overrides them.
    """
    mode = get_str(section, "color_mode", "rgb", ("grayscale", "rgb"))
    channels = 1 if mode == "grayscale" else 3
    size = None
    if "image_size" in section:
        value = section["image_size"]
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value, value]
        if not (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
        ):
            raise DataError(
                f'data section: "image_size" must be [height, width] in pixels; got {value!r}'
            )
        size = (value[0], value[1])
    if input_shape is not None:
        # A model input that is not an image (h, w, 1|3) is left to check_fit to report.
        shape = tuple(input_shape)
        if len(shape) == 3 and shape[2] in (1, 3, None):
            if shape[0] and shape[1]:
                size = (int(shape[0]), int(shape[1]))
            if shape[2]:
                channels = int(shape[2])
    return size, channels


# --------------------------------------------------------------------------- decoding


def _to_aspect(image: Any, size: tuple[int, int], mode: str) -> Any:
    """A uint8 image (h, w, c) centre-cropped (``crop``) or zero-padded (``pad``) to the
    aspect ratio of ``size`` (Keras's ``crop_to_aspect_ratio`` / ``pad_to_aspect_ratio``);
    as it is for ``stretch``."""
    import tensorflow as tf

    th, tw = size
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    if mode == "crop":
        ch = tf.clip_by_value(w * th // tw, 1, h)
        cw = tf.clip_by_value(h * tw // th, 1, w)
        return image[(h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw]
    if mode == "pad":
        ph = tf.maximum(h, w * th // tw)
        pw = tf.maximum(w, h * tw // th)
        return tf.image.pad_to_bounding_box(image, (ph - h) // 2, (pw - w) // 2, ph, pw)
    return image


def _fit_group(images: list[Any], size: tuple[int, int], channels: int, mode: str) -> Any:
    """Decoded uint8 RGB images (a list; each (h, w, 3)) -> uint8 (count, height,
    width, channels): cropped or padded to the aspect ratio (:func:`_to_aspect`), then
    stretched to ``size``, rounded to whole levels (at most 0.5 of 255 away).

    A single image is resized whatever its size (a resize to the same size gives the
    same pixels). Several (:func:`_fit_several`): one ``cond`` for them all, not one per
    image: the ops of a ``tf.data`` function are made again at every iterator start
    (each epoch), and a ``cond`` per image, with its resize, made that ~0.2 s at 32
    images a group. uint8 until the batch is scaled (:func:`_scaled`): a quarter of the
    bytes to copy."""
    import tensorflow as tf

    if len(images) == 1:  # one image (a retry, a strict decode): no cond, no loop to make
        resized = tf.image.resize(_to_aspect(images[0], size, mode), size, antialias=True)
        group = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)[None]
    else:
        group = _fit_several(images, size, mode)
    if channels == 1:
        gray = tf.round(tf.image.rgb_to_grayscale(tf.cast(group, tf.float32)))
        group = tf.cast(tf.clip_by_value(gray, 0, 255), tf.uint8)
    return group


def _fit_several(images: list[Any], size: tuple[int, int], mode: str) -> Any:
    """:func:`_fit_group`'s work for several images, as uint8 RGB: stacked as they are
    when every one already has ``size`` (the usual folder), otherwise fitted one by one
    in a loop (one resize to make, not one per image)."""
    import tensorflow as tf

    th, tw = size

    def fitted() -> Any:
        listed = tf.TensorArray(
            tf.uint8, len(images), infer_shape=False, element_shape=tf.TensorShape([None, None, 3])
        )
        for k, image in enumerate(images):
            listed = listed.write(k, image)

        def one(k: Any) -> Any:
            image = _to_aspect(listed.read(k), size, mode)
            return tf.image.resize(image, size, antialias=True)

        out = tf.map_fn(
            one, tf.range(len(images)), fn_output_signature=tf.TensorSpec((th, tw, 3), tf.float32)
        )
        return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)

    sides = tf.stack([tf.shape(image)[:2] for image in images])
    return tf.cond(
        tf.reduce_all(tf.equal(sides, size)),
        lambda: tf.stack([tf.reshape(image, (th, tw, 3)) for image in images]),
        fitted,
    )


def _scaled(images: Any) -> Any:
    """uint8 [0, 255] -> float32 [0, 1]. Elementwise, so a whole batch at once in the
    pipeline: one vectorised op instead of several per image."""
    import tensorflow as tf

    return tf.cast(images, tf.float32) / 255.0


def _to_model(pixels: Any, size: tuple[int, int], channels: int, mode: str) -> Any:
    """Decoded uint8 RGB pixels -> float32 (height, width, channels) in [0, 1]: the same
    ops as the pipeline, so a strict decode and a streamed one give the same numbers."""
    return _scaled(_fit_group([pixels], size, channels, mode)[0])


def decode_image(path: str | Path, channels: int) -> np.ndarray:
    """One image as uint8 (height, width, channels), read strictly: ``DataError`` names it."""
    try:
        with open_regular(path) as f:
            data = f.read()
        check_pixels(data, f"image {path}")
    except (NotRegularFile, LimitExceeded) as exc:
        raise DataError(str(exc)) from None
    except ImageHeaderError as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from None
    import tensorflow as tf

    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, OSError) as exc:
        reason = clean_message(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        raise DataError(f"cannot read image {path}: {reason[:200]}") from None
    if channels == 1:
        image = tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))), tf.uint8)
    return image.numpy()


def load_pixels(files: ImageFiles, indices: np.ndarray) -> np.ndarray:
    """The images at ``indices``, decoded strictly (a bad file is a ``DataError`` naming it),
    as float32 (n, height, width, channels) in [0, 1]. More than ``max_memory_mb``
    (default :data:`MAX_IMAGE_MB`) is refused."""
    indices = np.asarray(indices, dtype=np.int64)
    limit = MAX_IMAGE_MB if files.memory_mb is None else files.memory_mb
    needed = files.decoded_mb(len(indices))
    if needed > limit:
        h, w = files.size
        raise DataError(
            f"{files.description}: {len(indices)} images at {h}x{w}x{files.channels} "
            f"need {needed:,.0f} MB in memory, more than the limit of {limit:,} MB; "
            "training streams them, but this step needs them all at once: choose a "
            'smaller "image_size", use fewer images, or raise "max_memory_mb"'
        )
    out = np.empty((len(indices), *files.size, files.channels), np.float32)
    for k, i in enumerate(indices):
        pixels = decode_image(files.paths[i], 3)  # checks the header before TensorFlow
        import tensorflow as tf

        out[k] = _to_model(tf.constant(pixels), files.size, files.channels, files.resize).numpy()
    return out


def why_unreadable(path: str) -> str:
    """Why one image file cannot be used, in words (``""`` when it decodes)."""
    try:
        decode_image(path, 3)
    except DataError as exc:
        return str(exc)
    return ""
