"""How much a conditional generator's samples depend on the label y versus on the noise z.

    python tools/conditional_label_effect.py RUN_DIR

G (the run's latest checkpoint) decodes 1,000 seeded z for each of the 10 classes. Printed: the mean
per-pixel std over the classes (z fixed: what the label changes), over z (y fixed: what the noise
changes), and, for comparison, over the MNIST test images. A G that ignores y has the first near 0; a
collapsed G has the second near 0 too. For MNIST runs, also the conditional accuracy of those 10,000
samples (the share the bundled classifier calls by their requested class) and the classes it sees; for
``--arch cgan_2014``, how many of G's joined ReLU units are live (positive for at least one input).
"""

import sys

import numpy as np
import torch

from gancore.data import load_split
from gancore.train.checkpoints import load_generator
from gancore.train.conditional import one_hot
from gancore.train.models import sample_noise


def main(run_dir: str) -> None:
    G, cfg = load_generator(run_dir)
    z = sample_noise(1000, cfg["noise_dim"], cfg["noise_prior"], generator=torch.Generator().manual_seed(0))
    k = G.n_classes
    with torch.no_grad():
        xs = torch.stack([G(z, one_hot(torch.full((1000,), c), k)) for c in range(k)])  # (K, 1000, D)
    print(f"pixel std over classes (z fixed): {xs.std(0).mean().item():.4f}")
    print(f"pixel std over z (y fixed):       {xs.std(1).mean().item():.4f}")
    print(f"pixel std over test images:       {load_split(cfg['dataset'], 'test').std(0).mean():.4f}")
    if cfg["dataset"] == "mnist":
        from gancore.evaluate.classifier import predict_labels

        called = predict_labels(xs.reshape(-1, xs.shape[-1]).numpy()).reshape(k, -1)  # (K, 1000)
        print(f"conditional accuracy:             {(called == np.arange(k)[:, None]).mean():.4f}")
        print(f"classes the classifier sees:      {np.bincount(called.ravel(), minlength=k).tolist()}")
    if hasattr(G, "joint"):  # CGAN2014Generator: z and y branches, then the joined ReLU layer
        with torch.no_grad():
            y = one_hot(torch.arange(1000) % k, k)
            h = torch.cat([torch.relu(G.z_branch(z)), torch.relu(G.y_branch(y))], dim=1)
            live = int((torch.relu(G.joint[0](h)) > 0).any(0).sum())
        print(f"live joined units:                {live} of {G.joint[0].out_features}")


if __name__ == "__main__":
    main(sys.argv[1])
