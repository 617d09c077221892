"""The ``load_data()`` function of a generated script, and its helpers.

The script must run without LayerLab, so the data loading of :mod:`engine.data.dataset`
and :mod:`engine.data.sources` is written out here as TEXT (the same sources,
splits, seeds and standardisation). :func:`data_code` picks the pieces a
project's data section needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.codegen.data_table import csv_code, is_npy_pair, npy_code
from engine.codegen.text import CodegenError, ScriptPart, call_code, dedupe, docstring, literal
from engine.data.dataset import ONE_HOT_LOSSES, SOURCES, loss_key
from engine.data.images import CORRUPT_MODES, RESIZE_MODES, image_geometry
from engine.data.sources import (
    BUILTINS,
    DataError,
    get_digit_classes,
    get_float,
    get_int,
    get_str,
    get_task,
)

_SPLIT = '''
def split(y, validation, test, seed, classification):
    """Seeded (train, validation) indices, as LayerLab splits (the test share is left out).

    Classification splits are stratified: each class gives its share of samples.
    """
    n = len(y)
    order = np.random.default_rng(seed).permutation(n)
    n_val, n_test = round(n * validation), round(n * test)
    if not classification:
        return np.sort(order[n_val + n_test:]), np.sort(order[n_test:n_test + n_val])
    groups = [order[y[order] == c] for c in np.unique(y)]
    sizes = np.array([len(g) for g in groups])
    take_test = apportion(sizes, n_test, sizes)
    take_val = apportion(sizes - take_test, n_val, sizes)
    train = [g[t + v:] for g, t, v in zip(groups, take_test, take_val)]
    val = [g[t:t + v] for g, t, v in zip(groups, take_test, take_val)]
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def apportion(capacity, total, weights):
    """Share total out over groups in proportion to weights (largest remainders)."""
    share = weights / weights.sum() * total
    take = np.minimum(np.floor(share).astype(int), capacity)
    for i in np.argsort(-(share - take), kind="stable"):
        if take.sum() >= total:
            break
        if take[i] < capacity[i]:
            take[i] += 1
    return take
'''

_STANDARDIZE = '''
def standardize(x_train, x_val, onehot=()):
    """Scale each feature to mean 0 and std 1 with the training split's statistics."""
    mean = x_train.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = x_train.std(axis=0, dtype=np.float64).astype(np.float32)
    std[std < 1e-7] = 1.0
    if onehot:
        mean[list(onehot)] = 0.0
        std[list(onehot)] = 1.0
    return ((x_train - mean) / std).astype(np.float32), ((x_val - mean) / std).astype(np.float32)
'''

_ENCODE = '''
def encode_targets(values, task=None):
    """Targets -> (y, classification): int64 class indices, or float32 (n, k) values.

    Text is always classes; whole numbers with at most 20 distinct values are
    classes unless task is "regression".
    """
    if values.dtype.kind in "USO":
        _, y = np.unique(values.astype(str), return_inverse=True)
        return y.astype(np.int64).reshape(-1), True
    numbers = values.astype(np.float64)
    if task is None:
        whole = bool(np.all(numbers == np.round(numbers)))
        few = len(np.unique(numbers)) <= 20
        task = "classification" if whole and few and numbers.ndim == 1 else "regression"
    if task == "regression":
        y = numbers.astype(np.float32)
        return (y[:, None] if y.ndim == 1 else y), False
    _, y = np.unique(numbers, return_inverse=True)
    return y.astype(np.int64).reshape(-1), True
'''

_READ_NPZ = '''
def read_npz(path, x_name="x", y_name="y", task=None):
    """Inputs and targets from two arrays of a NumPy .npz file (one-hot targets -> indices)."""
    with np.load(path, allow_pickle=False) as archive:
        x, y = archive[x_name], archive[y_name]
    if x.ndim < 2:
        x = x.reshape(-1, 1)
    if (y.ndim == 2 and y.shape[1] > 1 and task != "regression"
            and np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)):
        y = y.argmax(axis=1)
    y, classification = encode_targets(y, task)
    return x.astype(np.float32), y, classification
'''

_IMAGE_SIZE = '''
def first_image_size(paths):
    """(height, width) of the first image: every image is resized to it."""
    image = tf.io.decode_image(tf.io.read_file(str(paths[0])), expand_animations=False)
    return tuple(image.shape[:2])
