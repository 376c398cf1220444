"""Algorithm 1 (both update schemes), the 2014 schedules, determinism, the dry run and the CLI."""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gancore.train import checkpoints as checkpoint  # noqa: E402
from gancore.train import cli as train  # noqa: E402
from gancore.train.losses import discriminator_loss, generator_loss  # noqa: E402
from gancore.train.optimizers import ClassicalMomentum, lr_at, momentum_at  # noqa: E402
from gancore.train.trainer import Trainer, TrainingDiverged  # noqa: E402

from _train_helpers import TINY, assert_same_state, state_of, tiny_config  # noqa: E402

CPU = torch.device("cpu")


def test_2014_schedules():
    cfg = tiny_config()
    assert lr_at(cfg, 0) == 0.1
    assert lr_at(cfg, 1000) == pytest.approx(0.1 / 1.000004**1000)
    assert lr_at(cfg, 10**8) == 1e-6  # floor
    assert momentum_at(cfg, 0) == 0.5  # epoch 1
    assert momentum_at(cfg, 1) == pytest.approx(0.5 + 0.2 / 249)  # epoch 2
    assert momentum_at(cfg, 249) == pytest.approx(0.7)  # epoch 250
    assert momentum_at(cfg, 400) == pytest.approx(0.7)


def test_classical_momentum_is_pylearn2s_rule():
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = ClassicalMomentum([p])
    g1, g2 = torch.tensor([0.5, -1.0]), torch.tensor([1.0, 1.0])
    opt.step([g1], lr=0.1, momentum=0.5)  # v = -0.1 g1
    opt.step([g2], lr=0.05, momentum=0.6)  # v = 0.6 v - 0.05 g2
    v1 = -0.1 * g1
    v2 = 0.6 * v1 - 0.05 * g2
    assert torch.allclose(p.detach(), torch.tensor([1.0, 2.0]) + v1 + v2)


def _trainer(tmp_path, name="run", **kw):
    run = tmp_path / name
    run.mkdir()
    return Trainer(tiny_config(**kw), run, CPU)


def test_simultaneous_step_is_one_joint_sgd_step_from_shared_gradients(tmp_path):
    t = _trainer(tmp_path, momentum=0.0, momentum_final=0.0)
    t.stream.new_epoch()
    g0 = [p.detach().clone() for p in t.gen.parameters()]
    d0 = [p.detach().clone() for p in t.disc.parameters()]
    rng_state, pos = t.rng.get_state(), t.stream.pos
    t.game.step(0.1, 0.0)
    # replay by hand from the same state: same batch, same noise, same dropout masks
    gen, disc = t.gen, t.disc
    with torch.no_grad():
        for p, v in zip(gen.parameters(), g0):
            p.copy_(v)
        for p, v in zip(disc.parameters(), d0):
            p.copy_(v)
    t.rng.set_state(rng_state)
    t.stream.pos = pos
    x = t.stream.take()
    fake = gen(t.game.noise())
    real_logits, fake_logits = disc(x), disc(fake)
    loss_d = discriminator_loss(real_logits, fake_logits, halved=True)
    loss_g = generator_loss(fake_logits, "nonsaturating")  # the same logits: the same dropout masks
    gd = torch.autograd.grad(loss_d, list(disc.parameters()), retain_graph=True)
    gg = torch.autograd.grad(loss_g, list(gen.parameters()))
    t2 = _trainer(tmp_path, "run2", momentum=0.0, momentum_final=0.0)  # a fresh copy to compare
    t2.stream.new_epoch()
    t2.game.step(0.1, 0.0)
    for p, p0, g in zip(t2.disc.parameters(), d0, gd):
        assert torch.allclose(p, p0 - 0.1 * g, atol=1e-7)
    for p, p0, g in zip(t2.gen.parameters(), g0, gg):
        assert torch.allclose(p, p0 - 0.1 * g, atol=1e-7)


def test_alternating_takes_k_fresh_batches_per_iteration(tmp_path):
    t = _trainer(tmp_path, update="alternating", k=2)
    assert t.data.shape[0] == 256 and t.steps_per_epoch == 8  # dry-run data: 8 iterations of k x m
    t.stream.new_epoch()
    seen = []
    take = t.stream.take
    t.stream.take = lambda: seen.append(t.stream.pos) or take()
    g_before = [p.detach().clone() for p in t.gen.parameters()]
    t.game.step(0.1, 0.5)
    assert seen == [0, 16]
    assert not all(torch.equal(a, b) for a, b in zip(g_before, t.gen.parameters()))


