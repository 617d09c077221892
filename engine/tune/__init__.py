"""Hyper-parameter search (the ``search`` section, an Optuna study of runs) and the learning-rate finder."""
