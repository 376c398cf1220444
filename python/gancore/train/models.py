"""The paper's generator and discriminator (Goodfellow et al. 2014, §5; the 2014 mnist.yaml), plus DCGAN.

Contracts every model here keeps, so training and evaluation never reshape by hand:

* a generator maps noise ``z`` (n, noise_dim) to a FLAT batch (n, C*H*W) with pixels in [0, 1];
* a discriminator maps a flat [0, 1] batch (n, C*H*W) to LOGITS (n,) — the probability D(x) is
  ``sigmoid(logit)``, and the losses work on logits so they never take the log of a rounded sigmoid;
  ``D(x) = D.head(D.features(x))``, where ``features`` is D's last hidden representation f(x) (the
  last maxout layer's output, or the last conv block's, flattened): feature matching compares it
  between real and generated batches (Salimans et al. 2016, §3.1) and minibatch discrimination
  (§3.2, :class:`MinibatchDiscrimination`) is computed from it inside ``head``.

The 2014 MNIST models (``mnist.yaml``): G is 100 → ReLU 1200 → ReLU 1200 → sigmoid 784 with weights
U(−0.05, 0.05) and the output bias set to the logit of the training set's per-pixel mean; D is maxout
240 units × 5 pieces → maxout 240 × 5 → sigmoid 1 with weights U(−0.005, 0.005). Dropout acts only in
D: its input pixels are kept with p = 0.8 and the inputs of its later layers with p = 0.5, scaled by
1/p (pylearn2's ``input_include_probs`` / ``input_scales``), with an independent mask for every
element of every example, and it is on whenever D is in training mode — for real and fake batches
and inside G's loss alike.

Randomness: dropout and noise draw from an explicit ``torch.Generator`` when one is given, so a run
is reproducible from its seed and its checkpointed generator state alone.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .vbn import VirtualBatchNorm, clear_reference, reference_pass

SQRT3 = math.sqrt(3.0)


NOISE_PRIORS = ("uniform", "gaussian", "hypercube")


def sample_noise(n: int, noise_dim: int, prior: str, *, generator=None, device="cpu") -> torch.Tensor:
    """Draw ``n`` noise vectors from p_z: ``uniform`` is U(−√3, √3) (zero mean, unit variance, as the
    2014 code), ``gaussian`` is N(0, I), ``hypercube`` is U(0, 1) (Mirza & Osindero 2014, §4.1)."""
    z = torch.empty(n, noise_dim, device=device)
    return scale_noise_(draw_noise_(z, prior, generator), prior)


def draw_noise_(z: torch.Tensor, prior: str, generator=None) -> torch.Tensor:
    """Fill ``z`` with the random numbers :func:`sample_noise` draws for a tensor of its shape (the
    values ``torch.rand``/``torch.randn`` give, in the same order), before :func:`scale_noise_`."""
    if prior not in NOISE_PRIORS:
        raise ValueError(f"unknown noise prior {prior!r}; expected 'uniform', 'gaussian' or 'hypercube'")
    return z.normal_(generator=generator) if prior == "gaussian" else z.uniform_(generator=generator)


def scale_noise_(z: torch.Tensor, prior: str) -> torch.Tensor:
    """Map :func:`draw_noise_`'s numbers onto the prior, in place: elementwise, so rows drawn
    separately (seed replicas, one generator each) can be scaled in one pass."""
    return z.mul_(2.0 * SQRT3).sub_(SQRT3) if prior == "uniform" else z  # [0,1) -> [-sqrt3, sqrt3)


def dropout(x: torch.Tensor, keep: float, generator=None, shard: tuple[int, int] | None = None) -> torch.Tensor:
    """Inverted dropout: keep each element with probability ``keep`` and scale kept ones by 1/keep.

    ``shard=(rank, world)``: ``x`` is this rank's slice of a global batch of ``world`` equal slices;
    the mask is drawn for the whole global batch, as a one-process run draws it, and this rank keeps
    its rows (data-parallel training, :mod:`gancore.distributed.group`).
    """
    if keep >= 1.0:
        return x
    if shard is None:
        mask = torch.empty_like(x).bernoulli_(keep, generator=generator)
    else:
        rank, world = shard
        n = x.shape[0]
        mask = x.new_empty((n * world, *x.shape[1:])).bernoulli_(keep, generator=generator)[rank * n : (rank + 1) * n]
    return x * mask.mul_(1.0 / keep)


class Maxout(nn.Module):
    """A maxout layer (Goodfellow et al. 2013): ``units`` outputs, each the max of ``pieces`` affine maps.

    The affine output is laid out unit-major, (n, units, pieces), as pylearn2's Maxout groups it, so
    weights map one to one. The two reductions below compute the same values; they differ only in how
    the backward pass finds the winning piece: ``max(dim).values`` scatters through saved indices
    (faster on CPU), ``amax`` recomputes an equality mask, which stays fast on CUDA when deterministic
    algorithms are on (there the scatter takes a slow deterministic path: 8.8k vs 14.3k images/s on an
    H100). The gradients agree except at exact ties between pieces.
    """

    def __init__(self, in_features: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x).view(x.shape[0], self.units, self.pieces)  # (n, units, pieces)
        if z.is_cuda:
            return z.amax(dim=2)  # (n, units)
        return z.max(dim=2).values  # (n, units)


MINIBATCH_INIT_STD = 0.05  # T ~ N(0, 0.05²), the authors' initialization of their MinibatchLayer's θ


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for Training GANs", §3.2;
    the tutorial's §5.1.1 "minibatch features"): lets D see how close each example is to the others
    of its minibatch, so a generator collapsed onto a few points is easy to reject.

    For features f(x_i) ∈ R^A (one row of the input) and a learned tensor T ∈ R^{A×B×C}::

        M_i = f(x_i)·T ∈ R^{B×C}
        c_b(x_i, x_j) = exp(−‖M_{i,b} − M_{j,b}‖_L1)
        o(x_i)_b = 1/(n − 1) · Σ_{j≠i} c_b(x_i, x_j),        o(x_i) ∈ [0, 1]^B

    and ``forward`` returns o, shape (n, B); D concatenates it to f(x_i) before its output layer.

    Two departures from the paper's o_b = Σ_j c_b, both affine in it (paper's o = (n − 1)·o + 1):

    * the j = i term, exp(0) = 1 for every example and kernel, is left out, as in the authors' code
      (openai/improved-gan ``nn.MinibatchLayer``) and the paper's words "the sum ... to other samples";
    * the sum is divided by n − 1, so o does not grow with the batch size. At initialization the
      features of all examples are close, every c_b ≈ 1 and the paper's o_b ≈ n − 1 = 99 at batch 100;
      fed to the output layer of the 2014 recipe (plain SGD, lr 0.1) that sum gave NaN losses within
      the first 25 steps (mnist_2014 with B = 100), while the mean trained. The authors' code avoids
      this differently: it weight-normalizes T, rescales the distances and subtracts the mean of o on
      a batch of data before training.

    T ~ N(0, 0.05²), the initialization of their θ. B = ``kernels`` and C = ``kernel_dim`` are their
    ``num_kernels`` (100 in their CIFAR-10 and MNIST discriminators) and ``dim_per_kernel`` (default 5).
    The distances are taken in float32, also under bf16 autocast.
    """

    def __init__(self, in_features: int, kernels: int, kernel_dim: int):
        super().__init__()
        self.in_features, self.kernels, self.kernel_dim = in_features, kernels, kernel_dim
        self.T = nn.Parameter(torch.empty(in_features, kernels, kernel_dim))
        nn.init.normal_(self.T, 0.0, MINIBATCH_INIT_STD)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        n = f.shape[0]
        m = (f @ self.T.view(self.in_features, -1)).view(n, self.kernels, self.kernel_dim)  # (n, B, C): M_i
        m = m.to(torch.promote_types(m.dtype, torch.float32)).transpose(0, 1).contiguous()  # (B, n, C)
        c = torch.exp(-torch.cdist(m, m, p=1))  # (B, n, n): c_b(x_i, x_j) = exp(−‖M_{i,b} − M_{j,b}‖_L1)
        self_pairs = torch.eye(n, dtype=torch.bool, device=f.device)  # (n, n): j = i
        o = c.masked_fill(self_pairs, 0.0).sum(2) / max(n - 1, 1)  # (B, n): mean over j ≠ i
        return o.t()  # (n, B)


