"""LayerLab engine: the model document, validation, building, training and export.

Nothing here imports Qt, and TensorFlow/Keras are imported lazily inside the
functions that need them, so ``import engine`` stays fast.
"""

__version__ = "0.1.0"
