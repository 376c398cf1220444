"""Several processes and machines with ``torchrun``: data-parallel training and sharded evaluation.

* :mod:`.group` — the process group, DDP wrapping, the global-batch contract, failure messages;
* :mod:`.sharding` — the Parzen and k-NN kernels split by query rows across the ranks.

Importing this package imports nothing; its modules import PyTorch.
"""