'''

_IMAGE_FOLDER = '''
def image_folder(folder, validation, seed, image_size, color_mode, resize, label_mode):
    """Stream a folder with one sub-folder per class, batch by batch, scaled to [0, 1].

    Differences from LayerLab (same folder, same seed):
    - Keras splits the shuffled file list as a whole; LayerLab splits each class
      (stratified), so the validation images are not the same ones, and a test share
      stays in the training set here.
    - Keras resizes bilinearly without antialiasing (LayerLab antialiases).
    - A file Keras cannot decode ends the run (LayerLab skips it by default).
    """
    suffixes = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
    if image_size is None:
        image_size = first_image_size(sorted(
            p for d in sorted(Path(folder).iterdir()) if d.is_dir() and not d.name.startswith(".")
            for p in sorted(d.iterdir()) if p.suffix.lower() in suffixes))
    options = dict(
        label_mode=label_mode, color_mode=color_mode, image_size=image_size,
        batch_size=BATCH_SIZE, seed=seed, crop_to_aspect_ratio=resize == "crop",
        pad_to_aspect_ratio=resize == "pad")
    if validation > 0:
        train, val = keras.utils.image_dataset_from_directory(
            folder, validation_split=validation, subset="both", **options)
    else:
        train, val = keras.utils.image_dataset_from_directory(folder, **options), None
    names = train.class_names
    labels = np.array([names.index(Path(p).parent.name) for p in train.file_paths])
    return train, val, labels
'''

_IMAGE_LIST = '''
def image_list(path, path_column="path", label_column="label"):
    """The (files, class indices, class names) of a CSV of path,label rows; listed files
    that do not exist are left out, as LayerLab leaves them out."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.DictReader(f) if any((v or "").strip() for v in r.values())]
    files = [str(Path(path).parent / r[path_column].strip()) for r in rows]
    found = [i for i, file in enumerate(files) if Path(file).is_file()]
    if len(found) < len(files):
        print(f"{len(files) - len(found)} listed images not found, left out")
    files, rows = [files[i] for i in found], [rows[i] for i in found]
    names, y = np.unique([r[label_column].strip() for r in rows], return_inverse=True)
    return files, y.astype(np.int64), [str(n) for n in names]


def stream_files(files, labels, image_size, color_mode, resize, shuffle, seed):
    """Batches of (image, label) decoded from files in parallel, scaled to [0, 1]."""
    resizing = keras.layers.Resizing(*image_size, crop_to_aspect_ratio=resize == "crop",
                                     pad_to_aspect_ratio=resize == "pad", antialias=True)
    channels = 1 if color_mode == "grayscale" else 3

    def load(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.cast(image, tf.float32)
        if channels == 1:
            image = tf.round(tf.image.rgb_to_grayscale(image))
        image = resizing(image / 255.0)
        return tf.clip_by_value(image, 0.0, 1.0), label

    data = tf.data.Dataset.from_tensor_slices((list(files), labels))
    if shuffle:
        data = data.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    data = data.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return data.batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE)
'''

_SCALE = '''
def scaled(data, mean=None, std=None):
    """Pixels 0-255 -> [0, 1] (then standardised when mean and std are given)."""
    def scale(x, y):
        x = tf.clip_by_value(x / 255.0, 0.0, 1.0)
        return (x if mean is None else (x - mean) / std), y
    return data.map(scale, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
'''

_STREAM_STATS = '''
def streamed_mean_std(data):
    """Per-pixel mean and std of a stream of (x, y) batches, in one pass (float64)."""
    total = squares = None
    count = 0
    for x, _ in data.as_numpy_iterator():
        x = x.astype(np.float64)
        total = x.sum(0) if total is None else total + x.sum(0)
        squares = (x * x).sum(0) if squares is None else squares + (x * x).sum(0)
        count += len(x)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    std[std < 1e-7] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)
'''


#: Built-in point sets: the same generators (and seeds) as engine.data.sources.
_PLANES = {
    "moons": '''
def make_data(n, noise, seed):
    """Two interleaving half circles (class 0 above, class 1 below)."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t0 = rng.uniform(0, np.pi, n0)
    t1 = rng.uniform(0, np.pi, n - n0)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    x = np.concatenate([upper, lower]) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(n0), np.ones(n - n0)])
    return x.astype(np.float32), y.astype(np.int64)
''',
    "circles": '''
