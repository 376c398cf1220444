"""Learned approximate inference (Goodfellow et al. 2014, §7 item 2): an encoder E predicting z from x.

    python -m gancore.infer RUN_DIR              # train E on (G(z), z) with G frozen, then report

"Learned approximate inference can be performed by training an auxiliary network to predict z given
x ... for a fixed generator net after the generator net has finished training." E is trained on pairs
(G(z), z) drawn fresh at every step, so it never sees real data; the report then asks how well it
inverts G on fresh samples (z recovery) and on real test images (reconstruction G(E(x)) beside the
nearest training image). Everything lands in ``RUN_DIR/inference/``.

* :mod:`.config` — :class:`InferConfig`, whose fields are the flags;
* :mod:`.encoder` — E, one training step, the z-recovery and reconstruction measures;
* :mod:`.state` — checkpoints of E (atomic, verified, resumable after ``kill -9``);
* :mod:`.cli` — the command: lock, progress, checkpoints, report.
"""
