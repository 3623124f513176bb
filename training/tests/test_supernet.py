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


def test_the_search_returns_the_most_accurate_subnet_within_each_budget(trained, loaders):
    net, _ = trained
    accuracy = sn.AccuracyCache(net, *loaders)

    def latency(config):  # a stand-in device: 1 ms per million MACs
        return sn.subnet_profile(SPEC, config, input_size=8, num_classes=3)["macs"] / 1e6

    small, large = latency(sn.smallest(SPEC)), latency(sn.largest(SPEC))
    settings = sn.EvolutionSettings(population=8, generations=3, parents=4)
    for budget in (small * 1.2, (small + large) / 2, large):
        found = sn.evolutionary_search(SPEC, accuracy=accuracy, latency_ms=latency, budget_ms=budget,
                                       settings=settings)
        assert found.fits and found.latency_ms <= budget
    assert len(accuracy.values) < 3 * 8 * 4  # the searches shared their evaluations


def test_when_nothing_fits_the_search_says_so_and_offers_the_fastest(trained, loaders):
    net, _ = trained
    found = sn.evolutionary_search(SPEC, accuracy=sn.AccuracyCache(net, *loaders), latency_ms=lambda c: 10.0,
                                   budget_ms=1.0)
    assert not found.fits and found.config == sn.smallest(SPEC)


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