_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class MLPGenerator(nn.Module):
    """G(z): noise → hidden layers → sigmoid pixels, flat (n, D)."""

    def __init__(self, noise_dim: int, hidden: list[int], out_features: int, activation: str = "relu"):
        super().__init__()
        names = activation.split(",")  # one for all hidden layers, or one per layer
        names = names * len(hidden) if len(names) == 1 else names
        layers: list[nn.Module] = []
        width = noise_dim
        for h, name in zip(hidden, names):
            layers += [nn.Linear(width, h), _ACTIVATIONS[name]()]
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)
        self.noise_dim = noise_dim

    @property
    def output_layer(self) -> nn.Linear:
        return self.net[-1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z))  # (n, D) in [0, 1]


class MaxoutDiscriminator(nn.Module):
    """D(x): dropout → maxout → dropout → maxout … → dropout → linear logit, as in ``mnist.yaml``.

    ``features(x)`` is f(x), the last maxout layer's output (n, units), before the final dropout;
    ``head(f)`` is the rest: dropout on the output layer's input, then the linear logit. With
    ``minibatch_features`` B > 0 the output layer also sees o(x) ∈ R^B (:class:`MinibatchDiscrimination`,
    computed from f(x) before that dropout): its input is [dropout(f(x)), o(x)]. With B = 0 (the
    default, the paper's D) nothing is added, and ``forward`` computes exactly what it always did.
    """

    def __init__(
        self,
        in_features: int,
        hidden: list[int],
        pieces: int,
        input_keep: float,
        hidden_keep: float,
        minibatch_features: int = 0,
        minibatch_kernel_dim: int = 5,
    ):
        super().__init__()
        layers = []
        width = in_features
        for h in hidden:
            layers.append(Maxout(width, h, pieces))
            width = h
        self.hidden = nn.ModuleList(layers)
        self.out = nn.Linear(width + minibatch_features, 1)
        # Registered after `out`, and only when asked for: the paper's D keeps its parameters and their order.
        self.minibatch = (
            MinibatchDiscrimination(width, minibatch_features, minibatch_kernel_dim) if minibatch_features else None
        )
        # keep[i] is the keep-probability on the *input* of layer i (pylearn2's input_include_probs).
        self.keep = [input_keep] + [hidden_keep] * len(hidden)
        self.generator: torch.Generator | None = None  # set by the trainer for reproducible masks
        self.shard: tuple[int, int] | None = None  # (rank, world) under data-parallel training

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """f(x): the output of the last maxout layer, (n, units), with dropout on every layer's input."""
        drop = self.training
        for layer, keep in zip(self.hidden, self.keep):
            x = layer(dropout(x, keep, self.generator, self.shard) if drop else x)
        return x  # (n, units)

    def head(self, f: torch.Tensor) -> torch.Tensor:
        """Logits (n,) from the features f(x): dropout, [minibatch features o(x)], the output unit."""
        x = dropout(f, self.keep[-1], self.generator, self.shard) if self.training else f
        if self.minibatch is not None:
            x = torch.cat([x, self.minibatch(f).to(x.dtype)], dim=1)  # (n, units + B)
        return self.out(x).squeeze(1)  # (n,) logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def init_uniform_(module: nn.Module, irange: float, generator: torch.Generator) -> None:
    """pylearn2's ``irange`` initialization: every weight U(−irange, irange), every bias 0; a minibatch
    discrimination tensor T ~ N(0, 0.05²) (:class:`MinibatchDiscrimination`)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -irange, irange, generator=generator)
            nn.init.zeros_(m.bias)
        elif isinstance(m, MinibatchDiscrimination):
            nn.init.normal_(m.T, 0.0, MINIBATCH_INIT_STD, generator=generator)


@torch.no_grad()
def apply_max_col_norm_(module: nn.Module, max_norm: float) -> None:
    """pylearn2's ``max_col_norm``: after an update, rescale every unit's incoming weight vector (a
    column of pylearn2's W, a row of torch's) whose L2 norm exceeds ``max_norm`` back onto the ball."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            cap_row_norms_(m.weight, max_norm)


