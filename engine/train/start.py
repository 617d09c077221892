"""What a fresh run does to its model before the first ``fit``: load the imported
weights the project names, and let Normalization layers learn their mean and variance
from the training data. Shared by a ``fit`` run (:mod:`engine.train.fit`) and a cluster
run (:mod:`engine.train.distributed.loop`). Keras loads inside the functions only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from engine.build.weights import WeightsError, load_start_weights
from engine.data.dataset import Dataset
from engine.train.config import Emit
from engine.train.outputs import warn_about_output


def start_warnings(project: dict[str, Any], ds: Dataset, emit: Emit) -> None:
    """At a fresh run's start: ``warning`` events for an output layer that does not suit
    its loss (:mod:`engine.train.outputs`) and for listed images that do not exist."""
    warn_about_output(project, ds, emit)
    missing = ds.images.missing if ds.images is not None else []
    if missing:
        shown = "; ".join(missing[:5]) + (
            f" (and {len(missing) - 5:,} more)" if len(missing) > 5 else ""
        )
        count = f"{len(missing):,} listed image{'s were' if len(missing) != 1 else ' was'}"
        emit({"event": "warning", "message": f"{count} not found and left out: {shown}"})


def prepare_start(
    model: Any,
    project: dict[str, Any],
    base_dir: Any,
    train_inputs: Callable[[], Any],
    emit: Emit,
    weights: bool = True,
) -> list[str]:
    """Before a fresh run: load the imported weights the project names (see
    :mod:`engine.build.weights`) when ``weights`` and the training section's
    ``imported_weights`` allow, then let every Normalization layer given no mean and
    variance learn them from the training data (``train_inputs()``, called only
    then: a streamed set's pipeline is not built for nothing). What did not load is a warning
    (training goes on from fresh weights); returns notes for ``started``."""
    notes, loaded = [], None
    if weights and (project.get("training") or {}).get("imported_weights", True):
        try:
            loaded = load_start_weights(model, project, base_dir)
        except WeightsError as exc:
            emit({"event": "warning", "message": f"{exc}; the model starts from fresh weights"})
        if loaded is not None and loaded.fresh:
            emit({"event": "warning", "message": loaded.message()})
        elif loaded is not None:
            notes.append(loaded.message())
    for name in adapt_normalization(model, train_inputs, skip=loaded.loaded if loaded else ()):
        notes.append(f"Normalization '{name}' took its mean and variance from the training data")
    return notes


ADAPT_SAMPLES = 10_000
"""Streamed data: how many training samples Normalization layers learn from."""


def adapt_data(ds: Dataset) -> Callable[[], Any]:
    """What Normalization layers adapt to, made when called: the training inputs, or
    for streamed data a stream of its first :data:`ADAPT_SAMPLES` (never the whole set
    in memory)."""
    if not ds.streamed:
        return lambda: ds.x_train
    return lambda: ds.batches("train", 256, with_labels=False).take(math.ceil(ADAPT_SAMPLES / 256))


def adapt_normalization(model: Any, train_inputs: Callable[[], Any], skip: Any = ()) -> list[str]:
    """Normalization layers given no mean and variance (and not in ``skip``) learn them
    from what the training data looks like where it reaches them; returns their names."""
    import keras

    names, x_train = [], None
    for layer in model.layers:
        if (
            type(layer).__name__ != "Normalization"
            or layer.input_mean is not None
            or layer.name in skip
        ):
            continue
        feed = keras.Model(model.inputs, layer.input)
        x_train = train_inputs() if x_train is None else x_train
        layer.adapt(feed.predict(x_train, batch_size=1024, verbose=0))
        names.append(layer.name)
    return names
