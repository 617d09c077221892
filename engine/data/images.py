"""Image sources that stream: a folder of class sub-folders, or a CSV list of images.

Loading an image source only *indexes* it: file names and labels, no decoding
(:func:`index_folder`, :func:`index_list`), so a folder of 100,000 photos is ready in
about a second. The pixels come later, batch by batch, from a ``tf.data`` pipeline
(:func:`image_pipeline`) that reads, checks, decodes (PNG, JPEG, BMP, GIF: the first
frame) and resizes files :data:`READ_GROUP` at a time, groups in parallel, batches
and prefetches; nothing holds the whole set
unless a cache is asked for (``"cache": "memory"``, or ``"file"`` beside the run).

A file that cannot be decoded while training (corrupt, cut short, or declaring more
pixels than :data:`engine.limits.IMAGE_MEGAPIXELS`, checked from its header before it
is decoded) is skipped and counted by a :class:`SkipTracker` (``"corrupt_files":
"skip"``, the default) or ends the run naming it (``"error"``). :func:`load_pixels`
decodes a few chosen images strictly, in Python (previews, evaluation, small sets).

TensorFlow is imported inside the functions that decode.
"""

from __future__ import annotations

import csv
import functools
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.build.errors import clean_message
from engine.data.image_size import ImageHeaderError, check_pixels, image_size
from engine.data.sources import DataError, get_int, get_str
from engine.limits import (
    CSV_MB,
    IMAGE_MEGAPIXELS,
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
    the CSV). A missing file, an empty label or a short row names the CSV's line."""
    path_column = get_str(section, "path_column", "path")
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
                raise DataError(f"{path} line {line}: image file not found: {file}")
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
    files = _image_files(
        paths, labels.astype(np.int64), [str(c) for c in classes], section, input_shape, path.name
    )
    files.origin = origin
    return files


