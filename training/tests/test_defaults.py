"""Defaults derived from the dataset, the declared options, and the quality gate: Django-free, on real folders and a
real (tiny) training run."""

from pathlib import Path

import pytest
from PIL import Image

from tango_common.images import suggested_input_size
from tango_common.options import OptionsError, check_options, scrub_paths, with_defaults
from training.engine import defaults as d
from training.engine.options import HPO_OPTIONS, TRAIN_OPTIONS, advanced_train_options
from training.engine.quality import summary, verdict
from training.engine.train import TrainConfig, train


def folder(root: Path, *, n: int, side: int, mode: str, classes=("a", "b", "c")) -> Path:
    for split, count in (("train", n), ("val", 2)):
        for cls in classes:
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.new(mode, (side, side + 3)).save(root / split / cls / f"{i}.png")
    return root


def test_input_size_comes_from_the_images_and_is_never_upscaled():
    assert [suggested_input_size(s) for s in (8, 16, 64, 70, 100, 500, 0)] == [8, 16, 64, 64, 96, 224, 224]


def test_defaults_follow_the_dataset(tmp_path):
    photos = d.data_facts(folder(tmp_path / "p", n=72, side=64, mode="RGB"), ["a", "b", "c"])
    assert photos == d.DataFacts(n_train=216, n_classes=3, side=64, grayscale=False, n_val=6)
    values = d.default_options(photos)
    assert values["batch_size"] == 32 and values["lr"] == 0.025 and values["warmup_epochs"] >= 1
    assert values["epochs"] >= 30 and values["label_smoothing"] > 0 and values["weight_decay"] > 0
    assert values["augmentation"] == "standard" and values["hflip"], "photos are flipped and cropped"

    digits = d.data_facts(folder(tmp_path / "d", n=72, side=16, mode="L"), ["a", "b", "c"])
    assert digits.grayscale and not d.default_options(digits)["hflip"], "a mirrored 2 is not a 2"

    chosen, derived = d.resolve({"epochs": 5, "batch_size": 64}, photos)
    assert chosen["epochs"] == 5 and chosen["lr"] == 0.05, "the learning rate follows the user's batch size"
    assert "epochs" not in derived and "lr" in derived and chosen["warmup_epochs"] == 0
    TrainConfig.from_dict({**chosen, "model": "resnet18", "input_size": 64}).validate()
    assert "216 training images of 3 classes" in d.explain(chosen, derived, photos)


def test_a_small_dataset_trains_a_model_it_can_bear_among_those_that_fit():
    items = [
        {"key": "resnet34", "label": "ResNet-34", "params": 21.3e6, "accuracy": 73, "fits_latency": True,
         "fits_memory": True},
        {"key": "resnet18", "label": "ResNet-18", "params": 11.2e6, "accuracy": 70, "fits_latency": True,
         "fits_memory": True},
        {"key": "densenet_tiny", "label": "DenseNet-tiny", "params": 0.3e6, "accuracy": 50, "fits_latency": True,
         "fits_memory": True},
        {"key": "vgg_tiny", "label": "VGG-tiny", "params": 0.5e6, "accuracy": 60, "fits_latency": False,
         "fits_memory": True},
    ]
    model, why = d.bearable_model(items, recommended="resnet34", n_train=216)
    assert model == "resnet18" and "216 training images" in why and "ResNet-34" in why
    assert d.bearable_model(items, recommended="resnet34", n_train=100_000) == ("resnet34", "")
    assert d.bearable_model(items, recommended="resnet18", n_train=216) == ("resnet18", "")


