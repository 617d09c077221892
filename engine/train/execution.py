"""How many training steps one call of the compiled train function runs (Keras's
``steps_per_execution``), when the training section says ``"auto"`` (the default).

Each call of the train function costs a fixed Python and runtime overhead, and
Keras's callbacks (progress, pause and stop, the health probes, the live decision
boundary) run between calls. For a small model that overhead is a large part of a
step (a small CNN on 28x28 images trains ~30 % faster with 16 steps per call), for a
big one it is nothing. :func:`auto_steps_per_execution` picks N from a static
estimate of one step's time (:func:`step_cost`, read from the built Keras model:
no extra trace, no extra step), so that one call lasts about :data:`TARGET_MS`:
callbacks still run many times a second, and a stop or pause is seen within it.

The estimate is for this kind of machine's CPU; on a faster device it errs towards a
smaller N (as before ``auto``: one step per call), never a call that lasts long.
Keras is not imported here: the functions read attributes of the model they get.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

TARGET_MS = 25.0
"""The time one call of the train function should take with ``auto``."""
MAX_STEPS = 32
"""The largest N ``auto`` picks (beyond ~16 the gain is a few per cent)."""

# The rates below were fitted (least squares on relative error) to the measured time of
# one step at N = 1 of 20 models on this 2-core CPU: the 15 presets that train in
# seconds (MLPs, LeNet-5, small VGG/ResNet/Inception, LSTM/GRU, a small backbone) and
# a 64x64 conv net, LSTMs over 50 and 200 timesteps, a small CNN, a tiny MLP (load
# average 2.3). With the call's own cost (~1 ms at that load; left out of the estimate:
# it is what N > 1 saves) as one more term, the fit is within a factor 1.6 of each
# measured step, 1.9 for the tiniest models.
MACS_PER_MS = 100e6
"""Multiply-adds per millisecond of a training step (forward and backward)."""
ELEMENTS_PER_MS = 0.7e6
"""Layer output values per millisecond: the memory-bound part of each layer (its
activation, pooling, normalisation, and their gradients)."""
LAYER_MS = 0.04
"""Time one layer adds to a training step whatever its size (its forward, backward
and update operations each cost the runtime some microseconds)."""
TIMESTEP_MS = 0.09
"""Time one timestep of a recurrent layer adds to a step (forward and backward run
the timesteps one after another, whatever the batch)."""
TRAIN_FACTOR = 3
"""A training step is about three forward passes (forward, two backward products)."""
UNKNOWN_LENGTH = 100
"""The length taken for a dimension the model leaves open (``None``: sequences of any
length) when the data does not say it."""

_RECURRENT = ("SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
_ATTENTION = ("MultiHeadAttention", "GroupQueryAttention", "GroupedQueryAttention")


@dataclass
class StepCost:
    """A static estimate of one training step's work, per sample unless said.

    Attributes:
        macs: Multiply-adds of the forward pass (dense, convolution, recurrent,
            attention products).
        elements: Values all layers output (the element-wise work).
        layers: Layers with work to do.
        timesteps: Timesteps of recurrent layers, summed over those layers (each
            one is sequential work per step, whatever the batch size).
    """

    macs: float = 0.0
    elements: float = 0.0
    layers: int = 0
    timesteps: int = 0

    def step_ms(self, batch_size: int) -> float:
        """The estimated time of one training step of ``batch_size`` samples."""
        per_batch = TRAIN_FACTOR * batch_size
        return (
            self.layers * LAYER_MS
            + self.timesteps * TIMESTEP_MS
            + per_batch * self.macs / MACS_PER_MS
            + per_batch * self.elements / ELEMENTS_PER_MS
        )


def auto_steps_per_execution(step_ms: float, steps_per_epoch: int) -> int:
    """N for ``"auto"``: as many steps as fit in :data:`TARGET_MS` (1 to
    :data:`MAX_STEPS`), never more than an epoch has.

    Args:
        step_ms: The estimated time of one training step (:meth:`StepCost.step_ms`).
        steps_per_epoch: Training steps in one epoch.
    """
    if not math.isfinite(step_ms) or step_ms <= 0:
        return 1
    n = int(TARGET_MS // step_ms)
    return max(1, min(n, MAX_STEPS, steps_per_epoch))


def steps_per_execution(
    setting: Any,
    model: Any,
    batch_size: int,
    steps_per_epoch: int,
    distributed: bool,
    sample_shape: tuple[int, ...] = (),
) -> int:
    """The N a run compiles with: the section's number, or for ``"auto"`` (or no
    setting) :func:`auto_steps_per_execution` of the model's :func:`step_cost`;
    1 under a distribution strategy, or when the model cannot be read (one step per
    call, as before ``auto``).

    Args:
        setting: The training section's ``steps_per_execution`` (checked already).
        model: The built Keras model.
        batch_size: Samples per step.
        steps_per_epoch: Training steps in one epoch.
        distributed: The run is mirrored over several devices.
        sample_shape: The shape of one training sample: the lengths of the dimensions
            the model leaves open (sequences of any length).
    """
    if setting is not None and setting != "auto":
        return int(setting)
    if distributed:
        return 1
    try:
        step_ms = step_cost(model, sample_shape).step_ms(batch_size)
    except Exception:  # a model this estimate cannot read trains as before auto
        return 1
    return auto_steps_per_execution(step_ms, steps_per_epoch)


def step_cost(model: Any, sample_shape: tuple[int, ...] = ()) -> StepCost:
    """The :class:`StepCost` of a built Keras model, from its layers' weights and the
    shapes of the tensors each layer was called on (models inside the model, such as
    a pretrained backbone, are looked into). A dimension the model leaves open
    (``None``) takes the length ``sample_shape`` (one sample of the data) has at that
    place, else :data:`UNKNOWN_LENGTH`."""
    cost = StepCost()
    _add_model(model, cost, tuple(sample_shape))
    return cost


def _add_model(model: Any, cost: StepCost, sample: tuple[int, ...]) -> None:
    for layer in getattr(model, "layers", []):
        if getattr(layer, "layers", None) and hasattr(layer, "inputs"):  # a model inside
            _add_model(layer, cost, sample)
            continue
        for node in getattr(layer, "_inbound_nodes", []) or [None]:
            _add_call(layer, node, cost, sample)


def _dims(tensor: Any, sample: tuple[int, ...]) -> tuple[int, ...]:
    """A tensor's dimensions after the batch, open ones filled in from ``sample``."""
    dims = tuple(tensor.shape)[1:]
    return tuple(
        int(d) if d else int(sample[i] if i < len(sample) and sample[i] else UNKNOWN_LENGTH)
        for i, d in enumerate(dims)
    )


