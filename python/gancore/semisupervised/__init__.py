"""The semi-supervised GAN of Salimans et al. (2016), "Improved Techniques for Training GANs" §5, the
method the NIPS 2016 tutorial's §5.4 describes and the paper's §7 item 4 points to.

    python -m gancore.semisupervised --labels 100 --seeds 0-2 --epochs 10 --out runs/ssl

D is a K-class classifier whose logits l_1..l_K also say real or fake: with the fake class's logit fixed
at 0, D(x) = Z(x)/(Z(x) + 1), Z(x) = Σ_k exp l_k(x). D is trained on N labelled images (cross-entropy)
and on unlabelled and generated images (the GAN loss on D(x)); G by feature matching. What each module
holds: :mod:`.models` (the networks of the authors' MNIST code), :mod:`.losses` (the three losses),
:mod:`.training` (one update and its state), :mod:`.cli` (the command: runs, checkpoints, report).
"""
