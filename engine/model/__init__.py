"""The model document: graph, undoable commands, project files, auto-layout, structural problems."""
