"""Project graph -> Keras model: layers, the builder, Keras error wording, start weights."""
