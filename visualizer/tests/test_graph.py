"""The graph core without Django: zoo models as graphs and back, shape inference after edits, engine flags."""

import pytest
import torch

from training.engine.zoo import build_model, model_names, model_profile
from visualizer.graph.build import BuildError, module_of, same_outputs
from visualizer.graph.checks import engine_flags
from visualizer.graph.diff import diff
from visualizer.graph.edits import EditError, apply
from visualizer.graph.trace import graph_of

SIZE = 32


def meta_graph(name, num_classes=3, size=SIZE):
    with torch.device("meta"):
        model = build_model(name, num_classes=num_classes, input_size=size)
    return graph_of(model, size, name=name), model


def ids(graph):
    return {node.get("target") or node["id"]: node["id"] for node in graph["nodes"]}


def random_weights(model):
    """Real tensors of random values for a model built on the meta device (quicker than initialising it)."""
    model = model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if key.endswith("running_var"):
                tensor.uniform_(0.5, 1.5, generator=generator)
            elif tensor.is_floating_point():
                tensor.uniform_(-0.05, 0.05, generator=generator)
            else:
                tensor.zero_()
    return model.eval()


@pytest.mark.parametrize("name", model_names())
def test_every_zoo_model_round_trips_to_the_same_outputs_for_the_same_weights(name):
    graph, model = meta_graph(name, size=8)  # the smallest input: ResNet-203's forward stays cheap
    assert graph["errors"] == []
    assert graph["totals"]["params"] == sum(p.numel() for p in model.parameters())
    assert next(n for n in graph["nodes"] if n["kind"] == "output")["shape"] == [1, 3]
    model = random_weights(model)
    with torch.device("meta"):
        rebuilt = module_of(graph)
    rebuilt = rebuilt.to_empty(device="cpu")
    rebuilt.load_state_dict(model.state_dict())  # strict: the same keys and shapes
    assert same_outputs(model, rebuilt, 8)


@pytest.mark.parametrize("name", ["resnet18", "densenet_tiny", "vgg_tiny"])
def test_round_trip_gives_the_same_outputs_for_the_same_weights(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=4, input_size=SIZE).eval()
    graph = graph_of(model, SIZE, name=name)
    rebuilt = module_of(graph)
    rebuilt.load_state_dict(model.state_dict())  # strict: every key and shape the same
    assert same_outputs(model, rebuilt, SIZE)
    profile = model_profile(model, SIZE)
    assert (graph["totals"]["params"], graph["totals"]["flops"]) == (profile["params"], profile["flops"])


def test_resnet50_reads_as_16_bottleneck_blocks_of_3_convolutions_and_the_layers_outside():
    graph, _ = meta_graph("resnet50", size=224)
    top = [b for b in graph["blocks"] if b["parent"] is None]
    assert len(top) == 16 and {b["type"] for b in top} == {"Bottleneck"}
    for block in top:
        convs = [n for n in graph["nodes"] if n.get("block") == block["id"] and n["op"] == "Conv2d"
                 and "downsample" not in n["target"]]
        assert len(convs) == 3
    outside = [n["target"] for n in graph["nodes"] if not n.get("block") and n["op"] in ("Conv2d", "Linear")]
    assert outside == ["conv1", "fc"]
    assert graph["totals"]["flops"] == pytest.approx(2 * 4.09e9, rel=0.02)  # ResNet-50: 4.1 G MACs at 224 px


def test_densenet_folds_into_dense_blocks_holding_their_layers():
    graph, _ = meta_graph("densenet121")
    blocks = {b["id"]: b for b in graph["blocks"]}
    assert blocks["features.denseblock1"]["type"] == "DenseBlock"
    assert blocks["features.denseblock1.denselayer1"]["parent"] == "features.denseblock1"
    concat = [n for n in graph["nodes"] if n["op"] == "torch.cat"]
    assert concat and all(len(n["inputs"]) >= 1 for n in concat)


def test_a_wrong_edit_is_named_by_node_and_mismatch():
    graph, _ = meta_graph("resnet50")
    node = ids(graph)
    broken = apply(graph, [{"op": "set", "node": node["layer3.1.conv1"], "params": {"in_channels": 512}}])
    assert broken["errors"][0]["message"] == "layer3.1.conv1 expects 512 input channels, gets 1024"
    narrower = apply(graph, [{"op": "set", "node": node["layer3.1.conv1"], "params": {"out_channels": 128}}])
    assert narrower["errors"][0]["message"] == "layer3.1.bn1 expects 256 channels, gets 128"
    residual = apply(graph, [{"op": "resize", "node": node["layer3.1.conv3"], "channels": 512}])
    assert residual["errors"][0]["message"].startswith("layer3.1.add adds [1, 512, 8, 8] from layer3.1.bn3 to "
                                                       "[1, 1024, 8, 8]")
    head = apply(graph, [{"op": "set", "node": node["fc"], "params": {"in_features": 100}}])
    assert head["errors"][0]["message"] == "fc expects 100 input features, gets 2048"
    with pytest.raises(BuildError, match="expects 100 input features"):
        module_of(head)