def _positions(dims: tuple[int, ...]) -> int:
    """The product of the dimensions before the last one (the channels or features)."""
    return math.prod(dims[:-1]) if len(dims) > 1 else 1


def _add_call(layer: Any, node: Any, cost: StepCost, sample: tuple[int, ...]) -> None:
    """Add one call of ``layer`` (its graph node; None when unknown) to ``cost``."""
    kind = type(layer).__name__
    if kind == "InputLayer":
        return
    inputs = [_dims(t, sample) for t in getattr(node, "input_tensors", None) or []]
    outputs = [_dims(t, sample) for t in getattr(node, "output_tensors", None) or []]
    in_dims = inputs[0] if inputs else ()
    out_dims = outputs[0] if outputs else ()
    cost.layers += 1
    cost.elements += sum(math.prod(d) for d in outputs)
    kernels = sum(
        math.prod(w.shape)
        for w in getattr(layer, "weights", [])
        if "kernel" in w.name  # not biases, embeddings, PReLU slopes, ...
    )
    if not kernels:
        return
    inner = type(getattr(layer, "layer", None) or getattr(layer, "forward_layer", None)).__name__
    if kind in _RECURRENT or inner in _RECURRENT:
        steps = in_dims[0] if len(in_dims) > 1 else 1
        directions = 2 if kind == "Bidirectional" else 1
        spatial = _positions(in_dims[1:])  # ConvLSTM: the positions of each frame
        cost.timesteps += steps * directions
        cost.macs += kernels * steps * spatial
    elif kind in _ATTENTION:
        query = _positions(in_dims)
        keys = _positions(inputs[1]) if len(inputs) > 1 else query
        width = out_dims[-1] if out_dims else 1
        cost.macs += kernels * max(query, keys) + 2 * query * keys * width
    elif "Transpose" in kind:
        cost.macs += kernels * _positions(in_dims)
    else:
        cost.macs += kernels * _positions(out_dims)


def per_call_text(event: dict[str, Any]) -> str:
    """How a ``started`` event's run steps, in words ("auto: 16 steps per call"), or ""
    for one step per call as set."""
    n = int(event.get("steps_per_execution") or 1)
    auto = bool(event.get("steps_per_execution_auto"))
    if n == 1 and not auto:
        return ""
    text = "1 step per call" if n == 1 else f"{n} steps per call"
    return f"auto: {text}" if auto else text
