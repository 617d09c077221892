"""The devices a run can be placed on, as the training section names them.

TensorFlow is imported inside :func:`list_devices`.
"""

from __future__ import annotations


def list_devices() -> list[str]:
    """``gpu:0``, ``gpu:1``, ... for each GPU TensorFlow sees (the CPU is always there)."""
    import tensorflow as tf

    return [f"gpu:{i}" for i, _ in enumerate(tf.config.list_physical_devices("GPU"))]