def make_data(n, noise, seed):
    """A ring (class 0) around a circle (class 1)."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t = rng.uniform(0, 2 * np.pi, n)
    radius = np.where(np.arange(n) < n0, 1.0, 0.5)
    x = np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1) + rng.normal(0, noise, (n, 2))
    y = (np.arange(n) >= n0).astype(np.int64)
    return x.astype(np.float32), y
''',
    "spirals": '''
def make_data(n, noise, seed):
    """Two interleaved spirals."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    y = (np.arange(n) >= n0).astype(np.int64)
    along = np.concatenate([np.linspace(0, 1, n0), np.linspace(0, 1, n - n0)])
    angle = 1.75 * 2 * np.pi * along + np.pi * y
    x = np.stack([along * np.sin(angle), along * np.cos(angle)], axis=1)
    return (x + rng.normal(0, noise, (n, 2))).astype(np.float32), y
''',
    "xor": '''
def make_data(n, noise, seed):
    """Points in the four quadrants; class 1 where the signs of x1 and x2 differ."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2))
    x += np.sign(x) * 0.05
    y = (x[:, 0] * x[:, 1] < 0).astype(np.int64)
    return (x + rng.normal(0, noise, (n, 2))).astype(np.float32), y
''',
    "adding": '''
def make_data(n, length, seed):
    """The adding problem: (length, 2) sequences of values and two markers -> marked sum."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(n, length))
    markers = np.zeros((n, length))
    half = length // 2
    rows = np.arange(n)
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)[:, None]
    return x, y
