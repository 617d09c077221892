"""Exact shapes and parameter counts from Keras, and the validation report."""
