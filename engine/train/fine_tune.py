"""Fine-tuning in two phases (the training section's ``fine_tune``): phase 1 trains with
the frozen layers frozen; phase 2 unfreezes some of them (:func:`unfreeze`), recompiles
with a lower learning rate (:func:`phase_two_optimizer`) and trains on, in the same run
(:func:`fit_in_phases`, called by :mod:`engine.train.fit`). Keras loads inside the
functions only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.train.callbacks import RunState
from engine.train.config import base_learning_rate, make_optimizer, phase_two_section


def fit_in_phases(
    model: Any,
    fit_args: dict[str, Any],
    section: dict[str, Any],
    fine: dict[str, Any],
    run: RunState,
    total: int,
    steps: int,
    recompile: Callable[[Any], None],
) -> None:
    """Train epochs ``run.epochs_done``..``total`` in two phases (``fine_tune``).

    Phase 1 (up to ``after_epoch``) trains with the frozen layers frozen. It ends at
    ``after_epoch``, or earlier when early stopping stops it: the run then goes on with
    phase 2 (the weights early stopping restored, if it did). Phase 2 unfreezes the
    layers :func:`unfreeze` picks, recompiles with a fresh optimizer of the same type
    at the learning rate x ``learning_rate_factor`` (a schedule starts again over phase
    2, scaled by the factor: :func:`phase_two_optimizer`) and trains to ``total``;
    early stopping in phase 2 ends the run. One history,
    the same callbacks and run directory; a run resumed in phase 2 (its checkpoint holds
    the trainable layers and the optimizer) goes on in phase 2. A stop, a NaN or a
    signal in phase 1 ends the run there.
    """
    if run.phase == 1:
        end = min(total, fine["after_epoch"])
        if run.epochs_done < end:
            model.fit(**fit_args, epochs=end, initial_epoch=run.epochs_done)
        if run.stopped or run.nan_at or run.controls.stop.is_set() or run.epochs_done >= total:
            return
        early = run.epochs_done < end
        names = unfreeze(model, fine["unfreeze"])
        lr = base_learning_rate(section) * fine["learning_rate_factor"]
        factor = fine["learning_rate_factor"]
        recompile(phase_two_optimizer(section, factor, steps, total - run.epochs_done))
        run.phase, run.fine_tune_from = 2, run.epochs_done + 1
        if not names:
            run.emit(
                {
                    "event": "warning",
                    "message": "fine_tune: no layer was frozen, so phase 2 only lowers "
                    "the learning rate",
                }
            )
        run.emit(
            {
                "event": "phase",
                "phase": 2,
                "epoch": run.fine_tune_from,
                "reason": "early_stopping" if early else "after_epoch",
                "unfrozen": names,
                "learning_rate": lr,
            }
        )
    if run.epochs_done < total:
        model.fit(**fit_args, epochs=total, initial_epoch=run.epochs_done)


def phase_two_optimizer(section: dict[str, Any], factor: float, steps: int, epochs: int) -> Any:
    """A fresh optimizer of the section's type and settings for phase 2's ``epochs``:
    the learning rate x ``factor``, and the section's schedule started again over phase
    2 with every rate in it x ``factor`` (:func:`engine.train.config.phase_two_section`).
    Constant stays constant; ``reduce_on_plateau`` (a callback) goes on acting."""
    return make_optimizer(phase_two_section(section, factor), steps, epochs)


def _leaves(model: Any) -> list[tuple[Any, list[Any]]]:
    """Every layer that is not a model, nested models flattened in order (inputs end
    first), each with the models it sits in (outermost first, ``model`` excluded)."""
    import keras

    out: list[tuple[Any, list[Any]]] = []

    def walk(layer: Any, parents: list[Any]) -> None:
        if isinstance(layer, keras.Model):
            for sub in layer.layers:
                walk(sub, [*parents, layer])
        else:
            out.append((layer, parents))

    for layer in model.layers:
        walk(layer, [])
    return out


def unfreeze(model: Any, how: Any) -> list[str]:
    """Make frozen layers of ``model`` trainable for phase 2; return their names.

    ``how`` is ``"all"`` or N: the N frozen layers nearest the output. Layers of nested
    models (a backbone) count one by one, as if flattened; layers without weights are
    not counted; BatchNormalization layers are never unfrozen: they stay frozen, so in
    inference mode with their moving statistics, as Keras's fine-tuning guide advises.
    A nested model holding an unfrozen layer becomes trainable, its other layers keep
    their state. Recompile the model afterwards (Keras reads ``trainable`` at compile).
    """
    import keras

    leaves = _leaves(model)
    frozen = [
        (layer, parents)
        for layer, parents in leaves
        if layer.weights
        and not isinstance(layer, keras.layers.BatchNormalization)
        and not (layer.trainable and all(p.trainable for p in parents))
    ]
    chosen = frozen if how == "all" else frozen[::-1][: int(how)][::-1]
    if not chosen:
        return []
    picked = {id(layer) for layer, _ in chosen}
    wanted = {
        id(layer): id(layer) in picked or (layer.trainable and all(p.trainable for p in parents))
        for layer, parents in leaves
    }
    opened: list[Any] = []
    for _layer, parents in chosen:
        opened += [p for p in parents if p not in opened]
    for container in opened:  # outermost first; the setter reaches every layer inside
        container.trainable = True
    for layer, parents in leaves:
        if layer.trainable != wanted[id(layer)] or any(p in opened for p in parents):
            layer.trainable = wanted[id(layer)]
    return [layer.name for layer, _ in chosen]
