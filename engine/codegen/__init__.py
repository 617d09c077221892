"""Project -> one runnable Python script that needs only Keras."""
