import hashlib

import pytest
import torch

from training.engine.train import TrainConfig, _Trainer, lr_factor, train

FAST = dict(model="densenet_tiny", batch_size=16, input_size=16, lr=0.05)


class Cancelled(Exception):
    pass


def run(dataset, out_dir, report, **options):
    root, class_names = dataset
    config = TrainConfig(**{**FAST, **options})
    return train(data_dir=root, class_names=class_names, config=config, out_dir=out_dir, report=report)


def test_training_on_the_tiny_dataset_beats_chance(dataset, tmp_path, report):
    epochs = []
    root, class_names = dataset
    result = train(data_dir=root, class_names=class_names, config=TrainConfig(**FAST, epochs=4), out_dir=tmp_path,
                   report=report, on_epoch=epochs.append)

    assert result.best_top1 > 0.6  # chance is 1/3
    assert result.final["top1"] == pytest.approx(result.best_top1)
    assert [e["epoch"] for e in result.history] == [1, 2, 3, 4] == [e["epoch"] for e in epochs]
    assert set(epochs[0]) >= {"epoch", "train_loss", "val_loss", "top1", "top5", "lr", "images_per_s", "seconds"}
    assert epochs[0]["top5"] is None  # three classes: top-5 means nothing
    assert sum(map(sum, result.confusion_matrix)) == 24
    assert set(result.per_class_accuracy) == set(class_names)
    assert result.weights_sha256 == hashlib.sha256(open(result.weights_path, "rb").read()).hexdigest()
    assert result.params > 0 and result.flops == 2 * result.macs
    assert result.device == "cpu"
    assert {p.name for p in tmp_path.iterdir()} == {"last.pt", "best.pt", "model.pt"}


def test_progress_rises_to_100_and_lines_show_a_bar_and_epoch_metrics(dataset, tmp_path, report):
    run(dataset, tmp_path, report, epochs=2)
    assert report.progress == sorted(report.progress) and report.progress[-1] == 100
    assert any("epoch 1/2 [####################] 100%" in line and "img/s" in line for line in report.lines)
    assert any(line.startswith("epoch 2/2  train loss") and "top-1" in line and "lr" in line for line in report.lines)


def cancel_at(progress_call: int):
    """A report() that raises on its n-th progress call, as the portal does when a user cancels."""
    calls = {"n": 0}

    def report(line, progress=None):
        if progress is not None and line is None:
            calls["n"] += 1
            if calls["n"] == progress_call:
                raise Cancelled

    return report


def test_cancel_mid_epoch_then_resume_gives_the_uninterrupted_result(dataset, tmp_path, report):
    options = dict(epochs=3, model="vgg_tiny")
    reference = run(dataset, tmp_path / "reference", report, **options)

    steps = 3  # 60 train images // batch 16
    with pytest.raises(Cancelled):
        run(dataset, tmp_path / "run", cancel_at(steps + 2), **options)  # epoch 2, after its second batch
    checkpoint = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert checkpoint["epoch"] == 1  # the unfinished epoch is not counted...
    assert checkpoint["partial"]["stats"]["batches_done"] == 2  # ...but its finished batches are kept

    resumed = run(dataset, tmp_path / "run", report, **options)

    assert [e["epoch"] for e in resumed.history] == [1, 2, 3]
    assert resumed.epochs_completed == 3
    for ours, theirs in zip(resumed.history, reference.history, strict=True):
        for key in ("train_loss", "val_loss", "top1", "lr"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-6), key
    ours = torch.load(resumed.weights_path, weights_only=True)
    theirs = torch.load(reference.weights_path, weights_only=True)
    for key in theirs:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-5, atol=1e-6)


def test_cancel_between_epochs_keeps_the_finished_epoch(dataset, tmp_path):
    def report(line, progress=None):
        if line and line.startswith("epoch 1/2  train loss"):
            raise Cancelled

    with pytest.raises(Cancelled):
        run(dataset, tmp_path, report, epochs=2)
    resumed_lines = []
    result = run(dataset, tmp_path, lambda line, progress=None: line and resumed_lines.append(line), epochs=2)
    assert [e["epoch"] for e in result.history] == [1, 2]
    assert resumed_lines[0].startswith("resuming after epoch 1")


def test_a_checkpoint_from_another_configuration_is_not_resumed(dataset, tmp_path, report):
    run(dataset, tmp_path, report, epochs=1)
    run(dataset, tmp_path, report, epochs=1, lr=0.01)
    assert any("different configuration" in line for line in report.lines)


def test_early_stopping_ends_training_after_patience_epochs_without_improvement(dataset, tmp_path, report,
                                                                              monkeypatch):
    evaluate = _Trainer._evaluate

    def flat_top1(self, **kwargs):  # a validation accuracy that never improves after epoch 1
        return {**evaluate(self, **kwargs), "top1": 0.5}

    monkeypatch.setattr(_Trainer, "_evaluate", flat_top1)
    result = run(dataset, tmp_path, report, epochs=5, patience=2)
    assert result.stopped_early and result.epochs_completed == 3 and result.best_epoch == 1
    assert any(line.startswith("early stop") for line in report.lines)


def test_bad_options_are_refused_before_any_work(dataset, tmp_path, report):
    with pytest.raises(ValueError, match="optimizer"):
        run(dataset, tmp_path, report, optimizer="lbfgs")
    with pytest.raises(ValueError, match="Unknown training options"):
        TrainConfig.from_dict({"epochs": 1, "learning_rate": 0.1})


def test_adamw_with_step_schedule_and_warmup_trains(dataset, tmp_path, report):
    result = run(dataset, tmp_path, report, epochs=3, optimizer="adamw", lr=3e-3, schedule="step",
                 warmup_epochs=1, label_smoothing=0.1, hflip=True)
    assert result.best_top1 > 0.5


def test_lr_schedules():
    assert lr_factor(0, schedule="cosine", total_steps=10, warmup_steps=2) == 0.5
    assert lr_factor(2, schedule="cosine", total_steps=10, warmup_steps=2) == 1.0
    assert lr_factor(10, schedule="cosine", total_steps=10, warmup_steps=0) == pytest.approx(0.0)
    assert [lr_factor(s, schedule="step", total_steps=8, warmup_steps=0) for s in (0, 4, 6)] == pytest.approx(
        [1, 0.1, 0.01]
    )
    assert lr_factor(7, schedule="none", total_steps=8, warmup_steps=0) == 1.0


def test_requesting_cuda_without_a_gpu_says_so(dataset, tmp_path, report):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="cuda"):
        run(dataset, tmp_path, report, device="cuda")
