"""Datasets for training: load a project's ``data`` section, split, standardise, serve.

``load_data({"source": "builtin:digits", "validation_split": 0.2})`` returns a
:class:`Dataset`: the inputs where the source left them (in memory, memory-mapped, or
image files) and index arrays per split. Sources (see :mod:`engine.data.sources` and
:mod:`engine.data.images`, streamed by :mod:`engine.data.image_stream`):

- ``builtin:<name>`` — one of :data:`BUILTINS` (offline, seeded by ``seed``);
  generated sets take ``samples`` and ``noise``, ``builtin:adding`` takes ``length``.
- ``csv`` — ``path``, ``target`` (default: the last column), optional ``features``,
  ``categorical`` (one-hot encoded, at most 1000 levels), ``task``, ``delimiter``
  (default: sniffed). Numbers must be finite and within float32's range.
- ``npz`` — ``path``, array names ``x`` and ``y`` (one-hot ``y`` becomes class indices,
  ``y`` shaped ``(n, 1)`` is read as ``(n,)``).
- ``images`` — ``path`` to a folder with one sub-folder per class, ``image_size``,
  ``color_mode`` (``grayscale``/``rgb``), ``resize`` (``stretch``/``crop``/``pad``),
  ``cache`` (``auto``/``none``/``memory``/``file``), ``corrupt_files``
  (``skip``/``error``), ``max_memory_mb`` (the in-memory cache's budget). Only indexed
  here; training streams the files. Hidden files and folders (and macOS's ``._*`` and
  ``__MACOSX``) are skipped.
- ``image_list`` — ``path`` to a CSV of ``path,label`` rows (paths relative to the CSV;
  ``path_column``, ``label_column`` rename them), then as ``images``.

Targets are class indices when they are text, or whole numbers with at most 20
distinct values; otherwise regression. ``"task": "classification"|"regression"``
overrides that. A classifier needs at least two classes; a numeric CSV target with a
few cells that are not numbers is a typo (the first is named), not a set of classes.

Common keys: ``validation_split`` (0.2), ``test_split`` (0), ``seed`` (0),
``standardize`` (true for tabular sources). Splits are stratified for
classification; standardisation is fitted on the training split only. Every
bad input raises :class:`DataError` with one message naming what is wrong.

TensorFlow is imported only by the functions that serve batches or decode images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.image_stream import SkipTracker, clear_cache_files, image_pipeline
from engine.data.images import ImageFiles, index_folder, index_list, load_pixels
from engine.data.sources import (
    BUILTINS,
    DataError,
    RawData,
    get_float,
    get_int,
    load_builtin,
    load_csv,
    load_npz,
    resolve_path,
)
from engine.limits import DATA_MEMORY_MB

SOURCES = tuple(f"builtin:{name}" for name in BUILTINS) + ("csv", "npz", "images", "image_list")
SPLITS = ("train", "validation", "test")
CHUNK_MB = 8
"""Inputs read at once when standardisation is fitted on streamed data."""
STRICT_HEAD = 64
"""Most images :meth:`Dataset.head` decodes one by one instead of through a pipeline."""


@dataclass
class Dataset:
    """Train / validation / test splits of one data source, kept as index arrays.

    The inputs stay where the source put them: an array in memory, a memory-mapped
    file (never copied whole), or image files (decoded batch by batch). A split's
    samples are ``x[parts[split]]``.

    Attributes:
        y: Every target; int64 class indices (classification) or float32 ``(n, k)``.
        parts: ``{"train": indices, "validation": indices, "test": indices or None}``,
            each sorted.
        task: ``"classification"`` or ``"regression"``.
        num_classes: Number of classes (0 for regression).
        class_names: One name per class index.
        input_shape: Shape of one sample, without the batch axis.
        feature_names: Column names of tabular inputs.
        source: What the data is, in words.
        mean, std: The standardisation fitted on the training split (None when off);
            apply the same to new inputs with :meth:`transform`.
        x: Every input (array-like, samples on axis 0), or None for image files.
        images: The indexed image files, or None.

    ``x_train``, ``y_train``, ``x_val``, ``y_val``, ``x_test``, ``y_test`` are the
    splits as numpy arrays, standardised (made on first use, then kept: for small
    data). Training on streamed data uses :meth:`batches` instead.
    """

    y: np.ndarray
    parts: dict[str, np.ndarray | None]
    task: str
    num_classes: int
    class_names: list[str]
    input_shape: tuple[int, ...]
    feature_names: list[str] = field(default_factory=list)
    source: str = ""
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    x: Any = None
    images: ImageFiles | None = None
    _made: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------- splits as arrays
    def inputs(self, split: str) -> np.ndarray | None:
        """One split's inputs as a numpy array, standardised (made once, then kept)."""
        idx = self.parts.get(split)
        if idx is None:
            return None
        if split not in self._made:
            if self.images is not None:
                x = load_pixels(self.images, idx)
            else:
                x = np.asarray(self.x[idx], dtype=np.float32)
            self._made[split] = self.transform(x) if self.mean is not None else x
        return self._made[split]

    def targets(self, split: str) -> np.ndarray | None:
        """One split's targets (None when the split is empty by design)."""
        idx = self.parts.get(split)
        return None if idx is None else self.y[idx]

    @property
    def x_train(self) -> np.ndarray:
        return self.inputs("train")  # type: ignore[return-value]

    @property
    def y_train(self) -> np.ndarray:
        return self.targets("train")  # type: ignore[return-value]

    @property
    def x_val(self) -> np.ndarray:
        return self.inputs("validation")  # type: ignore[return-value]

    @property
    def y_val(self) -> np.ndarray:
        return self.targets("validation")  # type: ignore[return-value]

    @property
    def x_test(self) -> np.ndarray | None:
        return self.inputs("test")

    @property
    def y_test(self) -> np.ndarray | None:
        return self.targets("test")

    def count(self, split: str) -> int:
        """Samples in a split (0 when it is absent)."""
        idx = self.parts.get(split)
        return 0 if idx is None else len(idx)

    @property
    def streamed(self) -> bool:
        """The inputs are files or a memory map: train from :meth:`batches`, never
        from ``x_train`` (which would decode or copy the whole split)."""
        return (
            self.images is not None
            or isinstance(self.x, np.memmap)
            or not isinstance(self.x, np.ndarray)
        )

    def fits_in_memory(self) -> bool:
        """Whether the inputs are an array (a memory map included) whose float32 copy
        fits :data:`engine.limits.DATA_MEMORY_MB`: a run then trains from ``x_train``
        as ``model.fit`` on arrays does, not from :meth:`batches` (a Python gather per
        batch through ``tf.data``: 6-15 % more CPU per sample and a hand-over of the
        interpreter lock every batch, docs/benchmarks.md)."""
        if self.images is not None or not isinstance(self.x, np.ndarray):
            return False
        return self.x.size * 4 <= DATA_MEMORY_MB.value() * 10**6

    def take(self, split: str, n: int) -> np.ndarray:
        """The first ``n`` inputs of a split, standardised (reads only those)."""
        idx = self.parts.get(split)
        if idx is None:
            return np.empty((0, *self.input_shape), np.float32)
        if split in self._made:
            return self._made[split][:n]
        idx = idx[:n]
        if self.images is not None:
            x = load_pixels(self.images, idx)
        else:
            x = np.asarray(self.x[idx], dtype=np.float32)
        return self.transform(x) if self.mean is not None else x

    def head(self, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``n`` first samples of a split as arrays ``(x, y)``, standardised; from
        streamed data only those are read (an image that cannot be decoded is left out
        with its target). Up to :data:`STRICT_HEAD` images are decoded one by one, as
        the pipeline would decode them: starting a pipeline costs ~0.1 s, and a run
        asks for two heads (2 samples to build the train step, 64 for health probes)."""
        if not self.streamed or split in self._made:
            return self.inputs(split)[:n], self.targets(split)[:n]  # type: ignore[index]
        if self.images is not None and n <= STRICT_HEAD and split in self.parts:
            try:  # a few images: decoded one by one, no pipeline to start
                return self.take(split, n), self.y[self.parts[split][:n]]
            except DataError:
                pass  # the pipeline leaves the bad file out
        xs, ys, have = [], [], 0
        for xb, yb in self.batches(split, min(n, 256)).as_numpy_iterator():
            xs.append(xb)
            ys.append(yb)
            have += len(xb)
            if have >= n:
                break
        if not xs:
            return np.empty((0, *self.input_shape), np.float32), self.y[:0]
        return np.concatenate(xs)[:n], np.concatenate(ys)[:n]

    def predictions(
        self, model: Any, split: str, n: int, batch_size: int
    ) -> tuple[Any, np.ndarray]:
        """``model``'s predictions for up to ``n`` first samples of a split, and their
        targets. Streamed data is predicted batch by batch: only one batch of inputs is
        held at a time (an image that cannot be decoded is left out with its target)."""
        if not self.streamed:
            x, y = self.head(split, n)
            return model.predict(x, batch_size=batch_size, verbose=0), y
        preds, ys, have = [], [], 0
        for xb, yb in self.batches(split, batch_size).as_numpy_iterator():
            pred = model.predict_on_batch(xb)
            if isinstance(pred, (list, tuple, dict)):
                return pred, yb  # several outputs: no per-sample details
            preds.append(np.asarray(pred))
            ys.append(yb)
            have += len(yb)
            if have >= n:
                break
        if not preds:
            return np.empty((0,)), self.y[:0]
        return np.concatenate(preds)[:n], np.concatenate(ys)[:n]

    @property
    def target_shape(self) -> tuple[int, ...]:
        """Shape of one target (``()`` for class indices)."""
        return tuple(self.y.shape[1:])

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Raw inputs -> what the model was trained on (the stored standardisation)."""
        x = np.asarray(x, dtype=np.float32)
        if self.mean is None or self.std is None:
            return x
        return ((x - self.mean) / self.std).astype(np.float32)

    # ------------------------------------------------------------- streaming
    def batches(
        self,
        split: str,
        batch_size: int,
        labels: np.ndarray | None = None,
        with_labels: bool = True,
        shuffle: bool = False,
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        tracker: SkipTracker | None = None,
    ):
        """A batched, prefetched ``tf.data.Dataset`` of one split, read batch by batch.

        Args:
            split: ``train``, ``validation`` or ``test``.
            batch_size: Samples per batch.
            labels: The split's targets as the loss wants them (default: as stored).
            with_labels: False for inputs only.
            shuffle, seed: A seeded reshuffle each epoch.
            cache_dir: Where ``"cache": "file"`` writes its cache (the run directory).
            tracker: Counts image files that could not be decoded (images only).
        """
        import tensorflow as tf

        _check_batch_size(batch_size)
        idx = self.parts.get(split)
        if idx is None:
            idx = np.empty(0, np.int64)
        if with_labels and labels is None:
            labels = self.y[idx]
        mean = None if self.mean is None else tf.constant(self.mean)
        std = None if self.std is None else tf.constant(self.std)

        def standardise(x: Any) -> Any:
            return x if mean is None else (x - mean) / std

        if self.images is not None:
            cache_file = None
            if cache_dir is not None and self.images.cache == "file":
                clear_cache_files(Path(cache_dir), f"image-cache-{split}")
                cache_file = Path(cache_dir) / f"image-cache-{split}"
            return image_pipeline(
                self.images,
                idx,
                batch_size,
                labels=labels if with_labels else None,
                shuffle=shuffle,
                seed=seed,
                cache_file=cache_file,
                tracker=tracker,
                transform=standardise if mean is not None else None,
            )
        return _array_batches(
            self.x,
            idx,
            labels if with_labels else None,
            batch_size,
            shuffle,
            seed,
            self.mean,
            self.std,
        )

    def summary(self) -> dict[str, Any]:
        """Plain facts for the GUI: samples per split, classes, shapes (reads no inputs)."""
        out: dict[str, Any] = {
            "source": self.source,
            "task": self.task,
            "train": self.count("train"),
            "validation": self.count("validation"),
            "test": self.count("test"),
            "input_shape": list(self.input_shape),
            "target_shape": list(self.target_shape),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "standardized": self.mean is not None,
        }
        if self.images is not None:
            out["files"] = len(self.images)
        if self.feature_names:
            out["feature_names"] = list(self.feature_names)
        if self.task == "classification":
            out["class_counts"] = {
                name: np.bincount(self.y[idx], minlength=self.num_classes).tolist()
                for name, idx in (
                    ("train", self.parts["train"]),
                    ("validation", self.parts["validation"]),
                    ("test", self.parts.get("test")),
                )
                if idx is not None
            }
        return out


def _check_batch_size(batch_size: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(f"batch_size must be a whole number >= 1; got {batch_size!r}")


def _array_batches(
    x: Any,
    idx: np.ndarray,
    labels: np.ndarray | None,
    batch_size: int,
    shuffle: bool,
    seed: int,
    mean: np.ndarray | None,
    std: np.ndarray | None,
):
    """Batches gathered from an array-like (a memory map: only each batch is read)."""
    import tensorflow as tf

    idx = np.asarray(idx, dtype=np.int64)
    labels = None if labels is None else np.asarray(labels)
    sample_shape = tuple(x.shape[1:])

    def gather(positions: np.ndarray):
        positions = np.sort(positions)  # a memory map reads rows in file order
        xb = np.asarray(x[idx[positions]], dtype=np.float32)
        if mean is not None:
            xb = ((xb - mean) / std).astype(np.float32)
        if labels is None:
            return (xb,)
        return xb, labels[positions]

    def load(positions: Any):
        if labels is None:
            (xb,) = tf.numpy_function(gather, [positions], [tf.float32])
            xb.set_shape((None, *sample_shape))
            return xb
        out_type = tf.as_dtype(labels.dtype)
        xb, yb = tf.numpy_function(gather, [positions], [tf.float32, out_type])
        xb.set_shape((None, *sample_shape))
        yb.set_shape((None, *labels.shape[1:]))
        return xb, yb

    # no AutoGraph: these functions have no Python control flow on tensors, and converting
    # them cost ~1 s before a first batch (a profile: 1.2 s of 1.4 s building the dataset)
    plain = tf.autograph.experimental.do_not_convert
    n = len(idx)
    if shuffle:
        # one permutation of all positions per epoch, by NumPy (10 ms per 1,000,000; 0.1 s
        # in TensorFlow's shuffle ops): the first batch does not wait for a shuffle buffer
        # of every row to fill (0.2 s per 100,000 rows), and an epoch is a full shuffle

        def permutation(epoch_seed: np.ndarray) -> np.ndarray:
            rng = np.random.default_rng([seed, int(epoch_seed) & 0x7FFFFFFF])
            return rng.permutation(n).astype(np.int64)

        def epoch(epoch_seed: Any):
            order = tf.numpy_function(permutation, [epoch_seed], tf.int64)
            return tf.data.Dataset.from_tensor_slices(tf.reshape(order, [n])).batch(batch_size)

        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
        positions = seeds.flat_map(plain(epoch))
    else:
        positions = tf.data.Dataset.range(n).batch(batch_size)
    batches = positions.map(plain(load), num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE)


def load_data(
    data_section: dict[str, Any],
    base_dir: str | os.PathLike | None = None,
    input_shape: tuple[int | None, ...] | None = None,
) -> Dataset:
    """Load, split and standardise the data a project's ``data`` section declares.

    Image sources are only indexed here (no image is decoded); memory-mapped inputs
    are never copied whole. Splits are index arrays.

    Args:
        data_section: The project's ``data`` dict (``source`` plus source keys).
        base_dir: Folder that relative paths are resolved against (the project's).
        input_shape: The model's input shape without the batch axis; image folders
            are resized to it (it wins over ``image_size``).

    Raises:
        DataError: With one message naming the file, line, column, key or value.
    """
    if not isinstance(data_section, dict):
        raise DataError(f"the data section must be an object; got {data_section!r}")
    source = data_section.get("source")
    if not isinstance(source, str) or not source:
        raise DataError(
            f'data section: "source" is missing or not a text (got {source!r}); '
            f"choose one of {', '.join(SOURCES)}"
        )
    val = get_float(data_section, "validation_split", 0.2, 0.0, 1.0)
    test = get_float(data_section, "test_split", 0.0, 0.0, 1.0)
    if val + test >= 1.0:
        raise DataError(
            f"data section: validation_split {val:g} + test_split {test:g} "
            "leave no training data (their sum must be below 1)"
        )
    seed = get_int(data_section, "seed", 0)
    standardize = data_section.get("standardize")
    if standardize is not None and not isinstance(standardize, bool):
        raise DataError(f'data section: "standardize" must be true or false; got {standardize!r}')

    if source in ("images", "image_list"):
        return _image_dataset(source, data_section, base_dir, input_shape, val, test, seed)
    raw = _load_raw(source, data_section, base_dir, input_shape)
    return dataset_from_raw(raw, val, test, seed, standardize)


def _image_dataset(
    source: str,
    data_section: dict[str, Any],
    base_dir: str | os.PathLike | None,
    input_shape: tuple[int | None, ...] | None,
    val: float,
    test: float,
    seed: int,
) -> Dataset:
    if source == "images":
        folder = resolve_path(data_section, base_dir, want_dir=True)
        files = index_folder(folder, data_section, input_shape)
    else:
        files = index_list(resolve_path(data_section, base_dir), data_section, input_shape)
    raw = RawData(
        None,  # type: ignore[arg-type]  # the inputs are the files
        files.labels,
        "classification",
        files.class_names,
        [],
        files.description,
    )
    n, shape = len(files), (*files.size, files.channels)
    return _split(raw, n, shape, files, val, test, seed, data_section.get("standardize"))


def dataset_from_raw(
    raw: RawData, validation: float, test: float, seed: int, standardize: bool | None = None
) -> Dataset:
    """Split (and standardise) the samples of one source: ``raw.x`` is never copied
    whole (a memory map stays one; standardisation is fitted in chunks)."""
    shape = tuple(int(d) for d in raw.x.shape[1:])
    return _split(raw, len(raw.x), shape, None, validation, test, seed, standardize)


def _split(
    raw: RawData,
    n: int,
    shape: tuple[int, ...],
    files: ImageFiles | None,
    val: float,
    test: float,
    seed: int,
    standardize: bool | None,
) -> Dataset:
    if n < 2:
        raise DataError(f"{raw.description}: {n} sample(s) is too few to split")
    parts = split_indices(raw.y, raw.task, val, test, seed)
    data = Dataset(
        y=raw.y,
        parts={"train": parts[0], "validation": parts[1], "test": parts[2] if test > 0 else None},
        task=raw.task,
        num_classes=len(raw.class_names) if raw.task == "classification" else 0,
        class_names=list(raw.class_names) if raw.task == "classification" else [],
        input_shape=shape,
        feature_names=list(raw.feature_names),
        source=raw.description,
        x=raw.x,
        images=files,
    )
    if raw.standardize if standardize is None else standardize:
        # one pass over chunks of the training rows, in memory or not: no copy of the
        # training split, no float64 copy of it either (a profile: 2.8 s of a 1,000,000-row
        # CSV's load went to that copy and a whole-array std)
        data.mean, data.std = _fit_streamed(data, raw.onehot_columns)
    return data


def _load_raw(
    source: str,
    section: dict[str, Any],
    base_dir: str | os.PathLike | None,
    input_shape: tuple[int | None, ...] | None,
) -> RawData:
    if source.startswith("builtin:"):
        return load_builtin(source[len("builtin:") :], section)
    if source == "csv":
        return load_csv(resolve_path(section, base_dir), section)
    if source == "npz":
        return load_npz(resolve_path(section, base_dir), section)
    raise DataError(f"unknown data source {source!r}; choose one of {', '.join(SOURCES)}")


def split_indices(
    y: np.ndarray, task: str, validation: float, test: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded (train, validation, test) index arrays; stratified for classification.

    Each class gives ``validation`` and ``test`` of its samples (largest
    remainders settle the rounding so the totals match the fractions).
    """
    n = len(y)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val, n_test = round(n * validation), round(n * test)
    if validation > 0 and n_val == 0:
        raise DataError(
            f"validation_split {validation:g} of {n} samples leaves no "
            "validation samples; use more data or a larger split"
        )
    if test > 0 and n_test == 0:
        raise DataError(
            f"test_split {test:g} of {n} samples leaves no test samples; "
            "use more data or a larger split"
        )
    if n - n_val - n_test < 1:
        raise DataError(f"{n} samples leave no training data after the validation and test splits")
    if task != "classification":
        return (
            np.sort(order[n_val + n_test :]),
            np.sort(order[n_test : n_test + n_val]),
            np.sort(order[:n_test]),
        )
    groups = [order[y[order] == c] for c in np.unique(y)]
    sizes = np.array([len(g) for g in groups])
    spare = np.maximum(sizes - 1, 0)  # every class keeps a training sample if it can
    take_test = _apportion(spare, n_test, weights=sizes)
    take_val = _apportion(spare - take_test, n_val, weights=sizes)
    for name, asked, took in (
        ("validation_split", validation, take_val),
        ("test_split", test, take_test),
    ):
        if asked > 0 and took.sum() == 0:
            raise DataError(
                f"{name} {asked:g}: no class has a sample to spare ({n} samples "
                f"in {len(groups)} classes; every class keeps one for training); "
                "use more samples per class"
            )
    train, val, tst = [], [], []
    for group, k_test, k_val in zip(groups, take_test, take_val):
        tst.append(group[:k_test])
        val.append(group[k_test : k_test + k_val])
        train.append(group[k_test + k_val :])
    return tuple(np.sort(np.concatenate(p)) for p in (train, val, tst))  # type: ignore


def _apportion(
    capacity: np.ndarray,
    total: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Split ``total`` over groups in proportion to ``weights`` (default ``capacity``)."""
    weights = capacity if weights is None else weights
    share = weights / weights.sum() * total
    take = np.minimum(np.floor(share).astype(int), capacity)
    for i in np.argsort(-(share - take), kind="stable"):
        if take.sum() >= total:
            break
        if take[i] < capacity[i]:
            take[i] += 1
    return take


def _fit_streamed(data: Dataset, onehot_columns: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of the training inputs, read in chunks of about
    :data:`CHUNK_MB` (an array is never copied whole, a memory map never read whole;
    images are decoded batch by batch). Sums are taken around the first chunk's mean,
    in float64."""
    idx = data.parts["train"]
    per_sample = max(1, int(np.prod(data.input_shape)) * 4)
    rows = max(1, CHUNK_MB * 2**20 // per_sample)
    shift = s1 = s2 = None
    count = 0
    for chunk in _train_chunks(data, idx, rows):
        chunk = chunk.astype(np.float64)
        if shift is None:
            shift = chunk.mean(axis=0)
            s1 = np.zeros_like(shift)
            s2 = np.zeros_like(shift)
        d = chunk - shift
        s1 += d.sum(axis=0)
        s2 += (d * d).sum(axis=0)
        count += len(chunk)
    if shift is None or count == 0:
        raise DataError(f"{data.source}: no training sample could be read")
    m1 = s1 / count
    mean = (shift + m1).astype(np.float32)
    std = np.sqrt(np.maximum(s2 / count - m1 * m1, 0.0)).astype(np.float32)
    std[std < 1e-7] = 1.0
    if onehot_columns and len(data.input_shape) == 1:
        mean[onehot_columns] = 0.0
        std[onehot_columns] = 1.0
    return mean, std


def _train_chunks(data: Dataset, idx: np.ndarray, rows: int):
    if data.images is None:
        for start in range(0, len(idx), rows):
            yield np.asarray(data.x[idx[start : start + rows]], dtype=np.float32)
        return
    pipeline = image_pipeline(data.images, idx, min(rows, 256))
    yield from pipeline.as_numpy_iterator()


# --------------------------------------------------------------------------- labels and losses

_CLASSIFICATION_LOSSES = {
    "sparsecategoricalcrossentropy",
    "categoricalcrossentropy",
    "binarycrossentropy",
    "categoricalfocalcrossentropy",
    "binaryfocalcrossentropy",
    "categoricalhinge",
    "hinge",
    "squaredhinge",
    "kldivergence",
    "kld",
    "kullbackleiblerdivergence",
    "poisson",
}
_REGRESSION_LOSSES = {
    "meansquarederror",
    "mse",
    "meanabsoluteerror",
    "mae",
    "meanabsolutepercentageerror",
    "mape",
    "meansquaredlogarithmicerror",
    "msle",
    "huber",
    "logcosh",
    "cosinesimilarity",
}
ONE_HOT_LOSSES = {
    "categoricalcrossentropy",
    "categoricalfocalcrossentropy",
    "categoricalhinge",
    "kldivergence",
    "kld",
    "kullbackleiblerdivergence",
}
"""Loss keys (see :func:`loss_key`) that want one-hot labels."""


def loss_key(loss: Any) -> str:
    """``"categorical_crossentropy"``, ``"CategoricalCrossentropy"``, ``{"type": ...}`` -> key."""
    if isinstance(loss, dict):
        loss = loss.get("type") or loss.get("class_name") or loss.get("name") or ""
    return str(loss or "").lower().replace("_", "").replace(" ", "")


def labels_for_loss(y: np.ndarray, loss: Any, num_classes: int) -> np.ndarray:
    """Class indices as the loss wants them: one-hot for categorical losses, else unchanged."""
    if loss_key(loss) in ONE_HOT_LOSSES and num_classes > 0:
        return np.eye(num_classes, dtype=np.float32)[np.asarray(y, dtype=np.int64)]
    return y


def make_tf_dataset(
    x: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    cache: bool = True,
):
    """A batched ``tf.data.Dataset`` of arrays in memory (cached, seeded shuffle per
    epoch, prefetched); streamed data comes from :meth:`Dataset.batches`."""
    import tensorflow as tf

    _check_batch_size(batch_size)
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------- does it fit?


def _shape_text(shape: tuple) -> str:
    return str(tuple(shape))


def _units(n: int | None) -> str:
    return "1 unit" if n == 1 else f"{n} units"


def _matches(expected: tuple, given: tuple) -> bool:
    return len(expected) == len(given) and all(e is None or e == g for e, g in zip(expected, given))


def _model_shapes(model: Any) -> tuple[tuple, tuple]:
    """(input, output) shapes of a single-input, single-output Keras model, no batch axis."""
    ins, outs = model.input_shape, model.output_shape
    if isinstance(ins, list) or isinstance(outs, list):
        raise DataError(
            "the data gives one input and one target; the model has "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    return tuple(ins[1:]), tuple(outs[1:])


def check_fit(
    dataset: Dataset, model_input_shape: Any, model_output_shape: Any = None, loss: Any = None
) -> list[str]:
    """Why the data does not fit the model and loss; ``[]`` when everything fits.

    Args:
        dataset: The loaded data.
        model_input_shape: The model's input shape without the batch axis (a
            built ``keras.Model`` is accepted too: ``check_fit(data, model, loss)``).
        model_output_shape: The model's output shape without the batch axis.
        loss: The loss name (``"sparse_categorical_crossentropy"``, ``"mse"``, ...).
    """
    if hasattr(model_input_shape, "input_shape") and hasattr(model_input_shape, "outputs"):
        loss = model_output_shape
        try:
            model_input_shape, model_output_shape = _model_shapes(model_input_shape)
        except DataError as exc:
            return [str(exc)]
    expected_in = tuple(model_input_shape)
    out_shape = tuple(model_output_shape)
    problems: list[str] = []
    if not _matches(expected_in, dataset.input_shape):
        hint = ""
        if None not in expected_in and np.prod(expected_in) == np.prod(dataset.input_shape):
            hint = " (same number of values: a Reshape or Flatten layer would fit them)"
        problems.append(
            f"the model's input expects {_shape_text(expected_in)}; the data "
            f"gives {_shape_text(dataset.input_shape)}{hint}"
        )
    key = loss_key(loss)
    if dataset.task == "classification":
        problems.extend(_classification_problems(dataset, out_shape, key, loss))
    else:
        problems.extend(_regression_problems(dataset, out_shape, key, loss))
    return problems


def _classification_problems(data: Dataset, out_shape: tuple, key: str, loss: Any) -> list[str]:
    k = data.num_classes
    if key in _REGRESSION_LOSSES:
        return [
            f"loss {loss!r} is a regression loss but the data has {k} classes; use "
            "'sparse_categorical_crossentropy' (or 'binary_crossentropy' for 2 classes)"
        ]
    if len(out_shape) != 1:
        return [
            f"the model's output has shape {_shape_text(out_shape)} but the data has one "
            f"class label per sample; end with a Dense layer of {k} units (add Flatten "
            "or GlobalAveragePooling before it)"
        ]
    units = out_shape[0]
    if key in ("binarycrossentropy", "binaryfocalcrossentropy"):
        if k != 2:
            return [
                f"loss {loss!r} is for 2 classes but the data has {k} classes; use "
                "'sparse_categorical_crossentropy'"
            ]
        if units != 1:
            return [
                f"{loss} needs 1 output unit for 2 classes; the model's output has {_units(units)}"
            ]
        return []
    if units == k or units is None:
        return []
    if key in ONE_HOT_LOSSES:
        return [
            f"loss {loss!r} needs one output unit per class: the model's output has "
            f"{_units(units)} but the data has {k} classes"
        ]
    hint = "; or use 'binary_crossentropy' with 1 unit" if units == 1 and k == 2 else ""
    return [
        f"the model's output has {_units(units)} but the data has {k} classes"
        + (f"; loss {loss!r} needs one output unit per class" if key else "")
        + hint
    ]


def _regression_problems(data: Dataset, out_shape: tuple, key: str, loss: Any) -> list[str]:
    problems = []
    if key in _CLASSIFICATION_LOSSES:
        problems.append(
            f"loss {loss!r} is for classification but the data is regression "
            "(continuous targets); use 'mse' or 'mae'"
        )
    target = data.target_shape
    if not _matches(out_shape, target) and not (np.prod(out_shape) == 1 == np.prod(target)):
        problems.append(
            f"the model's output has shape {_shape_text(out_shape)} but the data's "
            f"targets have shape {_shape_text(target)}"
        )
    return problems
