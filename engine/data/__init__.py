"""Training data: sources (built-in, CSV, NPZ, image folders), splits, standardisation."""
