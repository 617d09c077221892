"""The ``layerlab`` command line: one module per sub-command."""
