"""Export to every format (each verified by reloading) and import of Keras models."""
