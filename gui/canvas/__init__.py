"""The model-editor canvas: a hand-written QGraphicsScene node editor.

``GraphScene`` draws a project's graph and turns gestures into undo commands;
``GraphView`` is the zoomable, pannable widget that shows it.
"""
