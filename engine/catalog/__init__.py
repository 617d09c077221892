"""The layer catalog: parameter specs, the table of layer types, value checks."""
