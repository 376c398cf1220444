"""``python -m gancore.train.sweep``: seed lists, resuming where it stopped, the validation-selected summary."""

import json

import pytest

from gancore.train import sweep


@pytest.mark.parametrize(
    "text,seeds", [("0-4", [0, 1, 2, 3, 4]), ("1,3,7", [1, 3, 7]), ("0-1,10", [0, 1, 10]), ("5", [5])]
)
def test_seed_lists(text, seeds):
    assert sweep.parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "3-1", "1,1", "-2", "0-x"])
def test_bad_seed_lists_are_one_line_errors(text):
    with pytest.raises(ValueError, match="--seeds"):
        sweep.parse_seeds(text)


def test_bad_flags_exit_2_before_anything_runs(tmp_path, capsys):
    assert sweep.main(["--seeds", "0-1", "--eval-epochs", "0", "--out", str(tmp_path / "s")]) == 2
    assert sweep.main(["--seeds", "0", "--eval-epochs", "5", "--out", str(tmp_path / "s"), "--seed", "3"]) == 2
    assert not (tmp_path / "s").exists()


def _fake_report(path, test, valid):
    path.mkdir(parents=True)
    parzen = {"mean": test, "se": 1.0, "sigma": 0.2, "valid_ll": [valid - 5, valid, valid - 1]}
    (path / "report.json").write_text(json.dumps({"parzen": parzen}))


def test_summary_selects_on_validation_not_on_test(tmp_path):
    runs = {(0, 5): (100.0, 90.0), (0, 10): (150.0, 140.0), (1, 5): (200.0, 130.0), (1, 10): (120.0, 150.0)}
    for (seed, epoch), (test, valid) in runs.items():
        _fake_report(tmp_path / f"seed_{seed}" / "epochs" / f"epoch_{epoch:04d}", test, valid)
    s = sweep.summarize(tmp_path, [0, 1, 2], [5, 10])
    best = s["selected_on_validation"]
    assert (best["seed"], best["epoch"], best["test"]) == (1, 10, 120.0)  # best validation, not best test (200)
    assert s["by_epoch"]["5"]["test"]["mean"] == 150.0 and s["by_epoch"]["5"]["test"]["n"] == 2
    assert s["selected_per_seed_test"]["mean"] == pytest.approx(135.0)  # seed 0 → epoch 10, seed 1 → epoch 10
    md = (tmp_path / "summary.md").read_text()
    assert "| 2 | — | — |" in md and "seed 1, epoch 10" in md


def test_finished_epochs_are_skipped_and_a_started_seed_resumes(tmp_path, monkeypatch):
    calls, scored = [], []
    monkeypatch.setattr("gancore.train.cli.main", lambda flags: calls.append(flags) or 0)
    monkeypatch.setattr(sweep, "score", lambda run_dir, out_dir, threads: scored.append(out_dir.name))
    run = tmp_path / "seed_3"
    _fake_report(run / "epochs" / "epoch_0005", 1.0, 1.0)  # epoch 5 done earlier
    (run / "config.json").write_text("{}")
    assert sweep.run_seed(3, [5, 10], run, ["--threads", "1"], 0) is None
    assert calls == [["--threads", "1", "--seed", "3", "--resume", str(run), "--epochs", "10", "--no-eval"]]
    assert scored == ["epoch_0010"]


def test_an_interrupted_seed_stops_the_sweep(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("gancore.train.cli.main", lambda flags: calls.append(flags) or 130)  # Ctrl-C / SIGTERM
    assert sweep.main(["--seeds", "0-2", "--eval-epochs", "5", "--out", str(tmp_path)]) == 130
    assert len(calls) == 1


def test_summary_carries_the_classifiers_measures_when_reports_have_them(tmp_path):
    for seed, acc in [(0, 0.9), (1, 0.7)]:
        path = tmp_path / f"seed_{seed}" / "epochs" / "epoch_0025"
        _fake_report(path, 100.0 + seed, 90.0)
        report = json.loads((path / "report.json").read_text())
        report["conditional"] = {"accuracy": {"accuracy": acc}}
        report["classifier"] = {
            "samples": {"digits_covered": 10 - seed, "kl_to_uniform": 0.01, "frechet_distance": 50.0}
        }
        (path / "report.json").write_text(json.dumps(report))
    _fake_report(tmp_path / "seed_2" / "epochs" / "epoch_0025", 80.0, 70.0)  # a report without them (e.g. CIFAR-10)
    s = sweep.summarize(tmp_path, [0, 1, 2], [25])
    stats = s["by_epoch"]["25"]
    assert stats["conditional_accuracy"]["mean"] == pytest.approx(0.8) and stats["conditional_accuracy"]["n"] == 2
    assert stats["digits_covered"]["min"] == 9.0 and "classifier_score" not in stats
    assert stats["test"]["n"] == 3  # Parzen still summarizes every seed
    md = (tmp_path / "summary.md").read_text()
    assert "| conditional_accuracy | 0.800 ± 0.141" in md and "classifier_score" not in md


def test_summary_without_classifier_measures_has_no_classifier_table(tmp_path):
    _fake_report(tmp_path / "seed_0" / "epochs" / "epoch_0005", 1.0, 1.0)
    sweep.summarize(tmp_path, [0], [5])
    assert "bundled MNIST classifier" not in (tmp_path / "summary.md").read_text()
