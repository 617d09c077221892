"""Keras models as projects: read safely (read), layer configs as params (mapping), the
project rebuilt with its weights (rebuild)."""