def test_alternating_d_steps_do_not_touch_g(tmp_path):
    t = _trainer(tmp_path, update="alternating", k=1)
    t.stream.new_epoch()
    g_before = [p.detach().clone() for p in t.gen.parameters()]
    t.opt_g.step = lambda grads, lr, mom: None  # freeze G's update: only D's steps remain
    d_before = [p.detach().clone() for p in t.disc.parameters()]
    t.game.step(0.1, 0.5)
    assert all(torch.equal(a, b) for a, b in zip(g_before, t.gen.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(d_before, t.disc.parameters()))


@pytest.mark.parametrize(
    "update,g_loss", [("simultaneous", "nonsaturating"), ("alternating", "minimax"), ("alternating", "maxlikelihood")]
)
def test_dry_run_cli_produces_the_run_directory(tmp_path, update, g_loss):
    run = tmp_path / "run"
    args = [*TINY, "--out", str(run), "--update", update, "--g-loss", g_loss]
    assert train.main(args) == 0
    cfg = json.loads((run / "config.json").read_text())
    for key in ("dataset", "preset", "noise_dim", "noise_prior", "image_shape", "seed"):
        assert key in cfg
    assert cfg["update"] == update and cfg["image_shape"] == [1, 28, 28] and cfg["epochs"] == 2
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4, 8, 12, 16]
    for r in rows:
        assert set(r) == {"step", "epoch", "loss_d", "loss_g", "d_real", "d_fake", "lr", "momentum", "images_per_s"}
        assert all(math.isfinite(v) for v in r.values())
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png", "final.png"]
    assert (run / "curves.png").stat().st_size > 1000
    assert checkpoint.latest(run).name == "step_00000016"
    from PIL import Image

    img = Image.open(run / "samples" / "final.png")
    assert img.size == (3 * (2 * 28 + 2), 2 * (2 * 28 + 2))  # 2 rows x 3 cols of 28 px ×2, 1 px border each


def test_two_seeded_runs_are_identical_and_seeds_matter(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        assert train.main([*TINY, "--out", str(tmp_path / name), "--seed", str(seed)]) == 0
    assert_same_state(state_of(tmp_path / "a"), state_of(tmp_path / "b"))
    a, c = state_of(tmp_path / "a"), state_of(tmp_path / "c")
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_max_steps_ends_with_a_checkpoint(tmp_path):
    assert train.main([*TINY, "--out", str(tmp_path / "r"), "--max-steps", "5"]) == 0
    assert checkpoint.latest(tmp_path / "r").name == "step_00000005"
    assert (tmp_path / "r" / "samples" / "final.png").exists()


def test_dcgan_dry_run(tmp_path):
    args = [
        "--dry-run",
        "--no-eval",
        "-q",
        "--preset",
        "dcgan",
        "--dcgan-width",
        "4",
        "--batch-size",
        "8",
        "--noise-dim",
        "8",
        "--epochs",
        "1",
        "--sample-rows",
        "2",
        "--sample-cols",
        "2",
        "--out",
        str(tmp_path / "r"),
    ]
    assert train.main(args) == 0
    assert checkpoint.latest(tmp_path / "r").name == "step_00000008"


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    t = _trainer(tmp_path, epochs=3)
    real_step = t.game.step

    def poisoned(lr, mom):
        out = real_step(lr, mom)
        if t.step >= 10:  # from iteration 11 on, the weights blow up
            with torch.no_grad():
                next(t.gen.parameters()).fill_(float("nan"))
            return out * float("nan")
        return out

    t.game.step = poisoned
    with pytest.raises(TrainingDiverged, match="NaN/inf.*step_00000008"):
        t.run()
    good = checkpoint.latest(tmp_path / "run")
    assert good.name == "step_00000008"
    _, g_state, _, _ = checkpoint.load(good, cfg=t.cfg)
    assert all(torch.isfinite(v).all() for v in g_state.values())


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--epochs", "five"], "invalid int value"),
        (["--update", "sideways"], "invalid choice"),
        (["--dist-timeout", "0"], "positive, finite number of seconds"),
    ],
)
def test_cli_rejects_bad_arguments(argv, match, capsys):
    with pytest.raises(SystemExit) as exc:
        train.main([*TINY, *argv])
    assert exc.value.code == 2 and match in capsys.readouterr().err


