"""Training: settings, callbacks, fit, the worker process, run directories."""