def cap_row_norms_(weight: torch.Tensor, max_norm: float) -> None:
    """Rescale every row of ``weight`` (..., in) whose L2 norm exceeds ``max_norm`` onto the ball: one
    unit's incoming weights for an (out, in) weight, every replica's at once for a stacked (R, out, in)."""
    weight.view(-1, weight.shape[-1]).renorm_(2, 0, max_norm)


def set_output_bias_from_marginals_(gen: MLPGenerator, pixel_mean: torch.Tensor) -> None:
    """``init_sigmoid_bias_from_marginals``: output bias = logit(mean pixel), mean clipped to
    [1e−7, 1 − 1e−7] so always-black pixels get a large negative, finite bias."""
    p = pixel_mean.double().clamp(1e-7, 1 - 1e-7)
    with torch.no_grad():
        gen.output_layer.bias.copy_(torch.log(p / (1 - p)).to(gen.output_layer.bias.dtype))


# ---------------------------------------------------------------------------------------------
# DCGAN (tutorial §3.3; Radford, Metz & Chintala 2015)
# ---------------------------------------------------------------------------------------------


def _dcgan_plan(image_shape) -> tuple[int, int]:
    """Starting side and number of ×2 upsamplings for a square image of side 28 or 32."""
    side = image_shape[1]
    if side == 32:
        return 4, 3
    if side == 28:
        return 7, 2
    raise ValueError(f"the DCGAN nets support 28x28 and 32x32 images; got {image_shape}")


