"""Streaming an indexed image source (:class:`engine.data.images.ImageFiles`) through
``tf.data``: :func:`image_pipeline` reads, checks (the header's declared pixels against
:data:`engine.limits.IMAGE_MEGAPIXELS`, before decoding), decodes (PNG, JPEG, BMP, GIF:
the first frame) and resizes files :data:`READ_GROUP` at a time, groups in parallel,
re-cuts them into batches and prefetches; nothing holds the whole set unless a cache is
asked for (``"cache": "memory"``, or ``"file"`` beside the run).

A file that cannot be decoded while training (corrupt, cut short, deleted after
indexing, or beyond the pixel limit) is skipped and counted by a :class:`SkipTracker`
(``"corrupt_files": "skip"``, the default); the run decides what ``"error"`` does.

TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.images import (
    DEFAULT_CACHE_MB,
    ImageFiles,
    _fit_group,
    _header_size,
    _scaled,
    why_unreadable,
)
from engine.data.sources import DataError
from engine.limits import IMAGE_MEGAPIXELS

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