@pytest.mark.parametrize(("edit", "message"), [
    ({"op": "set", "node": "nope", "params": {}}, "no node 'nope'"),
    ({"op": "set", "node": "layer1_0_conv1", "params": {"kernel_size": 0}}, "Conv2d("),
    ({"op": "set", "node": "layer1_0_conv1", "params": {"colour": 1}}, "Conv2d has no parameter colour"),
    ({"op": "set", "node": "add", "params": {}}, "is not a layer"),
    ({"op": "insert", "after": "conv1", "layer": "Transformer"}, "unknown layer type"),
    ({"op": "insert", "after": "output", "layer": "ReLU"}, "nothing can follow the output"),
    ({"op": "remove", "node": "add"}, "joins several inputs"),
    ({"op": "remove", "node": "x"}, "the input cannot be removed"),
    ({"op": "resize", "node": "layer1_0_bn1", "channels": 8}, "only convolutions and linear layers have a width"),
    ({"op": "resize", "node": "layer1_0_conv1", "channels": 0}, "channels must be a positive whole number"),
    ({"op": "rewire", "node": "layer1_0_conv1", "input": "maxpool", "to": "fc"}, "cannot loop back"),
    ({"op": "group", "nodes": ["conv1", "layer1_0_conv1"], "name": "odd"}, "same enclosing block"),
    ({"op": "group", "nodes": ["conv1"], "name": '<img src=x onerror="alert(1)">'}, "letters, digits"),
    ({"op": "ungroup", "block": "layer9"}, "no block 'layer9'"),
    ({"op": "explode"}, "op must be one of"),
])
def test_each_kind_of_wrong_edit_says_why(edit, message):
    graph, _ = meta_graph("resnet18")
    with pytest.raises(EditError, match=message.replace("(", r"\(")):
        apply(graph, [edit])


def test_resize_carries_the_width_and_the_edited_network_trains_a_step():
    graph, _ = meta_graph("resnet18")
    node = ids(graph)
    edited = apply(graph, [{"op": "resize", "node": node["layer2.0.conv1"], "channels": 96},
                           {"op": "insert", "after": node["layer2.0.relu"], "layer": "Dropout"},
                           {"op": "replace", "node": node["layer4.1.relu"], "layer": "SiLU"},
                           {"op": "remove", "node": node["layer1.1.bn2"]}])
    assert edited["errors"] == []
    assert edited["totals"]["params"] < graph["totals"]["params"]
    lines = diff(graph, edited)["lines"]
    assert "~ layer2.0.conv1: out_channels 128 → 96" in lines and "~ layer2.0.conv2: in_channels 128 → 96" in lines
    assert any(line.startswith("+ layer2.0.dropout_1") for line in lines)
    assert "- layer1.1.bn2 (BatchNorm2d)" in lines
    model = module_of(edited)
    out = model(torch.randn(2, 3, SIZE, SIZE))
    out.sum().backward()
    assert out.shape == (2, 3)
    assert model.get_submodule("layer2.0.conv1").out_channels == 96  # the module paths of the original model


def test_group_and_ungroup_change_only_the_folding():
    graph, _ = meta_graph("resnet18")
    node = ids(graph)
    stem = [node["conv1"], node["bn1"], node["relu"], node["maxpool"]]
    grouped = apply(graph, [{"op": "group", "nodes": stem, "name": "stem"}, {"op": "ungroup", "block": "layer1.0"}])
    assert {n["id"] for n in grouped["nodes"] if n.get("block") == "stem"} == set(stem)
    assert "layer1.0" not in {b["id"] for b in grouped["blocks"]}
    assert grouped["totals"] == graph["totals"]


def test_engine_checks_flag_what_the_engine_cannot_run_or_runs_slowly():
    graph, _ = meta_graph("resnet18")
    edited = apply(graph, [{"op": "insert", "after": ids(graph)["layer1.0.relu"], "layer": "GELU"},
                           {"op": "set", "node": ids(graph)["avgpool"], "params": {"output_size": 3}}])
    tflite = {f["node"]: f for f in engine_flags(edited, "tflite")}
    assert tflite["layer1_0_gelu_1"]["level"] == "slow"
    rknn = {f["node"]: f for f in engine_flags(edited, "rknn")}
    assert rknn["avgpool"]["level"] == "unsupported" and "multiple of the output size" in rknn["avgpool"]["message"]
    assert engine_flags(edited, "pytorch") == []
    assert engine_flags(graph, "tensorrt") == []


def test_vgg_folds_into_stages_that_end_at_each_pool_and_its_head():
    graph, _ = meta_graph("vgg16", size=224)
    stages = [b for b in graph["blocks"] if b["type"] == "Stage"]
    assert [b["id"] for b in stages] == [f"features.stage{i}" for i in range(1, 6)]
    convs = [sum(1 for n in graph["nodes"] if n.get("block") == b["id"] and n["op"] == "Conv2d") for b in stages]
    assert convs == [2, 2, 3, 3, 3]
    assert {n["op"] for n in graph["nodes"] if n.get("block") == "classifier"} == {"Linear", "ReLU", "Dropout"}
    edited = apply(graph, [{"op": "insert", "after": ids(graph)["features.0"], "layer": "Dropout"}])
    assert edited["errors"] == [] and module_of(edited) is not None


@pytest.mark.parametrize("name", ["resnet18", "densenet_tiny", "vgg_tiny"])
def test_costs_read_off_the_graph_equal_the_recommenders_profile_of_the_network(name):
    from recommender.profiling import profile_model
    from visualizer.graph.costs import graph_costs

    graph, _ = meta_graph(name)
    graph = apply(graph, [{"op": "insert", "after": ids(graph)[next(iter(ids(graph)))], "layer": "BatchNorm2d"}])
    with torch.device("meta"):
        model = module_of(graph).eval()
    profile = profile_model(model, SIZE).as_dict()
    assert graph_costs(graph) == {key: profile[key] for key in graph_costs(graph)}
