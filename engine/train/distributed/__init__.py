"""Multi-worker training with MultiWorkerMirroredStrategy: cluster settings, the run, the step."""
