"""How much a conditional generator's samples depend on the label y versus on the noise z.

    python tools/conditional_label_effect.py RUN_DIR

G (the run's latest checkpoint) decodes 1,000 seeded z for each of the 10 classes. Printed: the mean
per-pixel std over the classes (z fixed: what the label changes), over z (y fixed: what the noise
changes), and, for comparison, over the MNIST test images. A G that ignores y has the first near 0; a
collapsed G has the second near 0 too.
"""

import sys

import torch

from gancore.data import load_split
from gancore.train.checkpoints import load_generator
from gancore.train.conditional import one_hot
from gancore.train.models import sample_noise


def main(run_dir: str) -> None:
    G, cfg = load_generator(run_dir)
    z = sample_noise(1000, cfg["noise_dim"], cfg["noise_prior"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        xs = torch.stack([G(z, one_hot(torch.full((1000,), c), G.n_classes)) for c in range(G.n_classes)])
    print(f"pixel std over classes (z fixed): {xs.std(0).mean().item():.4f}")  # xs: (K, 1000, D)
    print(f"pixel std over z (y fixed):       {xs.std(1).mean().item():.4f}")
    print(f"pixel std over test images:       {load_split(cfg['dataset'], 'test').std(0).mean():.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