''',
}


_BUILTIN_CLASSES = {
    "digits": 10,
    "digits-rows": 10,
    "iris": 3,
    "wine": 3,
    "breast_cancer": 2,
    "moons": 2,
    "circles": 2,
    "spirals": 2,
    "xor": 2,
    "adding": 0,
}


def data_code(
    section: dict[str, Any], base_dir: Any, input_shape: tuple | None, loss: Any
) -> ScriptPart:
    """The ``load_data()`` function (and its helpers) for a project's data section.

    Raises:
        CodegenError: For an unknown source or a bad key (the message names it).
    """
    part = ScriptPart()
    part.imports.add("import numpy as np")
    try:
        if not isinstance(section, dict):
            raise DataError(f"the data section must be an object; got {section!r}")
        source = section.get("source")
        val = get_float(section, "validation_split", 0.2, 0.0, 1.0)
        test = get_float(section, "test_split", 0.0, 0.0, 1.0)
        seed = get_int(section, "seed", 0)
        standardize = section.get("standardize")
        if standardize is not None and not isinstance(standardize, bool):
            raise DataError(
                f'data section: "standardize" must be true or false; got {standardize!r}'
            )
        body: list[str] = []
        classification = "True"
        onehot = ""
        if isinstance(source, str) and source.startswith("builtin:") and source[8:] in BUILTINS:
            name = source[8:]
            default_std = _builtin_code(name, section, seed, part, body)
            classification = "False" if name == "adding" else "True"
            part.task = "regression" if name == "adding" else "classification"
            part.num_classes = _BUILTIN_CLASSES.get(name, 0)
            if name in ("digits", "digits-rows") and get_digit_classes(section):
                part.num_classes = len(get_digit_classes(section) or [])
        elif source == "csv":
            path = _path_code(section, base_dir, part)
            body.append(csv_code(section, path, part))
            part.functions.append(_ENCODE)
            classification, onehot, default_std = "classification", "onehot", True
            part.task = get_task(section)
        elif source == "npz" and is_npy_pair(section):
            path = _path_code(section, base_dir, part)
            body.append(npy_code(section, path, part))
            part.functions.append(_ENCODE)
            classification, default_std = "classification", "x.ndim == 2"
            part.task = get_task(section)
        elif source == "npz":
            path = _path_code(section, base_dir, part)
            args = [path]
            for key in ("x", "y"):
                if key in section:
                    args.append(f"{key}_name={literal(get_str(section, key, key))}")
            if get_task(section):
                args.append(f"task={literal(get_task(section))}")
            body.append(call_code("x, y, classification = read_npz", args, "    "))
            part.functions += [_ENCODE, _READ_NPZ]
            classification, default_std = "classification", "x.ndim == 2"
            part.task = get_task(section)
        elif source in ("images", "image_list"):
            _image_code(section, base_dir, input_shape, loss, val, test, seed, part)
            return part
        else:
            raise DataError(f"unknown data source {source!r}; choose one of {', '.join(SOURCES)}")
    except DataError as exc:
        raise CodegenError(str(exc)) from None

    part.has_val = val > 0
    body.append(
        call_code(
            "train, val = split",
            [
                "y",
                f"validation={literal(val)}",
                f"test={literal(test)}",
                f"seed={seed}",
                f"classification={classification}",
            ],
            "    ",
        )
    )
    body.append("    x_train, y_train, x_val, y_val = x[train], y[train], x[val], y[val]")
    on = default_std if standardize is None else standardize
    if on is True:
        body.append(
            f"    x_train, x_val = standardize(x_train, x_val{', onehot' if onehot else ''})"
        )
    elif on == "x.ndim == 2":
        body.append("    if x.ndim == 2:  # tabular inputs are standardised")
        body.append("        x_train, x_val = standardize(x_train, x_val)")
    if on:
        part.functions.append(_STANDARDIZE)
    if loss_key(loss) in ONE_HOT_LOSSES:
        indent = "    "
        if classification == "classification":
            body.append("    if classification:  # the loss wants one-hot targets")
            indent = "        "
        elif classification == "False":
            indent = ""
        if indent:
            body += [
                f"{indent}num_classes = int(y.max()) + 1",
                f"{indent}y_train = np.eye(num_classes, dtype=np.float32)[y_train]",
                f"{indent}y_val = np.eye(num_classes, dtype=np.float32)[y_val]",
            ]
    body.append("    return (x_train, y_train), (x_val, y_val)")
    what = {"csv": "the CSV file", "npz": "the NumPy arrays", "images": "the image folders"}.get(
        source, f"the {source} data"
    )
    doc = f"    {docstring(f'Load {what}; split off {val:g} for validation (seed {seed}).')}"
    part.functions = [_SPLIT] + dedupe(part.functions)
    part.functions.insert(0, "def load_data():\n" + doc + "\n" + "\n".join(body) + "\n")
    return part


def _builtin_code(
    name: str, section: dict[str, Any], seed: int, part: ScriptPart, body: list[str]
) -> bool:
    """Body lines that set ``x`` and ``y`` for a built-in set; returns standardize's default."""

    if name in ("digits", "digits-rows"):
        part.imports.add("from sklearn.datasets import load_digits")
        body.append("    digits = load_digits()")
        scaled = "(digits.images / 16.0).astype(np.float32)"
        body.append(
            f"    x = {scaled}[..., None]  # (8, 8, 1) images in [0, 1]"
            if name == "digits"
            else f"    x = {scaled}  # 8 rows of 8 pixels in [0, 1]"
        )
        body.append("    y = digits.target.astype(np.int64)")
        classes = get_digit_classes(section)
        if classes is not None:
            body.append(
                f"    keep = np.isin(y, {classes})  # only these digits, as classes 0, 1, ..."
            )
            body.append(f"    x, y = x[keep], np.searchsorted({classes}, y[keep]).astype(np.int64)")
        return False
    if name in ("iris", "wine", "breast_cancer"):
        part.imports.add(f"from sklearn.datasets import load_{name}")
        body.append(f"    table = load_{name}()")
        body.append("    x, y = table.data.astype(np.float32), table.target.astype(np.int64)")
        return True
    part.functions.append(_PLANES[name])
    if name == "adding":
        samples = get_int(section, "samples", 1000, 1)
        length = get_int(section, "length", 50, 2)
        body.append(f"    x, y = make_data({samples}, length={length}, seed={seed})")
        return False
    samples = get_int(section, "samples", 500, 2)
    default_noise = {"moons": 0.1, "circles": 0.05, "spirals": 0.05, "xor": 0.0}[name]
    noise = get_float(section, "noise", default_noise)
    body.append(f"    x, y = make_data({samples}, noise={literal(noise)}, seed={seed})")
    return True


def _path_code(section: dict[str, Any], base_dir: Any, part: ScriptPart) -> str:
    """Source for the data path: ``DATA_DIR / "file"`` (absolute paths stay absolute)."""

    raw = get_str(section, "path", None)
    part.imports.add("from pathlib import Path")
    if base_dir is not None:
        where = literal(str(Path(base_dir).resolve()))
        part.constants.append(f"DATA_DIR = Path({where})  # relative data paths start here")
    else:
        part.constants.append(
            "DATA_DIR = Path(__file__).resolve().parent  # relative data paths start here"
        )
    if raw.startswith("~"):
        return f"DATA_DIR / Path({literal(raw)}).expanduser()"
    return f"DATA_DIR / {literal(raw)}"


def _image_geometry(
    section: dict[str, Any],
    input_shape: tuple | None,
) -> tuple[tuple[int, int] | None, str]:
    size, channels = image_geometry(section, input_shape)
    return (tuple(size) if size else None), ("grayscale" if channels == 1 else "rgb")


def _image_code(
    section: dict[str, Any],
    base_dir: Any,
    input_shape: tuple | None,
    loss: Any,
    val: float,
    test: float,
    seed: int,
    part: ScriptPart,
) -> None:
    """``load_data()`` for an image folder or list: it returns ``(train, None), (val,
    None)`` where each is a ``tf.data.Dataset`` of batches streamed from the files
    (``train.labels`` holds the training labels, for class weights)."""
    path = _path_code(section, base_dir, part)
    size, mode = _image_geometry(section, input_shape)
    resize = get_str(section, "resize", "stretch", RESIZE_MODES)
    get_str(section, "corrupt_files", "skip", CORRUPT_MODES)
    one_hot = loss_key(loss) in ONE_HOT_LOSSES
    standardize = section.get("standardize") is True
    part.imports |= {"import tensorflow as tf", "import keras", "from pathlib import Path"}
    part.task, part.streamed, part.has_val = "classification", True, val > 0
    body: list[str] = []
    if section.get("source") == "images":
        body.append(
            call_code(
                "train, val, labels = image_folder",
                [
                    path,
                    f"validation={literal(val)}",
                    f"seed={seed}",
                    f"image_size={literal(size)}",
                    f"color_mode={literal(mode)}",
                    f"resize={literal(resize)}",
                    f"label_mode={literal('categorical' if one_hot else 'int')}",
                ],
                "    ",
            )
        )
        body.append("    train_raw, val_raw = train, val")
        part.functions += [_IMAGE_SIZE, _IMAGE_FOLDER, _SCALE]
        scale = "scaled({}, mean, std)" if standardize else "scaled({})"
        if standardize:
            body.append("    mean, std = streamed_mean_std(scaled(train_raw))")
            part.functions.append(_STREAM_STATS)
        body.append(f"    train = {scale.format('train_raw')}")
        body.append(f"    val = None if val_raw is None else {scale.format('val_raw')}")
    else:
        columns = [
            f"{key}={literal(get_str(section, key, key[:-7]))}"
            for key in ("path_column", "label_column")
            if key in section
        ]
        body.append(call_code("files, y, names = image_list", [path, *columns], "    "))
        part.imports.add("import csv")
        size_code = literal(size) if size else "first_image_size(files)"
        body.append(
            call_code(
                "train_idx, val_idx = split",
                [
                    "y",
                    f"validation={literal(val)}",
                    f"test={literal(test)}",
                    f"seed={seed}",
                    "classification=True",
                ],
                "    ",
            )
        )
        body.append("    labels = y[train_idx]")
        target = "np.eye(len(names), dtype=np.float32)[y]" if one_hot else "y"
        body.append(f"    targets = {target}")
        args = f"{size_code}, {literal(mode)}, {literal(resize)}"
        body.append(
            "    train = stream_files([files[i] for i in train_idx], targets[train_idx], "
            f"{args}, True, {seed})"
        )
        body.append(
            "    val = stream_files([files[i] for i in val_idx], targets[val_idx], "
            f"{args}, False, {seed}) if len(val_idx) else None"
        )
        part.functions += [_IMAGE_SIZE, _IMAGE_LIST, _SPLIT]
        if standardize:
            body.append("    mean, std = streamed_mean_std(train)")
            body.append("    train = train.map(lambda x, t: ((x - mean) / std, t))")
            body.append(
                "    val = None if val is None else val.map(lambda x, t: ((x - mean) / std, t))"
            )
            part.functions.append(_STREAM_STATS)
    body.append("    train.labels = labels  # class indices of the training images")
    body.append("    return (train, None), (val, None)")
    what = "the image folders" if section.get("source") == "images" else "the image list"
    doc = docstring(f"Stream {what} in batches; split off {val:g} for validation (seed {seed}).")
    part.functions = dedupe(part.functions)
    part.functions.insert(0, "def load_data():\n    " + doc + "\n" + "\n".join(body) + "\n")
