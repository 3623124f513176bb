"""The detection zoo: the YOLOv7 family's bodies against the published models, YOLO11 from ultralytics' yaml."""

import pytest

from training.engine.yolo import yolov7, zoo


@pytest.mark.parametrize("name", list(yolov7.BUILDERS))
def test_yolov7_backbone_and_neck_match_the_published_model_within_ten_percent(name):
    # Built on the meta device at 640 px with 80 classes: every layer exists and the forward pass runs, but no
    # weight is allocated, so the seven models (590 M parameters) take seconds.
    counts = zoo.parameter_counts(name, nc=80, input_size=640)
    published_body = yolov7.published_body_params(name)
    assert abs(counts["body"] / published_body - 1) <= 0.10, (counts["body"], published_body)
    levels = [8, 16, 32] if name in ("yolov7-tiny", "yolov7", "yolov7x") else [8, 16, 32, 64]
    assert counts["strides"] == levels


def test_yolov7_head_sizes_follow_the_original_design():
    # IDetect: a 1x1 conv per level to 3 anchors x (5 + 80) outputs; tiny's levels have 128, 256, 512 channels.
    assert yolov7.original_head_params("yolov7-tiny") == (128 + 256 + 512) * 255 + 3 * 255
    assert yolov7.auxiliary_head_params("yolov7") == 0
    # The published D6 figure is the training graph, auxiliary head included (see PUBLISHED_WITH_AUX).
    d6 = zoo.parameter_counts("yolov7-d6")["body"]
    total = d6 + yolov7.original_head_params("yolov7-d6") + yolov7.auxiliary_head_params("yolov7-d6")
    assert round(total / 1e5) == round(yolov7.PUBLISHED["yolov7-d6"][0] / 1e5)


@pytest.mark.parametrize("name", list(yolov7.BUILDERS))
def test_yolov7_yaml_files_are_what_the_generator_writes(name):
    assert yolov7.yaml_path(name).read_text(encoding="utf-8") == yolov7.yaml_text(name)


def test_yolov7_yamls_use_only_layers_ultralytics_knows():
    from ultralytics.nn import tasks

    for name in yolov7.BUILDERS:
        spec = yolov7.model_dict(name)
        for _, _, module, _ in spec["backbone"] + spec["head"]:
            assert module.startswith("nn.") or module in vars(tasks), (name, module)


def test_zoo_lists_both_families_with_their_yaml():
    models = {m["name"]: m for m in zoo.detection_models()}
    assert [m for m in models if m.startswith("yolov7")] == list(yolov7.BUILDERS)
    assert [m for m in models if m.startswith("yolo11")] == ["yolo11n", "yolo11s", "yolo11m", "yolo11l", "yolo11x"]
    assert models["yolov7-e6e"]["yaml"].endswith("models/yolov7-e6e.yaml")
    assert models["yolo11s"]["yaml"] == "yolo11s.yaml" and models["yolo11s"]["level"] == 2
    assert models["yolov7-w6"]["published"]["params"] == 70.4e6
    with pytest.raises(ValueError, match="Unknown detection model"):
        zoo.family_of("yolov9")


def test_yolo11_scales_come_from_ultralytics_bundled_yaml():
    counts = zoo.parameter_counts("yolo11n", nc=80)
    assert 2.5e6 < counts["total"] < 2.7e6  # ultralytics publishes 2.6 M for YOLO11n
    model = zoo.build_detection_model("yolov7-tiny", nc=3)
    assert model.yaml["nc"] == 3 and model.stride.tolist() == [8.0, 16.0, 32.0]


def test_e_elan_shortcut_is_a_parameter_free_sum():
    import torch
    from ultralytics.nn.tasks import parse_model

    net = yolov7._Net()
    a = net.conv(-1, 8, 3, 1)
    b = net.conv(a, 8, 1, 1)
    net.shortcut(b, a)
    net.backbone_rows = len(net.rows)
    layers, _ = parse_model({"nc": 1, "backbone": net.rows, "head": []}, ch=3, verbose=False)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ya = layers[0](x)
        yb = layers[1](ya)
        boxed = layers[2](yb)
        summed = layers[3]([boxed, ya])
    assert torch.equal(summed, ya + yb)
    assert sum(p.numel() for p in layers[2:].parameters()) == 0


def test_yolov7_tiny_trains_a_step_with_ultralytics_loss():
    import torch

    model = zoo.build_detection_model("yolov7-tiny", nc=2)
    from ultralytics.cfg import get_cfg

    model.args = get_cfg()
    batch = {"img": torch.rand(2, 3, 64, 64), "batch_idx": torch.tensor([0.0, 1.0]),
             "cls": torch.tensor([[0.0], [1.0]]), "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.3, 0.3, 0.2, 0.3]])}
    loss, items = model.loss(batch)
    loss.sum().backward()
    assert torch.isfinite(loss).all()
    assert model.model[0].conv.weight.grad is not None


@pytest.mark.parametrize("name", ["yolo11n", "yolov7-tiny", "yolov7-w6"])
def test_every_detector_reports_its_flops_at_the_projects_input_size(name):
    # The P6 YOLOv7 models start with a space-to-depth layer: ultralytics' own count probed them with 12 channels,
    # failed, and the training card said "0.0 GFLOPs".
    model = zoo.build_detection_model(name, nc=3)
    small, large = zoo.detection_gflops(model, 128), zoo.detection_gflops(model, 256)
    assert small > 0.1
    assert large == pytest.approx(4 * small, rel=0.05), "convolutions' FLOPs grow with the pixels"
