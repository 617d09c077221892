"""The engine service: Keras work for the window, in one long-lived child process."""
