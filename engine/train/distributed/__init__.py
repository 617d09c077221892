"""Multi-worker training with MultiWorkerMirroredStrategy.

``cluster`` (addresses and the ``cluster`` settings), ``run`` (a worker's process
and its watchdog), ``loop`` (one worker's training loop) and what the loop is made
of: ``settings``, ``collectives``, ``steps``, ``checkpoints``.
"""
