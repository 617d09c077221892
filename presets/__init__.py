"""The preset projects: JSON files next to this module."""

from pathlib import Path


def presets_dir() -> Path:
    """The folder that holds the preset ``*.json`` projects."""
    return Path(__file__).parent
