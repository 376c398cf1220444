"""Helpers that training, evaluation and data loading share, each in one place.

* :mod:`.atomic` — durable all-or-nothing writes (checkpoints, grids, curves, reports, caches);
* :mod:`.grid` — the one image-grid renderer (training samples and the paper's figures);
* :mod:`.cache` — the per-user cache root (datasets, evaluation reference rows).

Nothing here imports PyTorch.
"""
