"""Plain Keras ``model.fit`` on a LayerLab project's model and data: the other side of
the benchmarks that compare the engine's training with Keras's own (the same model
built by LayerLab's builder, the same optimizer, loss and metrics, no callbacks of
ours). Shared by ``bench/epoch_end_cost.py`` and ``bench/worker_overhead.py``."""

from __future__ import annotations

from typing import Any


def plain_fit(project: dict, ds: Any, callback: Any) -> None:
    """Fit ``project``'s model on the loaded data ``ds`` (its train and validation
    splits) for the project's epochs, with only ``callback`` (a Keras callback)."""
    import keras

    from engine.build.builder import build_model
    from engine.data.dataset import labels_for_loss
    from engine.model.project import Project
    from engine.train.config import make_loss, make_metrics, make_optimizer

    section = project["training"]
    keras.utils.set_random_seed(section["seed"])
    model = build_model(Project.from_dict(project))
    steps = -(-len(ds.x_train) // section["batch_size"])
    loss = section["loss"]
    model.compile(
        optimizer=make_optimizer(section, steps, section["epochs"]),
        loss=make_loss(section, loss),
        metrics=make_metrics(section, loss, ds.num_classes),
    )
    model.fit(
        ds.x_train,
        labels_for_loss(ds.y_train, loss, ds.num_classes),
        batch_size=section["batch_size"],
        epochs=section["epochs"],
        validation_data=(ds.x_val, labels_for_loss(ds.y_val, loss, ds.num_classes)),
        callbacks=[callback],
        verbose=0,
    )
