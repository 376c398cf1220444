"""Evaluation: Table 1's Parzen protocol, Figures 1–3, memorization tests and the report.

    python -m gancore.evaluate RUN_DIR          # everything, the paper's protocol

* :mod:`.pipeline` — ``evaluate_run`` / ``evaluate_generator``: samples → numbers → report;
* :mod:`.kernels` — the kernels the protocols call, local or sharded across processes;
* :mod:`.table1` — the Parzen-window protocol of §5 and its reference rows;
* :mod:`.memorization` — nearest-training distances, data-copying C_T, 1-NN two-sample tests;
* :mod:`.kmeans` — k-means on the exact nearest-neighbor kernel;
* :mod:`.figures` — Figures 2 and 3 and the evaluation plots;
* :mod:`.theory1d` — Figure 1 and §4's results checked on 1-D densities;
* :mod:`.game_dynamics` — the tutorial's exercise §7.2: gradient descent on V(x, y) = xy;
* :mod:`.tutorial_figures` — the tutorial's Figure 16 (generator costs, from gancore's losses) and the
  §7.2 figure: ``python -m gancore.evaluate.tutorial_figures OUT_DIR``;
* :mod:`.classifier` — the bundled MNIST classifier (p(y|x), labels, penultimate features);
* :mod:`.class_metrics` — digits covered, KL to uniform, classifier score, Fréchet distance (MNIST only);
* :mod:`.semisupervised` — a linear probe on D's hidden layers with few labels (§7 item 4):
  ``python -m gancore.evaluate.semisupervised RUN_DIR``;
* :mod:`.report` — ``report.json`` and ``report.md``;
* :mod:`.cli` — ``main()`` of ``python -m gancore.evaluate``.

``import gancore.evaluate`` stays light: the functions below are imported on first use.
"""

__all__ = ["draw_samples", "evaluate_generator", "evaluate_run", "main"]


def __getattr__(name):
    # Lazy, so that importing the package (or ``python -m gancore.evaluate --help``) needs no torch.
    if name in ("draw_samples", "evaluate_generator", "evaluate_run"):
        from . import pipeline

        return getattr(pipeline, name)
    if name == "main":
        from .cli import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
