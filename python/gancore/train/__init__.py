"""Training: Algorithm 1 of Goodfellow et al. (2014) and the 2014 recipe, in PyTorch.

    python -m gancore.train                     # the mnist_2014 preset on the bundled MNIST

* :mod:`.config` — ``TrainConfig`` (every knob, declared once) and the presets;
* :mod:`.flags` — the command line, generated from ``TrainConfig``;
* :mod:`.models` — G and D of §5 (MLP, maxout, dropout) and DCGAN;
* :mod:`.losses` — the value function's losses and the three generator costs (tutorial §3.2);
* :mod:`.algorithm1` — one iteration, alternating (as printed) or simultaneous (the 2014 code);
* :mod:`.optimizers` — pylearn2's classical momentum and the 2014 schedules; Adam;
* :mod:`.trainer` — the run: data, steps, metrics, samples, checkpoints;
* :mod:`.checkpoints` — checkpoints that survive ``kill -9`` and refuse damage;
* :mod:`.progress`, :mod:`.curves` — progress lines and the loss curves figure;
* :mod:`.cli` — ``main()`` of ``python -m gancore.train``.

Importing this package imports nothing heavy; PyTorch is loaded by the modules that need it.
"""
