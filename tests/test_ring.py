"""The ring of 8 Gaussians (Metz et al. 2016 §3.1): its metrics on constructed sample sets, and a short run."""

import json

import numpy as np
import pytest

from gancore.evaluate import ring


def _at_modes(modes, n_per, std=ring.STD, seed=0):
    rng = np.random.default_rng(seed)
    centers = ring.ring_centers()[list(modes)]
    return np.concatenate([c + std * rng.standard_normal((n_per, 2)) for c in centers])


def test_data_is_the_ring():
    x = ring.sample_ring(8000, np.random.default_rng(1))
    assert x.shape == (8000, 2) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(ring.ring_centers(), axis=1), 2.0)
    m = ring.mode_metrics(x)
    assert m["modes_covered"] == 8 and m["high_quality"] > 0.98  # 3σ holds 98.9 % of a 2-D Gaussian
    assert min(m["counts"]) > 800


def test_all_modes_one_mode_and_noise():
    assert ring.mode_metrics(_at_modes(range(8), 300))["modes_covered"] == 8
    one = ring.mode_metrics(_at_modes([3], 2400))
    assert one["modes_covered"] == 1 and one["counts"][3] > 2300 and one["high_quality"] > 0.95
    noise = np.random.default_rng(2).uniform(-3, 3, size=(2500, 2))
    m = ring.mode_metrics(noise)
    # 8 discs of radius 0.06 cover 8·π·0.06²/36 = 0.25 % of the square
    assert m["high_quality"] < 0.01 and m["modes_covered"] == 0


def test_nearest_mode_measures_tell_a_spread_collapse_from_a_spread_cover():
    rng = np.random.default_rng(3)
    blob = ring.ring_centers()[2] + 0.3 * rng.standard_normal((2500, 2))  # around mode 2, 5σ wide: no quality
    m = ring.mode_metrics(blob)
    assert m["high_quality"] < 0.05 and m["modes_covered"] <= 1
    assert m["modes_nearest"] == 1 and m["top_mode_share"] > 0.95 and np.argmax(m["nearest_counts"]) == 2
    angles = rng.uniform(0, 2 * np.pi, 2500)  # the whole circle, as spread
    circle = np.stack([2 * np.cos(angles), 2 * np.sin(angles)], 1) + 0.3 * rng.standard_normal((2500, 2))
    c = ring.mode_metrics(circle)
    assert c["high_quality"] < 0.05 and c["modes_nearest"] == 8 and c["top_mode_share"] < 0.2
    assert sum(c["nearest_counts"]) == 2500


def test_one_percent_rule_and_off_mode_points():
    c = ring.ring_centers()
    at = lambda mode, n: np.repeat(c[mode : mode + 1], n, axis=0)  # noqa: E731  (exactly on the mean)
    assert ring.mode_metrics(np.concatenate([at(0, 990), at(5, 10)]))["modes_covered"] == 2  # 10/1000 = 1 %
    nine = ring.mode_metrics(np.concatenate([at(0, 991), at(5, 9)]))
    assert nine["modes_covered"] == 1 and nine["modes_any"] == 2  # 0.9 %: not by 1 %, but by VEEGAN's rule
    far = ring.ring_centers()[:1] + np.array([[0.07, 0.0]])  # 3.5σ from mode 0: not high quality
    assert ring.assign_modes(far).tolist() == [-1]
    with pytest.raises(ValueError, match="samples must be"):
        ring.mode_metrics(np.zeros((4, 3)))


