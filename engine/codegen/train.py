"""The ``main()`` function of a generated script: compile and fit as LayerLab does.

:func:`main_code` writes the optimizer (with its learning-rate schedule), loss,
metrics, callbacks and class weights of a project's training section as Keras
source; the tables and checks come from :mod:`engine.train.config`.

With a ``fine_tune`` option the script trains in two phases as LayerLab does: ``fit``
up to ``FINE_TUNE_AFTER``, then :data:`_UNFREEZE` (set ``trainable``), ``compile`` with a
fresh optimizer at the learning rate x ``LEARNING_RATE_FACTOR``, and ``fit`` on with
``initial_epoch``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.codegen.text import CodegenError, ScriptPart, argparse_text, call_code, literal
from engine.model.graph import is_valid_id
from engine.train.config import (
    LOSS_ALIASES,
    LOSSES,
    OPTIMIZERS,
    SCHEDULES,
    chosen_metrics,
    find_key,
    fine_tune_of,
    loss_from_logits,
    loss_name,
    monitor_mode,
    phase_two_section,
    split_typed,
    training_problems,
)

_LOSS_CLASSES = {
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
    "mse": "MeanSquaredError",
    "mae": "MeanAbsoluteError",
    "huber": "Huber",
}
_CLASS_WEIGHTS = '''
def balanced_class_weights(y):
    """Weight each class by n / (k * count), so rare classes count as much as common ones."""
    labels = y.argmax(-1) if y.ndim > 1 and y.shape[-1] > 1 else y.ravel()
    counts = np.bincount(labels.astype(int))
    n, k = len(labels), int((counts > 0).sum())
    return {c: n / (k * counts[c]) for c in range(len(counts)) if counts[c]}
'''


_UNFREEZE = '''
def unfreeze(model, how):
    """Phase 2: make frozen layers trainable, all of them or the `how` nearest the output.

    Layers of nested models (a backbone) count one by one; layers without weights are
    not counted; BatchNormalization layers stay frozen (inference mode), as Keras's
    fine-tuning guide advises. Returns the names of the layers unfrozen.
    """
    leaves = []

    def walk(layer, parents):
        if isinstance(layer, keras.Model):
            for sub in layer.layers:
                walk(sub, parents + [layer])
        else:
            leaves.append((layer, parents))

    for layer in model.layers:
        walk(layer, [])

    def trainable(layer, parents):
        return layer.trainable and all(p.trainable for p in parents)

    frozen = [
        (layer, parents)
        for layer, parents in leaves
        if layer.weights
        and not isinstance(layer, keras.layers.BatchNormalization)
        and not trainable(layer, parents)
    ]
    chosen = frozen if how == "all" else frozen[len(frozen) - min(how, len(frozen)) :]
    wanted = {id(layer): trainable(layer, parents) for layer, parents in leaves}
    wanted.update({id(layer): True for layer, _ in chosen})
    for _, parents in chosen:
        for parent in parents:  # outermost first: this reaches every layer inside
            parent.trainable = True
    for layer, _ in leaves:
        layer.trainable = wanted[id(layer)]
    return [layer.name for layer, _ in chosen]
'''


def _kwargs(params: dict[str, Any], skip: tuple[str, ...] = ("type",)) -> list[str]:
    """``name=value`` for checked settings (names come from the training tables)."""
    out = []
    for key, value in params.items():
        if key in skip:
            continue
        if not is_valid_id(key) or not key.isascii():  # never reached after training_problems
            raise CodegenError(f"training section: {key!r} is not a setting name")
        out.append(f"{key}={literal(value)}")
    return out


def _steps_code(params: dict[str, Any], base: str, default: str) -> str:
    """Source for a schedule length in steps (``<base>_steps`` or ``<base>_epochs``)."""
    if f"{base}_steps" in params:
        return str(max(1, int(params[f"{base}_steps"])))
    if f"{base}_epochs" in params:
        return f"max(1, round({literal(float(params[f'{base}_epochs']))} * steps_per_epoch))"
    return default


def _schedule_code(section: dict[str, Any], lr: float) -> list[str] | None:
    """Lines of ``make_optimizer`` that set ``learning_rate``, or None for a constant rate.

    The same schedules and lengths as :func:`engine.train.config.make_schedule`, with
    the step counts computed from ``steps_per_epoch`` and ``epochs`` at run time.
    """

    name, params, _ = split_typed(section.get("schedule") or "constant", "schedule")
    kind = find_key(name, SCHEDULES)
    if kind in (None, "constant", "reduce_on_plateau"):
        return None
    total = "max(1, steps_per_epoch * epochs)"
    num = literal

    def schedule(cls: str, *args: str) -> list[str]:
        return [call_code(f"learning_rate = keras.optimizers.schedules.{cls}", list(args), "    ")]

    if kind == "step" and "values" in params:
        values = num([float(v) for v in params["values"]])
        if "boundaries_steps" in params:
            return schedule(
                "PiecewiseConstantDecay", num([int(b) for b in params["boundaries_steps"]]), values
            )
        epochs = num([float(b) for b in params["boundaries_epochs"]])
        return [
            f"    boundaries = [round(b * steps_per_epoch) for b in {epochs}]",
            *schedule("PiecewiseConstantDecay", "boundaries", values),
        ]
    if kind == "step":
        every = _steps_code(params, "every", "max(1, steps_per_epoch * epochs // 3)")
        return schedule(
            "ExponentialDecay",
            num(lr),
            f"decay_steps={every}",
            f"decay_rate={num(float(params.get('factor', 0.1)))}",
            "staircase=True",
        )
    if kind == "exponential":
        return schedule(
            "ExponentialDecay",
            num(lr),
            f"decay_steps={_steps_code(params, 'decay', 'steps_per_epoch')}",
            f"decay_rate={num(float(params.get('decay_rate', 0.96)))}",
            f"staircase={bool(params.get('staircase'))}",
        )
    if kind == "polynomial":
        return schedule(
            "PolynomialDecay",
            num(lr),
            f"decay_steps={_steps_code(params, 'decay', total)}",
            f"end_learning_rate={num(float(params.get('end_learning_rate', 0.0001)))}",
            f"power={num(float(params.get('power', 1.0)))}",
            f"cycle={bool(params.get('cycle'))}",
        )
    warmup = _steps_code(params, "warmup", "0")
    alpha = f"alpha={num(float(params.get('alpha', 0.0)))}"
    if warmup == "0":
        return schedule(
            "CosineDecay", num(lr), f"decay_steps={_steps_code(params, 'decay', total)}", alpha
        )
    decay = _steps_code(params, "decay", "max(1, steps_per_epoch * epochs - warmup_steps)")
    return [
        f"    warmup_steps = {warmup}",
        *schedule(
            "CosineDecay",
            num(float(params.get("warmup_start", 0.0))),
            f"decay_steps={decay}",
            alpha,
            f"warmup_target={num(lr)}",
            "warmup_steps=warmup_steps",
        ),
    ]


def _loss_code(section: dict[str, Any], task: str | None) -> str:

    loss = section.get("loss")
    if loss is None:
        if task == "regression":
            return '"mse"'
        if task == "classification":
            return '"sparse_categorical_crossentropy"'
        return '"mse" if y_train.dtype.kind == "f" else "sparse_categorical_crossentropy"'
    name, params, _ = split_typed(loss, "loss")
    canonical = find_key(name, LOSSES, LOSS_ALIASES)
    args = _kwargs(params)
    if not args:
        return literal(canonical)
    return f"keras.losses.{_LOSS_CLASSES[canonical]}({', '.join(args)})"


def _metrics_code(
    section: dict[str, Any], loss: str, num_classes: int | None, task: str | None
) -> list[str]:
    """The metrics LayerLab keeps for this run (engine.train.config.chosen_metrics), as code."""

    sparse = loss == "sparse_categorical_crossentropy"
    logits = loss_from_logits(section)
    out = []
    for metric, params in chosen_metrics(section, loss, num_classes, task)[0]:
        if metric == "accuracy":
            out.append('"accuracy"')
        elif metric == "top_k":
            k = int(params.get("k", 5))
            cls = "SparseTopKCategoricalAccuracy" if sparse else "TopKCategoricalAccuracy"
            out.append(f'keras.metrics.{cls}(k={k}, name="top_{k}_accuracy")')
        elif metric in ("precision", "recall"):  # logits: 0 is probability 0.5
            cls = "Precision" if metric == "precision" else "Recall"
            out.append(
                f'keras.metrics.{cls}(name="{metric}"' + (", thresholds=0.0)" if logits else ")")
            )
        elif metric == "auc":
            out.append('keras.metrics.AUC(name="auc"' + (", from_logits=True)" if logits else ")"))
        elif metric in ("mae", "mse", "rmse"):
            cls = {
                "mae": "MeanAbsoluteError",
                "mse": "MeanSquaredError",
                "rmse": "RootMeanSquaredError",
            }[metric]
            out.append(f'keras.metrics.{cls}(name="{metric}")')
    return out


def _callbacks_code(section: dict[str, Any], has_val: bool) -> list[str]:

    out = []
    es = section.get("early_stopping")
    es = {} if es is True else es if isinstance(es, dict) else None  # as engine.train.fit
    monitor = (es or {}).get("monitor") or ("val_loss" if has_val else "loss")
    if not has_val and monitor.startswith("val_"):
        monitor = monitor[4:]
    if es is not None:
        out.append(
            call_code(
                "keras.callbacks.EarlyStopping",
                [
                    f"monitor={literal(monitor)}",
                    f"patience={int(es.get('patience', 5))}",
                    f"min_delta={literal(float(es.get('min_delta', 0.0)))}",
                    f"mode={literal(monitor_mode(monitor))}",
                    f"restore_best_weights={bool(es.get('restore_best_weights', True))}",
                    f"start_from_epoch={int(es.get('start_from_epoch', 0))}",
                ],
                "        ",
                ",",
            )
        )
    name, schedule, _ = split_typed(section.get("schedule") or "constant", "schedule")
    if find_key(name, SCHEDULES) == "reduce_on_plateau":  # {"type": ...} or its bare name
        watch = schedule.get("monitor", monitor)
        out.append(
            call_code(
                "keras.callbacks.ReduceLROnPlateau",
                [
                    f"monitor={literal(watch)}",
                    f"factor={literal(float(schedule.get('factor', 0.1)))}",
                    f"patience={int(schedule.get('patience', 5))}",
                    f"mode={literal(monitor_mode(watch))}",
                    f"min_delta={literal(float(schedule.get('min_delta', 1e-4)))}",
                    f"cooldown={int(schedule.get('cooldown', 0))}",
                    f"min_lr={literal(float(schedule.get('min_lr', 0.0)))}",
                ],
                "        ",
                ",",
            )
        )
    return out


def main_code(
    training: dict[str, Any],
    name: str,
    weights: str | None,
    *,
    has_val: bool = True,
    task: str | None = None,
    num_classes: int | None = None,
    adapt: list[str] | None = None,
    streamed: bool = False,
) -> ScriptPart:
    """The ``main()`` function: compile and fit as :mod:`engine.train.fit` does, then save.

    Args:
        training: The project's training section.
        name: The project name (shown by ``--help``).
        weights: Trained weights the script starts from when found, or None.
        has_val: Whether the data has a validation split.
        task: ``classification``/``regression`` when known from the data source.
        num_classes: Number of classes when known from the data source.
        adapt: Normalization layers that learn their mean and variance from the data.
        streamed: ``load_data()`` returns datasets of batches (``y`` is None).

    Raises:
        CodegenError: Listing what is wrong with the training section.
    """

    problems = training_problems(training)
    if problems:
        raise CodegenError("training section: " + "; ".join(problems))
    part = ScriptPart()
    part.imports |= {"import argparse", "import keras"}
    seed = training.get("seed")
    if seed is not None:
        part.constants.append(f"SEED = {int(seed)}")
    part.constants += [
        f"EPOCHS = {int(training.get('epochs', 10))}",
        f"BATCH_SIZE = {int(training.get('batch_size', 32))}",
    ]
    if weights:
        part.imports.add("from pathlib import Path")
        part.constants.append(
            f"WEIGHTS = {literal(Path(weights).name)}  # trained weights, "
            "used when found next to this script"
        )

    opt_name, opt_params, _ = split_typed(training.get("optimizer", "Adam"), "optimizer")
    optimizer = find_key(opt_name, OPTIMIZERS) or "Adam"
    lr = float(opt_params.get("learning_rate", 0.001))
    schedule = _schedule_code(training, lr)
    opt_args = ["learning_rate=" + ("learning_rate" if schedule else literal(lr))]
    opt_args += _kwargs(opt_params, ("type", "learning_rate"))
    loss = loss_name(training, task, num_classes) if training.get("loss") or task else None
    optimizer_code = f"keras.optimizers.{optimizer}({', '.join(opt_args)})"
    if schedule:
        part.imports.add("import math")
        part.functions.append(
            "\n".join(
                [
                    "def make_optimizer(steps_per_epoch, epochs):",
                    '    """The optimizer, its learning rate scheduled over the optimizer steps of the '
                    'run."""',
                    *schedule,
                    call_code(f"return keras.optimizers.{optimizer}", opt_args, "    "),
                ]
            )
            + "\n"
        )
        optimizer_code = "make_optimizer(steps_per_epoch, epochs)"
    fine = fine_tune_of(training)
    if fine and schedule:  # as LayerLab: a schedule spans phase 1
        optimizer_code = "make_optimizer(steps_per_epoch, min(epochs, FINE_TUNE_AFTER))"
    compile_args = [f"optimizer={optimizer_code}", f"loss={_loss_code(training, task)}"]
    metrics = _metrics_code(training, loss or "sparse_categorical_crossentropy", num_classes, task)
    if metrics:
        compile_args.append(f"metrics=[{', '.join(metrics)}]")
    if training.get("jit_compile", "auto") != "auto":
        compile_args.append(f"jit_compile={bool(training['jit_compile'])}")
    # "auto" is left out (Keras's default, one step per call): LayerLab's N comes from
    # the built model's shapes, which the script's writer does not have without Keras
    per_call = training.get("steps_per_execution", "auto")
    if per_call != "auto" and int(per_call) != 1:
        compile_args.append(f"steps_per_execution={int(per_call)}")
    callbacks = _callbacks_code(training, has_val)

    help_epochs = "epochs to train (default {EPOCHS}" + (
        "; 0 when weights are loaded)" if weights else ")"
    )
    lines = [
        "def main():",
        '    """Train the model on its data with the project\'s settings, then save it."""',
        call_code(
            "parser = argparse.ArgumentParser",
            [f"description={literal(argparse_text('Train ' + name, always_formatted=False))}"],
            "    ",
        ),
        '    parser.add_argument("--epochs", type=int, default=None,',
        f'                        help=f"{help_epochs}")',
        '    parser.add_argument("--out", default="model.keras", '
        'help="where to save the trained model")',
    ]
    if weights:
        lines += [
            '    parser.add_argument("--weights", default=str(Path(__file__).resolve()'
            ".parent / WEIGHTS),",
            '                        help="trained weights to start from (if the file exists)")',
        ]
    lines += ["    args = parser.parse_args()", ""]
    if training.get("precision", "float32") != "float32":
        lines.append(
            f"    keras.mixed_precision.set_global_policy({literal(training['precision'])})"
        )
    if seed is not None:
        lines.append("    keras.utils.set_random_seed(SEED)")
    lines += [
        "    (x_train, y_train), (x_val, y_val) = load_data()",
        "    model = build_model()",
        "    epochs = EPOCHS if args.epochs is None else args.epochs",
    ]
    if adapt:
        part.constants.append(
            f"ADAPT = {literal(adapt)}  # Normalization layers that learn "
            "their mean and variance from the data"
        )
        lines += [
            "    for name in ADAPT:  # from the data as it reaches each layer",
            "        layer = model.get_layer(name)",
            "        feed = keras.Model(model.inputs, layer.input)",
            "        layer.adapt(feed.predict(x_train, batch_size=1024, verbose=0))",
        ]
    if weights:
        lines += [
            "    if Path(args.weights).is_file():",
            "        model.load_weights(args.weights)",
            '        print(f"loaded weights from {args.weights}")',
            "        epochs = 0 if args.epochs is None else args.epochs",
        ]
    if schedule:
        lines.append(
            "    steps_per_epoch = len(x_train)  # batches"
            if streamed
            else "    steps_per_epoch = math.ceil(len(x_train) / BATCH_SIZE)"
        )
    lines += ["    model.compile(", *[f"        {a}," for a in compile_args], "    )"]
    fit_args = ["x_train", "y_train", "batch_size=BATCH_SIZE", "epochs=epochs"]
    if has_val:
        fit_args.append("validation_data=(x_val, y_val)")
    cw = training.get("class_weight") if task != "regression" else None  # as LayerLab
    if cw == "balanced":
        part.functions.append(_CLASS_WEIGHTS)
        labels = "x_train.labels" if streamed else "y_train"
        fit_args.append(f"class_weight=balanced_class_weights({labels})")
    elif isinstance(cw, dict):
        fit_args.append("class_weight=" + literal({int(k): float(v) for k, v in cw.items()}))
    if training.get("shuffle", True) is False:
        fit_args.append("shuffle=False")
    if callbacks:
        lines += ["    callbacks = [", *callbacks, "    ]"]
        fit_args.append("callbacks=callbacks")
    if fine:
        phase_two = [f"learning_rate={literal(lr)} * LEARNING_RATE_FACTOR"]
        phase_two += _kwargs(opt_params, ("type", "learning_rate"))
        phase_two_code = f"keras.optimizers.{optimizer}({', '.join(phase_two)})"
        if schedule:  # as LayerLab: the schedule again over phase 2, its rates scaled
            factor = float(fine["learning_rate_factor"])
            scaled = _schedule_code(phase_two_section(training, factor), lr * factor) or []
            part.functions.append(
                "\n".join(
                    [
                        "def make_phase_two_optimizer(steps_per_epoch, epochs):",
                        '    """Phase 2\'s optimizer: the schedule again over phase 2\'s epochs, '
                        'every rate x the factor."""',
                        *scaled,
                        call_code(f"return keras.optimizers.{optimizer}", opt_args, "    "),
                    ]
                )
                + "\n"
            )
            phase_two_code = "make_phase_two_optimizer(steps_per_epoch, epochs - done)"
        lines += _phases_code(part, fine, fit_args, compile_args, phase_two_code)
    else:
        lines += [
            "    if epochs > 0:",
            call_code("history = model.fit", fit_args, "        "),
            '        print(f"trained {len(history.epoch)} epochs")',
        ]
    if has_val:
        lines += [
            '    print("validation:", model.evaluate(x_val, y_val, verbose=0, return_dict=True))'
        ]
    lines += ["    model.save(args.out)", '    print(f"saved {args.out}")']
    part.functions.append("\n".join(lines) + "\n")
    return part