class DCGANGenerator(nn.Module):
    """z → linear → (C0, s0, s0) → [ConvT ×2, BN, ReLU]… → ConvT → tanh, rescaled to flat [0, 1].

    ``reference_batch`` n > 0 replaces every batch norm by virtual batch norm (:mod:`gancore.train.vbn`)
    against a fixed reference noise batch, the buffer ``z_ref`` (n, noise_dim), which
    :func:`build_models` fills from the seed and the state dict (hence every checkpoint) carries.
    """

    def __init__(self, noise_dim: int, image_shape, width: int = 64, reference_batch: int = 0):
        super().__init__()
        s0, ups = _dcgan_plan(image_shape)
        chans = [width * 2 ** (ups - 1 - i) for i in range(ups)]  # e.g. [4w, 2w, w]
        norm1d = VirtualBatchNorm if reference_batch else nn.BatchNorm1d
        norm2d = VirtualBatchNorm if reference_batch else nn.BatchNorm2d
        self.start = (chans[0], s0, s0)
        self.project = nn.Sequential(
            nn.Linear(noise_dim, chans[0] * s0 * s0, bias=False), norm1d(chans[0] * s0 * s0), nn.ReLU(True)
        )
        blocks: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            blocks += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), norm2d(cout), nn.ReLU(True)]
        blocks += [nn.ConvTranspose2d(chans[-1], image_shape[0], 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*blocks)
        self.noise_dim = noise_dim
        self.virtual = bool(reference_batch)
        if self.virtual:
            self.register_buffer("z_ref", torch.zeros(reference_batch, noise_dim))

    def _image(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(z.shape[0], *self.start)  # (n, C0, s0, s0)
        return self.net(h)  # (n, C, H, W) in [-1, 1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not self.virtual:
            x = self._image(z)
        else:
            # The reference batch first, with the current weights: its statistics normalize z's rows.
            reference_pass(self, self._image, self.z_ref)
            try:
                x = self._image(z)
            finally:
                clear_reference(self)
        return x.flatten(1).add(1.0).mul(0.5)  # (n, D) in [0, 1]


class DCGANDiscriminator(nn.Module):
    """Flat [0, 1] → (C, H, W) in [−1, 1] → [Conv ×½, (BN), LeakyReLU 0.2]… → linear logit.

    ``features(x)`` is the last conv block's output, flattened (n, C'·s·s); ``head(f)`` the linear
    logit, which with ``minibatch_features`` B > 0 reads [f(x), o(x)] (:class:`MinibatchDiscrimination`).
    """

    def __init__(self, image_shape, width: int = 64, minibatch_features: int = 0, minibatch_kernel_dim: int = 5):
        super().__init__()
        _, downs = _dcgan_plan(image_shape)
        self.shape = tuple(image_shape)
        layers: list[nn.Module] = []
        cin = image_shape[0]
        for i in range(downs):
            cout = width * 2**i
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=i == 0))
            if i > 0:  # DCGAN: no batch norm on the discriminator's input layer
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, True))
            cin = cout
        self.net = nn.Sequential(*layers)
        side = image_shape[1] // 2**downs
        self.out = nn.Linear(cin * side * side + minibatch_features, 1)
        self.minibatch = (
            MinibatchDiscrimination(cin * side * side, minibatch_features, minibatch_kernel_dim)
            if minibatch_features
            else None
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """f(x): the last conv block's features, flattened, (n, C'·s·s)."""
        h = self.net(x.view(x.shape[0], *self.shape).mul(2.0).sub(1.0))  # (n, C', s, s)
        return h.flatten(1)  # (n, C'·s·s)

    def head(self, f: torch.Tensor) -> torch.Tensor:
        if self.minibatch is not None:
            f = torch.cat([f, self.minibatch(f).to(f.dtype)], dim=1)  # (n, C'·s·s + B)
        return self.out(f).squeeze(1)  # (n,) logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def init_dcgan_(module: nn.Module, generator: torch.Generator) -> None:
    """DCGAN initialization: conv/linear weights N(0, 0.02), batch-norm scales N(1, 0.02), biases 0; a
    minibatch discrimination tensor T ~ N(0, 0.05²)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, VirtualBatchNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02, generator=generator)
            nn.init.zeros_(m.bias)
        elif isinstance(m, MinibatchDiscrimination):
            nn.init.normal_(m.T, 0.0, MINIBATCH_INIT_STD, generator=generator)


# ---------------------------------------------------------------------------------------------


def build_generator(cfg) -> nn.Module:
    """The generator a config describes, *uninitialized* (see :func:`build_models` for the init)."""
    if getattr(cfg, "conditional", False):
        from .conditional import build_conditional_generator  # G(z, y): Mirza & Osindero (2014)

        return build_conditional_generator(cfg)
    shape = list(cfg.image_shape)
    if cfg.arch == "dcgan":
        ref = cfg.batch_size if getattr(cfg, "virtual_batch_norm", False) else 0
        return DCGANGenerator(cfg.noise_dim, shape, cfg.dcgan_width, reference_batch=ref)
    return MLPGenerator(cfg.noise_dim, list(cfg.g_hidden), math.prod(shape), cfg.g_activation)


def build_discriminator(cfg) -> nn.Module:
    if getattr(cfg, "conditional", False):
        from .conditional import build_conditional_discriminator  # D(x, y)

        return build_conditional_discriminator(cfg)
    shape = list(cfg.image_shape)
    mbd = dict(minibatch_features=cfg.minibatch_features, minibatch_kernel_dim=cfg.minibatch_kernel_dim)
    if cfg.arch == "dcgan":
        return DCGANDiscriminator(shape, cfg.dcgan_width, **mbd)
    return MaxoutDiscriminator(
        math.prod(shape), list(cfg.d_hidden), cfg.d_pieces, cfg.d_input_keep, cfg.d_hidden_keep, **mbd
    )


def build_models(cfg, pixel_mean: torch.Tensor | None = None) -> tuple[nn.Module, nn.Module]:
    """Build and initialize (G, D) on the CPU from ``cfg.seed`` alone, so every device starts equal.

    ``pixel_mean`` (D,) is the training set's per-pixel mean, needed for the 2014 output-bias init.
    """
    g_init = torch.Generator().manual_seed(cfg.seed)
    gen, disc = build_generator(cfg), build_discriminator(cfg)
    if cfg.arch == "dcgan":
        init_dcgan_(gen, g_init)
        init_dcgan_(disc, g_init)
        if getattr(gen, "virtual", False):
            # VBN's reference batch: drawn once, from its own generator so the weights' draws stay as without it.
            ref = torch.Generator().manual_seed(cfg.seed + 4)
            gen.z_ref.copy_(sample_noise(gen.z_ref.shape[0], cfg.noise_dim, cfg.noise_prior, generator=ref))
    else:
        init_uniform_(gen, cfg.g_init_range, g_init)
        init_uniform_(disc, cfg.d_init_range, g_init)
        if cfg.g_output_bias_from_data:
            if pixel_mean is None:
                raise ValueError("g_output_bias_from_data needs the training set's per-pixel mean")
            set_output_bias_from_marginals_(gen, pixel_mean)
    return gen, disc
