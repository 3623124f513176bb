"""The once-for-all supernet: subnets share its weights exactly, costs are right, the search keeps the budget."""

import random

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from training.engine import supernet as sn
from training.engine.zoo import model_profile

SPEC = sn.SupernetSpec(widths=(8, 16, 24), stem_width=8)


def _blobs(n: int, seed: int) -> TensorDataset:
    """Three classes told apart by which colour channel is bright: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    images = torch.randn(n, 3, 8, 8, generator=g) * 0.5
    images[torch.arange(n), labels] += 1.5
    return TensorDataset(images, labels)


@pytest.fixture(scope="module")
def loaders():
    train = DataLoader(_blobs(192, 0), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    return train, DataLoader(_blobs(96, 1), batch_size=96)


@pytest.fixture(scope="module")
def trained(loaders):
    torch.manual_seed(0)
    net = sn.Supernet(SPEC, num_classes=3)
    result = sn.supernet_train(net, *loaders, config=sn.SupernetTrainConfig(epochs=3, lr=0.05),
                               report=lambda *a, **k: None)
    return net, result


def test_an_extracted_subnet_computes_exactly_what_the_supernet_computes_for_that_architecture():
    torch.manual_seed(1)
    net = sn.Supernet(SPEC, num_classes=3).eval()
    for seed in range(4):
        config = sn.sample(SPEC, random.Random(seed))
        net.config = config
        x = torch.randn(2, 3, 8, 8)
        expected = net(x)
        assert torch.allclose(sn.extract_subnet(net, config).eval()(x), expected, atol=1e-5), config.label()


@pytest.mark.parametrize("seed", range(3))
def test_subnet_costs_computed_from_the_architecture_match_the_built_model(seed):
    config = sn.sample(SPEC, random.Random(seed))
    built = model_profile(sn.build_subnet(SPEC, config, num_classes=3), 8)
    computed = sn.subnet_profile(SPEC, config, input_size=8, num_classes=3)
    assert (computed["params"], computed["macs"]) == (built["params"], built["macs"])


def test_sandwich_training_teaches_the_largest_and_the_smallest_subnet(trained):
    _, result = trained
    assert result.largest_top1 > 0.8 and result.smallest_top1 > 0.8  # chance is 1/3
    assert [h["epoch"] for h in result.history] == [1, 2, 3]


def test_inherited_weights_with_recalibrated_statistics_keep_the_accuracy(trained, loaders):
    net, _ = trained
    config = sn.sample(SPEC, random.Random(5))
    in_place = sn.evaluate_subnet(net, config, *loaders)
    standalone = sn.top1(sn.subnet_for(net, config, loaders[0]), loaders[1])
    assert standalone == pytest.approx(in_place, abs=0.02) and standalone > 0.8


def evaluator(net, loaders):
    train, val = loaders
    return sn.SubnetEvaluator(net, sn.fixed_batch(train, 64)[0], sn.fixed_batch(val, 64))


def macs_latency(config):  # a stand-in device: 1 ms per million MACs
    return sn.subnet_profile(SPEC, config, input_size=8, num_classes=3)["macs"] / 1e6


def test_the_evaluator_measures_on_fixed_batches_and_leaves_the_supernet_as_it_was(trained, loaders):
    net, _ = trained
    before = {k: v.clone() for k, v in net.state_dict().items()}
    accuracy = evaluator(net, loaders)
    config = sn.sample(SPEC, random.Random(7))
    first = accuracy(config)
    accuracy.values.clear()
    assert accuracy(config) == first  # the same images every time: no sampling noise between evaluations
    assert accuracy(sn.smallest(SPEC)) > 0.8
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert net.config == sn.largest(SPEC)


def test_one_archive_serves_every_budget_and_each_gets_the_best_subnet_within_it(trained, loaders):
    net, _ = trained
    accuracy = evaluator(net, loaders)
    small, large = macs_latency(sn.smallest(SPEC)), macs_latency(sn.largest(SPEC))
    budgets = [small * 1.2, small + 0.3 * (large - small), (small + large) / 2, large]
    settings = sn.EvolutionSettings(archive=8, population=6, generations=2)
    reported = []
    found = sn.search_targets(SPEC, accuracy=accuracy, targets=[sn.Target(f"d{i}", macs_latency, b)
                                                                for i, b in enumerate(budgets)],
                              settings=settings, report=reported.append)
    assert len(found) == len(budgets) and len(reported) == len(budgets)
    for result, budget in zip(found, budgets, strict=True):
        assert result.fits and result.latency_ms <= budget
        within = [c for c, v in accuracy.values.items() if macs_latency(c) <= budget]
        assert result.accuracy == max(accuracy.values[c] for c in within)  # the best the archive holds
    alone = 0  # the same searches, each with an archive of its own
    for budget in budgets:
        own = evaluator(net, loaders)
        sn.evolutionary_search(SPEC, accuracy=own, latency_ms=macs_latency, budget_ms=budget, settings=settings)
        alone += len(own.values)
    assert len(accuracy.values) < alone
    assert len(accuracy.values) - sum(r.evaluated for r in found) <= 2 + 8  # the shared start, then each one's own


def test_a_saved_supernet_loads_with_its_search_space(trained, tmp_path):
    net, _ = trained
    sn.supernet_save(net, tmp_path / "supernet.pt")
    loaded = sn.supernet_load(tmp_path / "supernet.pt")
    assert loaded.spec == SPEC
    x = torch.randn(1, 3, 8, 8)
    net.eval()
    assert torch.equal(loaded(x), net(x))


def test_a_subnet_name_rebuilds_its_architecture():
    config = sn.SubnetConfig((2, 3, 1), (0.5, 0.75, 1.0), (3, 5, 3))
    name = sn.subnet_name(SPEC, config)
    assert name == "ofa-w8-16-24-d231-e50-75-100-k353"
    assert sn.parse_subnet_name(name, input_size=8) == (SPEC, config)
    with pytest.raises(ValueError, match="not a supernet subnet name"):
        sn.parse_subnet_name("ofa-w8-16-d2-e50-k3", input_size=8)


def test_the_zoo_builds_a_subnet_from_its_name_so_later_stages_can_load_it():
    from training.engine.zoo import build_model, complexity_level, family_of

    config = sn.SubnetConfig((1, 2, 1), (0.5, 1.0, 0.75), (5, 3, 3))
    name = sn.subnet_name(SPEC, config)
    model = build_model(name, num_classes=3, input_size=8)
    assert family_of(name) == "ofa" and complexity_level(name) is None
    assert model_profile(model, 8)["macs"] == sn.subnet_profile(SPEC, config, input_size=8, num_classes=3)["macs"]


def test_a_searched_subnet_opens_in_the_visualiser_and_its_graph_round_trips_with_the_inherited_weights(
        trained, loaders):
    from training.engine.zoo import build_model
    from visualizer.graph.build import module_of, same_outputs
    from visualizer.graph.trace import graph_of

    net, _ = trained
    small, large = macs_latency(sn.smallest(SPEC)), macs_latency(sn.largest(SPEC))
    found = sn.evolutionary_search(SPEC, accuracy=evaluator(net, loaders), latency_ms=macs_latency,
                                   budget_ms=(small + large) / 2, settings=sn.EvolutionSettings(archive=6,
                                                                                                 population=4,
                                                                                                 generations=1))
    name = sn.subnet_name(SPEC, found.config)
    inherited = sn.subnet_for(net, found.config, loaders[0]).eval()
    graph = graph_of(build_model(name, num_classes=3, input_size=8), 8, name=name, num_classes=3)
    assert graph["errors"] == []
    assert len([b for b in graph["blocks"] if b["type"] == "SubnetBlock"]) == sum(found.config.depths)
    assert graph["totals"]["params"] == sn.subnet_profile(SPEC, found.config, input_size=8, num_classes=3)["params"]
    rebuilt = module_of(graph)
    rebuilt.load_state_dict(inherited.state_dict())  # strict: the graph holds every tensor the subnet has
    assert same_outputs(inherited, rebuilt, 8)
    assert sn.top1(rebuilt.eval(), loaders[1]) == sn.top1(inherited, loaders[1])