def test_options_are_checked_against_their_declaration():
    assert check_options({"epochs": 20.0, "lr": 1, "augmentation": "strong"}, TRAIN_OPTIONS,
                         task="classification") == {"epochs": 20, "lr": 1.0, "augmentation": "strong"}
    with pytest.raises(OptionsError) as caught:
        check_options({"weights_path": "/data/media/projects/1/jobs/2/model.pt", "epochs": 0, "batch_size": True,
                       "lr": float("nan"), "optimizer": "lbfgs"}, TRAIN_OPTIONS, task="classification")
    problems = caught.value.problems
    assert set(problems) == {"weights_path", "epochs", "batch_size", "lr", "optimizer"}
    assert problems["weights_path"].startswith("unknown option") and "1 to 500" in problems["epochs"]
    with pytest.raises(OptionsError, match="overrides.model"):  # no path into ultralytics either
        check_options({"overrides": {"model": "/elsewhere/best.pt"}}, TRAIN_OPTIONS, task="detection")
    with pytest.raises(OptionsError, match="batch_size: unknown"):
        check_options({"batch_size": 8}, TRAIN_OPTIONS, task="detection")
    assert with_defaults({"trials": 3}, HPO_OPTIONS) == {"trials": 3, "minutes": 30, "epochs": 3, "workers": 1}
    assert {o.name for o in advanced_train_options("classification")} >= {
        "epochs", "batch_size", "lr", "optimizer", "augmentation", "patience"}


def test_server_paths_are_scrubbed_from_messages():
    text = ("[Errno 2] No such file or directory: '/srv/tango/var/media/projects/3/jobs/9/model.pt' "
            "(see /usr/lib/python3.11/site-packages/torch/serialization.py, GET /api/projects/)")
    clean = scrub_paths(text, roots=["/srv/tango/var"])
    assert "/srv" not in clean and "/usr" not in clean and "model.pt" in clean and "serialization.py" in clean


def test_a_run_at_chance_fails_the_gate_with_what_to_try():
    collapsed = [[28, 0, 0], [28, 0, 0], [28, 0, 0]]  # everything predicted as the first class
    failed = verdict(top1=1 / 3, confusion=collapsed, class_names=["cat", "cup", "rocket"], n_train=216,
                     input_size=224, image_side=64, epochs=10, history=[{"val_loss": 1e6}])
    assert not failed["passed"] and abs(failed["required"] - 0.436) < 0.001
    text = summary(failed)
    assert "no better than chance (33.3%" in text and "predicted as 'cat'" in text
    assert "set the input size to 64" in text
    good = verdict(top1=0.9, confusion=[[25, 3, 0], [2, 26, 0], [0, 3, 25]], class_names=["a", "b", "c"])
    assert good["passed"]
    assert not verdict(top1=0.9, confusion=[[25, 3, 0], [2, 26, 0], [0, 3, 25]], class_names=["a", "b", "c"],
                       min_top1=0.95)["passed"]


def test_precise_batchnorm_keeps_a_resumed_run_exact(dataset, tmp_path, report):
    data_dir, classes = dataset
    config = {"model": "resnet18", "input_size": 16, "epochs": 2, "batch_size": 16, "precise_bn": True,
              "augmentation": "standard", "hflip": True, "label_smoothing": 0.1, "warmup_epochs": 1, "lr": 0.025}
    first = train(data_dir=data_dir, class_names=classes, config=TrainConfig.from_dict(config),
                  out_dir=tmp_path / "a", report=report, resume=False)
    again = train(data_dir=data_dir, class_names=classes, config=TrainConfig.from_dict(config),
                  out_dir=tmp_path / "b", report=report, resume=False)
    assert first.weights_sha256 == again.weights_sha256, "seeded: the BatchNorm pass draws from its own seed"
    assert first.final["top1"] > 0.5


def test_a_small_dataset_gets_a_bounded_number_of_epochs(tmp_path):
    """3 classes x 24 training photos: 4 batches an epoch asked 100 epochs for 1,500 steps; the default stops at
    MAX_EPOCHS (measured no worse on such sets, bench/train_defaults.py), and a large set still gets 15 passes."""
    small = d.data_facts(folder(tmp_path / "s", n=24, side=64, mode="RGB"), ["a", "b", "c"])
    assert small.n_train == 72 and d.default_options(small)["epochs"] == d.MAX_EPOCHS == 50
    large = d.DataFacts(n_train=100_000, n_classes=10, side=64, grayscale=False)
    assert d.default_options(large)["epochs"] == 15
