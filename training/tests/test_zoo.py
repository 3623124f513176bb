import functools

import pytest
import torch

from training.engine.zoo import FAMILIES, build_model, complexity_level, load_weights, model_names, model_profile


@functools.cache
def built(name: str, input_size: int = 8) -> torch.nn.Module:
    return build_model(name, num_classes=3, input_size=input_size).eval()


def test_every_family_has_five_levels_from_small_to_large_and_resnet_the_papers_sixth():
    assert sorted(FAMILIES) == ["densenet", "resnet", "vgg"]
    for family, names in FAMILIES.items():
        levels = 6 if family == "resnet" else 5
        assert [complexity_level(n) for n in names] == list(range(1, levels + 1))
    assert len(model_names()) == 16


def test_resnet203_is_built_literally_as_the_paper_prints_it():
    with torch.device("meta"):  # shapes only: 67 bottleneck blocks need no real memory to count
        model = build_model("resnet203", num_classes=1000, input_size=224)
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    assert [len(stage) for stage in stages] == [3, 24, 37, 3]
    # As ResNet depths are counted: every convolution on the main path plus the classifier; the four 1x1
    # projection shortcuts ("downsample") are not counted.
    main_path = [name for name, m in model.named_modules()
                 if isinstance(m, torch.nn.Conv2d | torch.nn.Linear) and "downsample" not in name]
    assert len(main_path) == 3 * 67 + 2 == 203


@pytest.mark.parametrize("name", model_names())
def test_every_model_classifies_a_small_input(name):
    with torch.no_grad():
        logits = built(name)(torch.rand(2, 3, 8, 8))
    assert logits.shape == (2, 3)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["resnet18", "densenet_tiny", "vgg_tiny"])
@pytest.mark.parametrize("size", [12, 48])
def test_smallest_and_standard_stems_both_run(name, size):
    model = build_model(name, num_classes=4, input_size=size).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, size, size)).shape == (1, 4)


def test_parameter_count_grows_with_complexity_level():
    for names in FAMILIES.values():
        params = [sum(p.numel() for p in built(n).parameters()) for n in names]
        assert params == sorted(params), names


def test_unknown_model_name_is_refused():
    with pytest.raises(ValueError, match="Unknown model"):
        build_model("resnet9000", num_classes=2, input_size=32)


def test_profile_matches_published_resnet18_numbers():
    profile = model_profile(build_model("resnet18", num_classes=1000, input_size=224), 224)
    assert profile["params"] == 11_689_512  # torchvision's resnet18
    assert profile["macs"] == pytest.approx(1.82e9, rel=0.02)  # the paper's "1.8 GFLOPs" are MACs
    assert profile["flops"] == 2 * profile["macs"]


def test_profile_of_the_small_input_stem_matches_cifar_resnet18():
    assert model_profile(build_model("resnet18", num_classes=10, input_size=32), 32)["macs"] == pytest.approx(
        0.556e9, rel=0.02
    )


def test_weights_from_a_model_with_another_head_load_except_the_head(tmp_path, report):
    source = build_model("resnet18", num_classes=10, input_size=32)
    path = tmp_path / "pretrained.pth"
    torch.save(source.state_dict(), path)

    target = build_model("resnet18", num_classes=3, input_size=32, weights_path=path, report=report)

    assert torch.equal(target.conv1.weight, source.conv1.weight)
    assert torch.equal(target.layer4[1].bn2.running_mean, source.layer4[1].bn2.running_mean)
    assert target.fc.weight.shape == (3, 512)
    assert "skipped (shape differs): fc.bias, fc.weight" in report.lines[0]


def test_weights_saved_from_dataparallel_or_a_checkpoint_wrapper_load(tmp_path):
    source = build_model("vgg_tiny", num_classes=3, input_size=16)
    path = tmp_path / "wrapped.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    summary = load_weights(build_model("vgg_tiny", num_classes=3, input_size=16), path)
    assert summary["skipped_shape"] == [] and summary["missing"] == []


@pytest.mark.parametrize("content", [b"not a checkpoint at all", None])
def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path, content):
    path = tmp_path / "weights.pt"
    if content is None:
        torch.save([1, 2, 3], path)  # a valid torch file, but not a mapping of tensors
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match="weights.pt"):
        build_model("resnet18", num_classes=3, input_size=32, weights_path=path)


def test_a_state_dict_for_another_architecture_is_refused(tmp_path):
    path = tmp_path / "vgg.pt"
    torch.save(build_model("vgg_tiny", num_classes=3, input_size=16).state_dict(), path)
    with pytest.raises(ValueError, match="no tensor matches"):
        build_model("resnet18", num_classes=3, input_size=16, weights_path=path)