def _image_files(
    paths: list[str],
    labels: np.ndarray,
    classes: list[str],
    section: dict[str, Any],
    input_shape: tuple[int | None, ...] | None,
    name: str,
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
        description=f"images: {name} ({size[0]}x{size[1]} {mode}{how})",
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


READ_GROUP = 32
"""Most files the pipeline reads, checks and decodes in one call (:func:`_decode_group`)."""
GROUP_MB = 16
"""Most MB of decoded pixels one call holds at once: a folder whose first image is large
is read in smaller groups (:func:`_group_size`; 12-megapixel photos: one at a time)."""


def _group_size(files: ImageFiles, indices: np.ndarray) -> int:
    """Files per call: :data:`READ_GROUP`, or fewer when the first file declares so many
    pixels that :data:`GROUP_MB` would not hold them (one header read, no decoding)."""
    if not len(indices):
        return READ_GROUP
    try:
        height, width = _header_size(files.paths[indices[0]])
    except DataError:
        return READ_GROUP  # the pipeline skips it and counts it
    return int(np.clip(GROUP_MB * 2**20 // (height * width * 3), 1, READ_GROUP))


def _header_weights() -> np.ndarray:
    """(26, 8) weights turning an image's first 26 bytes into the sides PNG (big-endian
    uint32 at 16, 20), GIF (little-endian uint16 at 6, 8) and BMP (little-endian int32
    at 18, 22) declare, then its first two bytes (the magic number), then 0: one matrix
    product for a whole group of files."""
    w = np.zeros((26, 8), np.int64)
    for k in range(4):
        w[16 + k, 0] = w[20 + k, 1] = 256 ** (3 - k)
        w[18 + k, 4] = w[22 + k, 5] = 256**k
    for k in range(2):
        w[6 + k, 2] = w[8 + k, 3] = 256**k
    w[0, 6], w[1, 6] = 256, 1
    return w


def _format_table() -> np.ndarray:
    """Magic number -> which declared area applies: 0 PNG, 1 GIF, 2 BMP, 4 JPEG, 3 (an
    area of 0: refused) anything else."""
    table = np.full(65536, 3, np.int32)
    table[0x8950], table[0x4749], table[0x424D], table[0xFFD8] = 0, 1, 2, 4
    return table


def _within_limit(contents: Any) -> Any:
    """Graph ops: for each encoded file of a group (a 1-D string tensor of a static
    length), whether it is a PNG, GIF, BMP or JPEG declaring at most
    :data:`engine.limits.IMAGE_MEGAPIXELS` in its header (False for anything else).

    Vectorised over the group, because in a ``tf.data`` map each op costs a few
    microseconds per call whatever its size: the first 26 bytes of every file as one
    matrix (``decode_raw`` pads short files), one product with :func:`_header_weights`
    for every non-JPEG format's sides and the magic number, one lookup of the format;
    a JPEG's size marker can sit anywhere in its header, so ``extract_jpeg_shape``
    reads it, given a 1x1 JPEG for anything else (no ``cond`` per image)."""
    import tensorflow as tf

    raw = tf.cast(tf.io.decode_raw(contents, tf.uint8, fixed_length=26), tf.int64)
    values = tf.linalg.matmul(raw, tf.constant(_header_weights()))  # (count, 8)
    values = tf.minimum(values, 2**32 - values)  # BMP's sides are signed
    areas = tf.reduce_prod(tf.reshape(values, (-1, 4, 2)), axis=2)  # PNG, GIF, BMP, 0
    kind = tf.gather(tf.constant(_format_table()), values[:, 6])
    probes = tf.where(tf.equal(kind, 4), contents, _TINY_JPEG)
    shapes = [tf.image.extract_jpeg_shape(p, tf.int64) for p in tf.unstack(probes)]
    jpeg = tf.reduce_prod(tf.stack(shapes)[:, :2], axis=1, keepdims=True)
    pixels = tf.gather(tf.concat([areas, jpeg], 1), kind, batch_dims=1)
    # 0 (not an image) wraps to the largest unsigned number: one comparison refuses both
    return tf.cast(pixels - 1, tf.uint64) < IMAGE_MEGAPIXELS.value() * 10**6


_TINY_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010101012c012c0000ffdb004300100b0c0e0c0a100e0d0e1211101318281a"
    "181616183123251d283a333d3c3933383740485c4e404457453738506d51575f626768673e4d71797064"
    "785c656763ffc0000b080001000101011100ffc4001f0000010501010101010100000000000000000102"
    "030405060708090a0bffc400b5100002010303020403050504040000017d010203000411051221314106"
    "13516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a34353637"
    "38393a434445464748494a535455565758595a636465666768696a737475767778797a83848586878889"
    "8a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6"
    "d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00f3faffd9"
)
"""A 1x1 black JPEG: what :func:`_within_limit` measures when the file is not a JPEG."""


def _read_checked(paths: Any, group: int) -> Any:
    """Graph ops: read up to ``group`` files (a 1-D string tensor; padded with its first
    file to exactly ``group``) and check their declared sizes together; a file beyond
    the pixel limit is replaced by empty bytes, whose decode then fails: nothing is
    allocated for it, and no assert op is needed."""
    import tensorflow as tf

    padded = tf.concat([paths, tf.fill([group], paths[0])], 0)[:group]
    contents = tf.stack([tf.io.read_file(p) for p in tf.unstack(padded, group)])
    return tf.where(_within_limit(contents), contents, tf.constant(b""))


def _decode_group(paths: Any, size: tuple[int, int], channels: int, mode: str, group: int) -> Any:
    """Graph ops: read, check, decode and resize up to ``group`` files in one call, to
    uint8 (count, height, width, channels) (the pipeline scales whole batches). One
    file that cannot be read or decoded fails the whole call."""
    import tensorflow as tf

    contents = _read_checked(paths, group)
    images = [
        tf.io.decode_image(c, channels=3, expand_animations=False)
        for c in tf.unstack(contents, group)
    ]
    return _fit_group(images, size, channels, mode)[: tf.shape(paths)[0]]


@functools.cache
def _group_decoder(size: tuple[int, int], channels: int, mode: str, group: int) -> Any:
    """:func:`_decode_group` as a ``tf.function`` traced once per process and geometry,
    which every pipeline's map calls: a run's training, validation and evaluation
    pipelines trace the ~400 ops of a 32-file group once, not three times (~0.15 s each)."""
    import tensorflow as tf

    return tf.function(
        lambda paths: _decode_group(paths, size, channels, mode, group),
        input_signature=[tf.TensorSpec([None], tf.string)],
        autograph=False,
    )


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


# --------------------------------------------------------------------------- streaming


class SkipTracker:
    """Which files of a pipeline were decoded: those never decoded after a whole epoch
    could not be, and were skipped (``ignore_errors``). Graph-only bookkeeping: one bool
    per file, set when the batch holding it is made."""

    def __init__(self, files: ImageFiles) -> None:
        import tensorflow as tf

        self.files = files
        self.seen = tf.Variable(tf.zeros([len(files)], tf.bool), trainable=False)
        self.used = np.zeros(len(files), bool)
        self.reported: set[int] = set()

    def mark(self, indices: Any, value: Any) -> Any:
        """``value`` once the files at ``indices`` (a batch's) are marked decoded (inside
        a ``tf.data`` map: one scatter per batch, not one per image)."""
        import tensorflow as tf

        indices = tf.reshape(indices, [-1, 1])
        with tf.control_dependencies([value]):
            update = self.seen.scatter_nd_update(indices, tf.ones(tf.shape(indices)[:1], tf.bool))
        with tf.control_dependencies([update]):
            return tf.identity(value)

    def skipped(self) -> list[int]:
        """Indices of files a finished epoch used but never decoded, not reported before."""
        missing = np.flatnonzero(self.used & ~self.seen.numpy())
        new = [int(i) for i in missing if int(i) not in self.reported]
        self.reported.update(new)
        return new

    def total(self) -> int:
        return len(self.reported)

    def describe(self, indices: list[int], shown: int = 5, skipped: bool = True) -> str:
        """ "3 images could not be decoded and were skipped: a.png (why), ..."."""
        names = []
        for i in indices[:shown]:
            where = f" ({self.files.origin[i]})" if self.files.origin else ""
            reason = why_unreadable(self.files.paths[i])
            reason = reason.split(": ", 1)[-1] if reason else "could not be decoded"
            names.append(f"{self.files.paths[i]}{where}: {reason}")
        more = f" (and {len(indices) - shown} more)" if len(indices) > shown else ""
        count = f"{len(indices)} image{'s' if len(indices) != 1 else ''}"
        verb = ("were" if len(indices) != 1 else "was") + " skipped" if skipped else ""
        return f"{count} could not be read{' and ' + verb if verb else ''}: " + (
            "; ".join(names) + more
        )


def image_pipeline(
    files: ImageFiles,
    indices: np.ndarray,
    batch_size: int,
    labels: np.ndarray | None = None,
    shuffle: bool = False,
    seed: int = 0,
    cache_file: Path | None = None,
    tracker: SkipTracker | None = None,
    transform: Any = None,
) -> Any:
    """A ``tf.data.Dataset`` of batches of the images at ``indices`` (and ``labels``).

    Files are read, header-checked, decoded and resized :data:`READ_GROUP` at a time
    (:func:`_decode_group`; fewer when they are large: :func:`_group_size`), groups in
    parallel (AUTOTUNE), re-cut into batches, then scaled to [0, 1] (and
    ``transform``-ed) a batch at a time, and prefetched.
    Without a cache, each epoch reshuffles the file order (a full shuffle of indices,
    cheap; shuffled batches then take groups as they finish decoding, so a seeded run's
    batches are not bit-for-bit repeatable); with one (``memory``, or ``file`` when
    ``cache_file`` is given), the decoded images are kept after the first epoch and
    reshuffled through a buffer of up to 2,048 images, over an order seeded once.

    A file that cannot be read or decoded fails its group's call; the group's files are
    then retried one by one after the last group of the epoch (so they come last), and
    only the bad file is skipped (``ignore_errors``) and, with a ``tracker``, counted.
    """
    import tensorflow as tf

    indices = np.asarray(indices, dtype=np.int64)
    n = len(indices)
    mode = files.cache
    if mode == "auto":
        budget = DEFAULT_CACHE_MB if files.memory_mb is None else files.memory_mb
        mode = "memory" if files.decoded_mb(n) <= budget else "none"
    if mode == "file" and cache_file is None:
        mode = "none"
    if tracker is not None:
        tracker.used[indices] = True
    order = np.random.default_rng(seed).permutation(n) if (shuffle and mode != "none") else None
    if order is not None:
        indices = indices[order]
        labels = None if labels is None else np.asarray(labels)[order]
    size, channels, resize = files.size, files.channels, files.resize
    group_size = _group_size(files, indices)
    columns = [tf.constant([files.paths[i] for i in indices], tf.string), tf.constant(indices)]
    if labels is not None:
        columns.append(tf.constant(np.asarray(labels)))
    # no AutoGraph (no Python control flow on tensors here): converting costs ~0.5 s a function
    plain = tf.autograph.experimental.do_not_convert
    # the positions of the groups being decoded: in from a group's start until it is
    # done; still in after an epoch's last group: their group failed (or was cut off
    # with the iteration), so each is retried on its own. A hash table, not a
    # variable: a variable made under a distribution strategy's scope is mirrored
    started = tf.lookup.experimental.MutableHashTable(tf.int64, tf.int32, 0)

    def group(position: Any, paths: Any, *rest: Any) -> Any:
        # data edges around the call: a control edge on a call that ``tf.data`` inlines
        # does not wait for its outputs
        with tf.control_dependencies([started.insert(position, tf.ones_like(position, tf.int32))]):
            paths = tf.identity(paths)
        images = _group_decoder(size, channels, resize, group_size)(paths)
        decoded = tf.where(tf.size(images) >= 0, position, position)
        with tf.control_dependencies([started.remove(decoded)]):
            return (tf.identity(images), *rest)

    def alone(position: Any, paths: Any, *rest: Any) -> Any:
        return (_group_decoder(size, channels, resize, 1)(paths), *rest)

    def retries(_: Any) -> Any:
        missed = tf.sort(tf.reshape(started.export()[0], [-1]))  # in file order
        with tf.control_dependencies([started.remove(missed)]):
            missed = tf.identity(missed)
        again = tf.data.Dataset.from_tensor_slices(
            (missed, *(tf.gather(c, missed) for c in columns))
        ).batch(1)
        decoded = again.map(plain(alone), num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
        # usually there are none: an empty dataset then, so the decode function is not
        # even made (that took ~0.03 s at each epoch's end); shapes as ``decoded``'s
        k = tf.size(missed)
        empty = [tf.zeros([0, k, *c.shape[1:]], c.dtype) for c in columns[1:]]
        none = tf.data.Dataset.from_tensor_slices(
            (tf.zeros([0, k, *size, channels], tf.uint8), *empty)
        )
        return tf.cond(k > 0, lambda: decoded, lambda: none)

    def finish(images: Any, where: Any, *label: Any) -> Any:
        images = _scaled(images)  # per batch: one op for all its images
        if tracker is not None:
            images = tracker.mark(where, images)
        if transform is not None:
            images = transform(images)
        return (images, label[0]) if label else images

    ds = tf.data.Dataset.from_tensor_slices((np.arange(n, dtype=np.int64), *columns))
    if shuffle and mode == "none":  # a full shuffle of file names, not of images
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    # one call per group: tf.data's per-element costs (a map call, an error check, a
    # batch slot) are paid once per group of images, not per image. Shuffled
    # (training): groups leave the map in the order they finish decoding (a slow PNG
    # does not hold up the JPEGs behind it); in order otherwise (validation, predictions)
    ds = ds.batch(group_size).map(
        plain(group), num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle
    )
    # the retries start once the last group is done (concatenate opens them then)
    ds = ds.ignore_errors().concatenate(tf.data.Dataset.range(1).flat_map(retries))
    if mode == "none":
        ds = ds.rebatch(batch_size)
    else:
        ds = ds.unbatch()
        ds = ds.cache() if mode == "memory" else ds.cache(str(cache_file))
        if shuffle:
            ds = ds.shuffle(min(n, 2048), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
    ds = ds.map(plain(finish), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def clear_cache_files(folder: Path, prefix: str) -> None:
    """Remove what an earlier ``cache(filename)`` left under ``folder/prefix*``."""
    for path in Path(folder).glob(f"{prefix}*"):
        try:
            path.unlink()
        except OSError:
            pass