def test_out_naming_an_existing_file_is_a_one_line_error(tmp_path, caplog):
    target = tmp_path / "a_file"
    target.write_text("not a run")
    assert train.main([*TINY, "--out", str(target)]) == 2
    assert "--out" in caplog.text and "existing file" in caplog.text
    assert target.read_text() == "not a run"


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--epochs", "0"], "epochs must be >= 1"),
        (["--lr", "nan"], "lr must be a finite number"),
        (["--k", "2"], "needs --update alternating"),
        (["--d-input-keep", "1.5"], "d_input_keep"),
        (["--preset", "dcgan", "--dataset", "tfd"], "dcgan preset supports"),
    ],
)
def test_config_validation_errors_exit_2(tmp_path, argv, match, caplog):
    assert train.main([*TINY, "--out", str(tmp_path / "r"), *argv]) == 2
    assert match in caplog.text


def test_cuda_request_without_cuda(tmp_path, caplog):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert train.main([*TINY, "--out", str(tmp_path / "r"), "--device", "cuda"]) == 2
    assert "CUDA is not available" in caplog.text


def test_existing_run_dir_needs_resume(tmp_path, caplog):
    assert train.main([*TINY, "--out", str(tmp_path / "r"), "--max-steps", "2"]) == 0
    assert train.main([*TINY, "--out", str(tmp_path / "r")]) == 2
    assert "--resume" in caplog.text


def test_help_documents_presets_and_update_schemes(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    out = capsys.readouterr().out
    for word in (
        "mnist_2014",
        "cifar10_fc_2014",
        "tfd_2014",
        "dcgan",
        "simultaneous",
        "alternating",
        "--resume",
        "--dry-run",
        "--max-steps",
        "--data-dir",
        "--device",
        "--k",
        "RUN_DIR",
    ):
        assert word in out


def test_missing_dataset_fails_cleanly_before_writing_anything(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GANCORE_NO_DOWNLOAD", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GANCORE_DATA_DIR", raising=False)
    argv = [
        "--no-eval",
        "-q",
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        str(tmp_path / "empty"),
        "--out",
        str(tmp_path / "r"),
    ]
    assert train.main(argv) == 2
    assert "train-images-idx3-ubyte.gz" in caplog.text and not (tmp_path / "r").exists()


def test_dcgan_adam_and_batchnorm_state_resume_bitwise(tmp_path):
    args = [
        "--dry-run",
        "--no-eval",
        "-q",
        "--preset",
        "dcgan",
        "--dcgan-width",
        "4",
        "--batch-size",
        "8",
        "--noise-dim",
        "8",
        "--sample-rows",
        "1",
        "--sample-cols",
        "2",
    ]
    assert train.main([*args, "--epochs", "2", "--out", str(tmp_path / "ref")]) == 0
    assert train.main([*args, "--epochs", "1", "--out", str(tmp_path / "half")]) == 0
    assert train.main(["--resume", str(tmp_path / "half"), "--epochs", "2", "-q", "--no-eval"]) == 0
    assert_same_state(state_of(tmp_path / "ref"), state_of(tmp_path / "half"))  # includes BN running stats


def test_progress_bar_and_grid():
    import io

    from gancore.common.grid import image_grid, to_uint8
    from gancore.train.progress import Progress

    buf = io.StringIO()
    p = Progress(100, bar=True, stream=buf)
    p.update(50, 0, dict(loss_d=0.5, loss_g=1.0, d_real=0.6, d_fake=0.4, lr=0.1, momentum=0.5, images_per_s=1000))
    p.close()
    assert buf.getvalue().startswith("\repoch 1 [") and "50/100 ETA" in buf.getvalue()
    tiles = to_uint8(np.linspace(0, 1, 6 * 12).reshape(6, 12), (3, 2, 2))  # channel-major input
    assert tiles.shape == (6, 2, 2, 3) and tiles[0, 0, 0].tolist() == [0, round(4 / 71 * 255), round(8 / 71 * 255)]
    grid = np.asarray(image_grid(tiles, rows=2, cols=3, pad=1, scale=1, background=(128, 128, 128)))
    assert grid.shape == (2 * 4, 3 * 4, 3) and grid.dtype == np.uint8
    assert grid[0, 0].tolist() == [128, 128, 128] and grid[1, 1].tolist() == tiles[0, 0, 0].tolist()
    assert to_uint8(np.full((1, 4), np.nan), (1, 2, 2)).max() == 0  # NaN pixels are drawn black


def test_bf16_precision_dry_run(tmp_path):
    assert train.main([*TINY, "--out", str(tmp_path / "r"), "--precision", "bf16", "--update", "alternating"]) == 0
    state = state_of(tmp_path / "r")
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in state.values())  # weights stay fp32
