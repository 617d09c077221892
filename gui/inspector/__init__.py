"""The property inspector: editors, the parameter form and the panel."""
