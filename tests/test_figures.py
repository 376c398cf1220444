"""Figure files (gancore.evaluate.figures): Figure 2 grid with the yellow frame, pairs panel, Figure 3, plots."""

import numpy as np
import pytest

from gancore.evaluate import figures as F
from gancore.evaluate.table1 import parzen_protocol

from _eval_helpers import TinyGenerator, blobs

PIL = pytest.importorskip("PIL.Image")
SHAPE = (1, 4, 4)


def _png(path):
    img = PIL.open(path)
    img.load()
    return np.asarray(img.convert("RGB"))


def test_to_uint8_grey_and_rgb():
    x = np.linspace(0, 1, 16, dtype=np.float32)[None]
    g = F.to_uint8(x, SHAPE)
    assert g.shape == (1, 4, 4, 3) and g.dtype == np.uint8
    assert g[0, 0, 0].tolist() == [0, 0, 0] and g[0, 3, 3].tolist() == [255, 255, 255]
    rgb = F.to_uint8(np.zeros((2, 12)), (3, 2, 2))
    assert rgb.shape == (2, 2, 2, 3)
    with pytest.raises(ValueError, match="image_shape"):
        F.to_uint8(x, (1, 3, 3))


def test_figure2_grid_layout_and_yellow_frame(tmp_path):
    train = blobs(50, 16, seed=1)
    samples = blobs(20, 16, seed=2)
    info = F.figure2(samples, train, SHAPE, tmp_path / "f2.png", scale=2)
    img = _png(tmp_path / "f2.png")
    pad, side = 2, 4 * 2
    cell = side + 2 * pad
    assert img.shape == (4 * cell, 6 * cell, 3)
    # The last column's frame is yellow, the others are not framed.
    for r in range(4):
        y0, x_last = r * cell, 5 * cell
        assert tuple(img[y0 + 1, x_last + pad + 2]) == F.YELLOW
        assert tuple(img[y0 + 1, pad + 2]) != F.YELLOW
    # The framed image is the exact nearest training image of the 5th sample of its row.
    d2 = ((samples[[4, 9, 14, 19]][:, None].astype(np.float64) - train[None]) ** 2).sum(-1)
    assert info["nearest_train_indices"] == d2.argmin(1).tolist()
    np.testing.assert_allclose(info["sq_distances"], d2.min(1), rtol=1e-5)
    nn_img = F.to_uint8(train[d2.argmin(1)[0]][None], SHAPE)[0]
    got = img[pad : pad + side : 2, 5 * cell + pad : 5 * cell + pad + side : 2]
    np.testing.assert_array_equal(got, nn_img)


def test_figure2_needs_enough_samples(tmp_path):
    with pytest.raises(ValueError, match="at least rows·\\(cols−1\\) = 20"):
        F.figure2(blobs(5, 16), blobs(10, 16), SHAPE, tmp_path / "x.png")


def test_pairs_panel_and_histograms_and_sigma_curve(tmp_path):
    train, samples = blobs(60, 16, seed=3), blobs(12, 16, seed=4)
    info = F.nn_pairs_panel(samples, train, SHAPE, tmp_path / "pairs.png", n_pairs=50)
    assert len(info["distances"]) == 12  # capped at the samples available
    assert _png(tmp_path / "pairs.png").shape[0] > 50
    F.distance_histograms(
        np.random.default_rng(0).random(30), np.random.default_rng(1).random(40), tmp_path / "hist.png"
    )
    assert _png(tmp_path / "hist.png").size > 0
    with pytest.warns(UserWarning):  # tight blobs: the best σ is on the grid's edge
        r = parzen_protocol(samples, train[:20], train[20:], sigmas=[0.05, 0.1, 0.2])
    F.sigma_curve({"model": r}, tmp_path / "sigma.png")
    assert (tmp_path / "sigma.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="non-empty"):
        F.distance_histograms([], [1.0], tmp_path / "h2.png")


def test_interpolate_linear_and_slerp():
    rng = np.random.default_rng(0)
    z0, z1 = rng.standard_normal((3, 8)), rng.standard_normal((3, 8))
    lin = F.interpolate_z(z0, z1, 5)
    assert lin.shape == (3, 5, 8)
    np.testing.assert_allclose(lin[:, 0], z0)
    np.testing.assert_allclose(lin[:, -1], z1)
    np.testing.assert_allclose(lin[:, 2], (z0 + z1) / 2)
    sl = F.interpolate_z(z0, z1, 5, method="slerp")
    np.testing.assert_allclose(sl[:, 0], z0, atol=1e-12)
    np.testing.assert_allclose(sl[:, -1], z1, atol=1e-12)
    # Between vectors of equal norm, slerp keeps the norm; linear shrinks it.
    u0 = z0 / np.linalg.norm(z0, axis=1, keepdims=True)
    u1 = z1 / np.linalg.norm(z1, axis=1, keepdims=True)
    np.testing.assert_allclose(np.linalg.norm(F.interpolate_z(u0, u1, 7, method="slerp"), axis=2), 1.0)
    assert np.linalg.norm(F.interpolate_z(u0, u1, 7)[:, 3], axis=1).max() < 1.0
    same = F.interpolate_z(z0, z0, 3, method="slerp")  # parallel: no division by zero
    np.testing.assert_allclose(same[:, 1], z0)
    with pytest.raises(ValueError, match="method"):
        F.interpolate_z(z0, z1, 3, method="cubic")
    with pytest.raises(ValueError, match="steps"):
        F.interpolate_z(z0, z1, 1)


def test_figure3_file(tmp_path):
    pytest.importorskip("torch")
    G = TinyGenerator.make(noise_dim=4, d=16)
    rng = np.random.default_rng(0)
    info = F.figure3(G, rng.random((3, 4)), rng.random((3, 4)), SHAPE, tmp_path / "f3.png", steps=6, scale=1)
    img = _png(tmp_path / "f3.png")
    assert img.shape == (3 * 8, 6 * 8, 3) and info["rows"] == 3 and info["steps"] == 6
