"""Training from the GUI: data and training panels, live view, runs, evaluation."""