def _phases_code(
    part: ScriptPart,
    fine: dict[str, Any],
    fit_args: list[str],
    compile_args: list[str],
    phase_two_optimizer: str,
) -> list[str]:
    """The two ``fit`` calls of fine-tuning (``engine.train.fine_tune.fit_in_phases``)."""
    part.constants += [
        f"FINE_TUNE_AFTER = {int(fine['after_epoch'])}  # phase 1: epochs 1-"
        f"{int(fine['after_epoch'])} with the frozen layers frozen",
        f"UNFREEZE = {literal(fine['unfreeze'])}  # phase 2 unfreezes these frozen layers "
        '("all", or N nearest the output)',
        f"LEARNING_RATE_FACTOR = {literal(float(fine['learning_rate_factor']))}"
        "  # phase 2's learning rate, x the optimizer's",
    ]
    part.functions.append(_UNFREEZE)
    one = [a if a != "epochs=epochs" else "epochs=min(epochs, FINE_TUNE_AFTER)" for a in fit_args]
    two = [*fit_args, "initial_epoch=done"]
    recompile = [
        f"optimizer={phase_two_optimizer}",
        *compile_args[1:],
    ]
    return [
        "    done = 0",
        "    if epochs > 0:  # phase 1: the frozen layers stay frozen",
        call_code("history = model.fit", one, "        "),
        "        done = len(history.epoch)",
        '        print(f"phase 1: trained {done} epochs")',
        "    if 0 < done < epochs:  # phase 2 (also when early stopping ended phase 1)",
        "        names = unfreeze(model, UNFREEZE)",
        "        print(f\"phase 2: unfroze {', '.join(names) or 'no layer'}\")",
        "        model.compile(  # needed for the new trainable layers to train",
        *[f"            {a}," for a in recompile],
        "        )",
        call_code("history = model.fit", two, "        "),
        '        print(f"phase 2: trained {len(history.epoch)} epochs")',
    ]
