"""``python -m gui [PROJECT]`` opens the LayerLab window."""

import sys

from gui.app import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
