"""``python -m gui [PROJECT]`` opens the LayerLab window, as ``layerlab [PROJECT]`` does."""

import sys

from engine.cli.window import open_window

if __name__ == "__main__":
    sys.exit(open_window(sys.argv[1] if len(sys.argv) > 1 else None))
