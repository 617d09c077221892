"""Multi-worker training with MultiWorkerMirroredStrategy (the cluster's addresses and
settings are :mod:`engine.train.cluster`).

``run`` (a worker's process and its watchdog), ``loop`` (one worker's training loop)
and what the loop is made of: ``settings``, ``collectives``, ``steps``, ``checkpoints``.
"""
