"""Virtual batch normalization (Salimans et al. 2016 §3.4) in the DCGAN generator."""

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gancore.train import checkpoints as checkpoint  # noqa: E402
from gancore.train import cli as train  # noqa: E402
from gancore.train import config  # noqa: E402
from gancore.train.models import build_models  # noqa: E402
from gancore.train.vbn import VirtualBatchNorm  # noqa: E402

from _train_helpers import TINY, assert_same_state, state_of, tiny_config  # noqa: E402

VBN = ["--preset", "dcgan", "--dcgan-width", "4", "--virtual-batch-norm", "--threads", "1"]


def _vbn_generator(seed=0):
    torch.set_num_threads(1)
    cfg = tiny_config(preset="dcgan", dcgan_width=4, virtual_batch_norm=True, seed=seed)
    gen, _ = build_models(cfg)
    return cfg, gen.train()


@settings(max_examples=10, deadline=None)
@given(row=st.integers(0, 5), seed=st.integers(0, 2**16))
def test_an_example_does_not_depend_on_the_rest_of_its_batch(row, seed):
    """The defining property: change every other row of the batch, the row's output stays bit for bit."""
    cfg, gen = _vbn_generator()
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(6, cfg.noise_dim, generator=g)
    other = torch.randn(6, cfg.noise_dim, generator=g) * 3.0
    other[row] = z[row]
    with torch.no_grad():
        a, b = gen(z), gen(other)
    assert torch.equal(a[row], b[row])
    assert not torch.equal(a[(row + 1) % 6], b[(row + 1) % 6])  # the others did change


def test_batch_norm_generator_lacks_the_property():
    """The same check fails for the DCGAN G with batch norm: the test can tell the two apart."""
    torch.set_num_threads(1)
    cfg = tiny_config(preset="dcgan", dcgan_width=4)
    gen, _ = build_models(cfg)
    z = torch.randn(6, cfg.noise_dim)
    other = torch.randn(6, cfg.noise_dim) * 3.0
    other[0] = z[0]
    with torch.no_grad():
        assert not torch.equal(gen.train()(z)[0], gen(other)[0])


def test_union_statistics_as_the_paper():
    """An example is normalized with the mean and variance of {reference batch} ∪ {itself}, weight 1/(n+1)."""
    layer = VirtualBatchNorm(3)
    ref = torch.randn(7, 3, dtype=torch.float32)
    x = torch.randn(2, 3)
    layer.recording = True
    layer(ref)
    layer.recording = False
    got = layer(x)
    for i in range(2):
        union = torch.cat([ref, x[i : i + 1]]).double()  # (8, 3)
        want = (x[i].double() - union.mean(0)) / torch.sqrt(union.var(0, unbiased=False) + layer.eps)
        assert torch.allclose(got[i].double(), want, atol=1e-5)


def test_reference_batch_is_fixed_seeded_and_in_the_checkpoint(tmp_path):
    _, gen_a = _vbn_generator(seed=3)
    _, gen_b = _vbn_generator(seed=3)
    _, gen_c = _vbn_generator(seed=4)
    assert torch.equal(gen_a.z_ref, gen_b.z_ref) and not torch.equal(gen_a.z_ref, gen_c.z_ref)
    run = tmp_path / "run"
    assert train.main([*TINY, *VBN, "--out", str(run), "--epochs", "1"]) == 0
    loaded, _ = checkpoint.load_generator(run)
    assert torch.equal(loaded.z_ref, gen_a.z_ref.new_tensor(state_of(run)["g.z_ref"]))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in loaded.modules())
    with torch.no_grad():  # eval mode computes what training mode computes: no running statistics
        z = torch.randn(4, loaded.noise_dim)
        assert torch.equal(loaded.eval()(z), loaded.train()(z))


def test_resume_mid_epoch_is_bitwise_identical(tmp_path):
    ref, short = tmp_path / "ref", tmp_path / "short"
    args = [*TINY, *VBN, "--epochs", "2"]
    assert train.main([*args, "--out", str(ref)]) == 0
    assert train.main([*args, "--out", str(short), "--max-steps", "11"]) == 0  # stops in epoch 2
    assert train.main(["--resume", str(short), "--max-steps", "16", "-q", "--no-eval", "--threads", "1"]) == 0
    assert_same_state(state_of(ref), state_of(short))


def test_flag_is_validated():
    assert config.from_preset("dcgan").virtual_batch_norm is False
    with pytest.raises(ValueError, match="virtual_batch_norm needs --arch dcgan"):
        config.from_preset("mnist_2014", virtual_batch_norm=True)
    assert train.main([*TINY, "--virtual-batch-norm", "--out", "unused"]) == 2