def test_short_training_smoke(tmp_path):
    pytest.importorskip("torch")
    base = ring.RingConfig(steps=6, batch_size=16, track_every=3, track_samples=32, final_samples=100)
    techniques = {"plain": {}, "unrolled": {"unroll": 1}, "minibatch": {"minibatch_features": 3}}
    techniques["feature_matching"] = {"g_loss": "feature_matching"}
    report = ring.run_experiment(tmp_path, techniques, 1, base)
    for name in techniques:
        s = report["summary"][name]
        assert 0 <= s["modes_covered"][0] <= 8 and 0.0 <= s["high_quality"][0] <= 1.0
    rec = json.loads((tmp_path / "runs" / "plain_seed0.json").read_text())
    assert rec["steps"] == [3, 6] and all(sum(o) == 32 for o in rec["occupancy"])
    assert len(rec["occupancy_nearest"]) == 2 and all(sum(o) == 32 and len(o) == 8 for o in rec["occupancy_nearest"])
    assert (tmp_path / "ring_nearest_modes_over_time.png").stat().st_size > 0
    assert (tmp_path / "ring_samples.png").stat().st_size > 0
    assert (tmp_path / "ring_modes_over_time.png").stat().st_size > 0
    mtime = (tmp_path / "runs" / "plain_seed0.json").stat().st_mtime_ns
    ring.run_experiment(tmp_path, {"plain": {}}, 1, base)  # done runs are read back, not redone
    assert (tmp_path / "runs" / "plain_seed0.json").stat().st_mtime_ns == mtime


def test_a_labelled_run_logs_its_progress(caplog):
    """Runs of the paper-sized settings take minutes to an hour: a labelled run says how far it is."""
    pytest.importorskip("torch")
    cfg = ring.RingConfig(steps=20, batch_size=16, track_every=10, track_samples=32, final_samples=100)
    with caplog.at_level("INFO", logger=ring.log.name):
        ring.train_ring(cfg, label="plain seed 0")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("plain seed 0: step")]
    assert (
        len(lines) == ring.PROGRESS_LINES - 1 and lines[0].startswith("plain seed 0: step 2/20") and "ETA" in lines[0]
    )
    caplog.clear()
    ring.train_ring(cfg)  # no label: a library call stays quiet
    assert not caplog.records


def test_cli_validates(capsys):
    for bad in (["--seeds", "0"], ["--techniques", "wgan"], ["--steps", "1"], ["--unroll", "0"], ["--settings", "big"]):
        with pytest.raises(SystemExit) as e:
            ring.main(["unused", *bad])
        assert e.value.code == 2


def test_cli_settings_metz2016_trains_the_authors_sizes(tmp_path, capsys):
    pytest.importorskip("torch")
    assert (
        ring.main([str(tmp_path), "--settings", "metz2016", "--steps", "3", "--techniques", "plain", "--seeds", "1"])
        == 0
    )
    settings = json.loads((tmp_path / "ring_report.json").read_text())["settings"]
    want = {**ring.SETTINGS["metz2016"], "steps": 3}
    assert {k: settings[k] for k in want} == want
    assert "settings metz2016, 3 steps" in capsys.readouterr().out


def test_veegan2017_nets_are_relu_with_a_one_layer_discriminator():
    torch = pytest.importorskip("torch")
    cfg = ring.RingConfig(**{**ring.SETTINGS["veegan2017"], "steps": 2})
    gen, disc = ring._nets(cfg)
    linears = lambda m: [x for x in m.modules() if isinstance(x, torch.nn.Linear)]  # noqa: E731
    assert [tuple(x.weight.shape) for x in linears(gen)] == [(128, 255), (128, 128), (2, 128)]
    assert [tuple(x.weight.shape) for x in linears(disc)] == [(128, 2), (1, 128)]
    assert {type(x) for x in [*gen.modules(), *disc.modules()]} & {torch.nn.Tanh, torch.nn.ReLU} == {torch.nn.ReLU}
    assert disc.features(torch.zeros(3, 2)).min() >= 0  # f(x) is the ReLU layer's output
    tanh_gen, _ = ring._nets(ring.RingConfig())
    assert any(isinstance(x, torch.nn.Tanh) for x in tanh_gen.modules())
    with pytest.raises(ValueError, match="activation"):
        ring._nets(ring.RingConfig(activation="gelu"))
    with pytest.raises(ValueError, match="d_hidden_layers"):
        ring._nets(ring.RingConfig(d_hidden_layers=0))
