"""The Django-free recommender core: latency and memory models, accuracy priors, ranking."""

import random

import pytest

from recommender.engine.accuracy import Expected, expected, priors
from recommender.engine.costs import Costs
from recommender.engine.latency import DeviceSpecs, LatencyModel, Record, leave_one_out
from recommender.engine.memory import MemoryModel
from recommender.engine.ranking import Candidate, paper_comparison, rank, sized_comparison

SPECS = DeviceSpecs(peak_fp32_gflops=100.0, memory_bandwidth_gbps=20.0, memory_mb=4096)


def costs(gflops: float, mparams: float = 10.0, act_mb: float = 20.0, ops: int = 100) -> Costs:
    return Costs(params=int(mparams * 1e6), flops=gflops * 1e9, weight_bytes=4 * mparams * 1e6,
                 activation_bytes=act_mb * 2**20, peak_activation_bytes=act_mb * 2**20 / 4, layers=ops // 3, ops=ops,
                 signature=f"s{gflops}")


LADDER = [("tiny", 0.5, 60.0), ("small", 2.0, 70.0), ("medium", 6.0, 75.0), ("large", 15.0, 78.0)]


def candidates():
    return [Candidate(key=k, label=k.title(), family="net", level=i, input_size=224,
                      costs=costs(g, mparams=3 * g, act_mb=5 * g, ops=int(50 + 20 * g)))
            for i, (k, g, _) in enumerate(LADDER, 1)]


ACCURACY = {k: Expected(a, "test prior") for k, _, a in LADDER}


def test_the_prior_grows_with_every_cost():
    model = LatencyModel(SPECS, "fp32")
    base = model.predict_ms(costs(1.0))
    assert model.predict_ms(costs(2.0)) > base
    assert model.predict_ms(costs(1.0, mparams=50)) > base
    assert model.predict_ms(costs(1.0, ops=1000)) > base
    assert model.confidence() == "datasheet prior only (no measured record yet)"


def test_half_precision_is_predicted_faster_where_the_device_has_a_faster_fp16_path():
    specs = DeviceSpecs(peak_fp32_gflops=100.0, peak_fp16_gflops=400.0, memory_bandwidth_gbps=20.0, memory_mb=4096)
    assert LatencyModel(specs, "fp16").predict_ms(costs(5.0)) < LatencyModel(specs, "fp32").predict_ms(costs(5.0))


def test_records_three_times_slower_than_the_prior_move_every_prediction_about_threefold():
    prior = LatencyModel(SPECS, "fp32")
    measured = [Record(c.costs, 3 * prior.predict_ms(c.costs)) for c in candidates()]
    fitted = LatencyModel.fit(SPECS, "fp32", measured)
    assert fitted.records == 4 and fitted.confidence() == "fitted to 4 measured records"
    unseen = costs(4.0, mparams=12, act_mb=20, ops=130)
    assert fitted.predict_ms(unseen) / prior.predict_ms(unseen) == pytest.approx(3.0, rel=0.1)


def test_a_fitted_model_recovers_a_devices_hidden_efficiencies():
    # A device whose true behaviour is a different mix of compute, memory and overhead than the datasheet says.
    rng = random.Random(1)
    truth = lambda c: (c.flops / 40e9 + c.weight_bytes / 8e9 + c.ops * 40e-6) * 1000  # noqa: E731
    pool = [costs(rng.uniform(0.1, 20), mparams=rng.uniform(1, 100), act_mb=rng.uniform(5, 200),
                  ops=rng.randint(30, 600)) for _ in range(30)]
    fitted = LatencyModel.fit(SPECS, "fp32", [Record(c, truth(c)) for c in pool[:20]])
    errors = [abs(fitted.predict_ms(c) / truth(c) - 1) for c in pool[20:]]
    assert max(errors) < 0.15


def test_networks_that_depart_alike_from_the_roofline_correct_their_neighbours_and_no_one_else():
    # The device runs 1x1-heavy networks 30 % slower than its roofline says; the others as it says.
    def one_by_one(c: Costs) -> Costs:
        return Costs(**{**c.as_dict(), "extra": {"conv1x1_flops": 0.8 * c.flops}})

    roofline = LatencyModel(SPECS, "fp32")
    plain = [costs(g, mparams=3 * g, act_mb=5 * g, ops=int(50 + 20 * g)) for g in (0.5, 1, 2, 4, 8)]
    heavy = [one_by_one(c) for c in plain]
    records = [Record(c, roofline.predict_ms(c)) for c in plain] + [Record(c, 1.3 * roofline.predict_ms(c))
                                                                      for c in heavy]
    fitted = LatencyModel.fit(SPECS, "fp32", records)
    unseen = costs(3.0, mparams=9, act_mb=15, ops=110)
    assert fitted.predict_ms(one_by_one(unseen)) / fitted.predict_ms(unseen) == pytest.approx(1.3, rel=0.1)
    # Far from every record (a thousand times the FLOPs), the correction fades and the roofline predicts alone.
    far = costs(3000.0, mparams=9000, act_mb=15000, ops=60000)
    assert fitted.correction(far) == pytest.approx(1.0, abs=1e-6)
    assert LatencyModel(SPECS, "fp32").correction(unseen) == 1.0  # no record: no correction


def test_a_cpu_only_device_starts_from_a_smaller_per_operation_overhead():
    cpu = DeviceSpecs(peak_fp32_gflops=100.0, memory_bandwidth_gbps=20.0, memory_mb=4096, cpu_only=True)
    many_ops = costs(0.01, mparams=0.1, act_mb=0.1, ops=1000)
    assert LatencyModel(cpu, "fp32").predict_ms(many_ops) < LatencyModel(SPECS, "fp32").predict_ms(many_ops)


def test_the_memory_model_starts_from_weights_activations_and_runtime_and_learns():
    c = costs(2.0, mparams=25, act_mb=40)
    prior = MemoryModel("fp32")
    assert prior.predict_mb(c) == pytest.approx(4 * 25e6 / 2**20 + 2 * 10 + 64)
    assert MemoryModel("int8").predict_mb(c) < prior.predict_mb(c)
    bigger = [(costs(g, mparams=5 * g, act_mb=10 * g), 2 * prior.predict_mb(costs(g, mparams=5 * g, act_mb=10 * g)))
              for g in (1, 2, 4, 8)]
    assert MemoryModel.fit("fp32", bigger).predict_mb(c) > 1.5 * prior.predict_mb(c)


def test_unpublished_models_take_their_familys_trend_and_say_so():
    found = priors({"resnet18": ("resnet", 3.6e9), "resnet50": ("resnet", 8.2e9), "resnet203": ("resnet", 30.5e9),
                    "vgg_tiny": ("vgg", 1e9), "vgg11": ("vgg", 15.2e9), "vgg16": ("vgg", 31e9)})
    assert found["resnet18"] == Expected(69.76, "ImageNet top-1, torchvision")
    assert found["resnet203"].value > found["resnet50"].value
    assert "trend" in found["resnet203"].source
    assert 70.37 - 15 <= found["vgg_tiny"].value < 70.37, "below its family, never absurdly so"


def test_an_expected_accuracy_says_what_it_measures():
    """"expected 79.8" had no unit: the figure is a percentage of the task's metric, named wherever it is said."""
    assert priors({"resnet18": ("resnet", 3.6e9)})["resnet18"].metric == "top-1"
    detector = priors({"yolo11n": ("yolo11", 6.5e9)}, task="detection")["yolo11n"]
    assert (detector.metric, detector.source) == ("mAP50-95", "COCO mAP50-95 val, Ultralytics YOLO11 (640 px)")
    shifted = expected({"yolo11n": detector, "yolo11s": detector}, {"yolo11s": [30.0]})
    assert shifted["yolo11n"].metric == shifted["yolo11s"].metric == "mAP50-95"


def test_the_teams_measured_results_replace_priors_and_shift_the_rest():
    base = {"a": Expected(70.0, "p"), "b": Expected(75.0, "p")}
    out = expected(base, {"a": [90.0, 92.0]})
    assert out["a"].value == 91.0 and out["a"].measured_runs == 2 and "measured" in out["a"].source
    assert out["b"].value == 96.0 and "shifted +21.0" in out["b"].source


def test_the_most_accurate_candidate_that_fits_comes_first_and_bigger_ones_say_why_not():
    latency = LatencyModel(SPECS, "fp32")
    budget = (latency.predict_ms(candidates()[1].costs) + latency.predict_ms(candidates()[2].costs)) / 2
    ranking = rank(candidates(), latency=latency, memory=MemoryModel("fp32"), accuracy=ACCURACY,
                   budget_ms=budget, memory_limit_mb=4096)
    assert ranking.top.key == "small" and ranking.top.status == "recommended"
    assert [i.key for i in ranking.items] == ["small", "tiny", "medium", "large"]
    by_key = {i.key: i for i in ranking.items}
    assert by_key["tiny"].status == "fits" and "expected 60.0% top-1 < 70.0% of Small" in by_key["tiny"].reason
    assert by_key["medium"].status == "too_slow"
    assert "over the" in by_key["medium"].reason and "would beat Small" in by_key["medium"].reason
    assert all(i.latency_ms > budget for i in ranking.items if i.status.startswith("too"))


def test_a_memory_limit_rejects_a_candidate_that_is_fast_enough():
    ranking = rank(candidates(), latency=LatencyModel(SPECS, "fp32"), memory=MemoryModel("fp32"),
                   accuracy=ACCURACY, budget_ms=1e6, memory_limit_mb=120)
    assert ranking.top.key in {"tiny", "small"}
    assert any(i.status == "too_big" and "MiB limit" in i.reason for i in ranking.items)


def test_when_nothing_fits_it_says_so_and_shows_the_closest():
    ranking = rank(candidates(), latency=LatencyModel(SPECS, "fp32"), memory=MemoryModel("fp32"),
                   accuracy=ACCURACY, budget_ms=0.01, memory_limit_mb=4096)
    assert ranking.top is None
    assert ranking.closest.key == "tiny"
    assert ranking.summary.startswith("Nothing is expected to fit the 0.01 ms budget")


def test_the_budget_is_never_knowingly_broken():
    rng = random.Random(7)
    latency = LatencyModel(SPECS, "fp32")
    for _ in range(200):
        budget = rng.uniform(0.1, 2000)
        ranking = rank(candidates(), latency=latency, memory=MemoryModel("fp32"), accuracy=ACCURACY,
                       budget_ms=budget, memory_limit_mb=rng.uniform(50, 5000))
        if ranking.top:
            assert ranking.top.latency_ms <= budget and ranking.top.memory_mb <= ranking.memory_limit_mb


def test_the_paper_comparison_names_the_disagreement():
    latency = LatencyModel(SPECS, "fp32")
    ranking = rank(candidates(), latency=latency, memory=MemoryModel("fp32"), accuracy=ACCURACY,
                   budget_ms=latency.predict_ms(candidates()[1].costs) * 1.01, memory_limit_mb=4096)
    assert paper_comparison(ranking, "small", "Small") == "The paper's rule and the data agree: Small."
    line = paper_comparison(ranking, "large", "Large")
    assert line.startswith("They disagree: the paper's Large is predicted at") and "Small" in line


def test_the_kernel_list_fuses_what_a_runtime_fuses_and_sees_functional_concatenations():
    from recommender.profiling import build_on_meta, profile_model

    resnet = profile_model(build_on_meta("resnet18", num_classes=10, input_size=64), 64).kernels
    densenet = profile_model(build_on_meta("densenet121", num_classes=10, input_size=64), 64).kernels
    # ResNet-18: 20 convolutions (the shortcuts' 1x1 among them), each BatchNorm, ReLU and residual add fused.
    assert sum(count for *_, count in resnet["conv"]) == 20 and resnet["fused"] == 45
    # DenseNet's BatchNorm-ReLU before each convolution reads a concatenation: memory-bound kernels of their own.
    assert densenet["memory_bytes"] > 10 * resnet["memory_bytes"] and densenet["kernels"] > 3 * resnet["kernels"]


def kernel_costs(flops_per_conv: float, weights_per_conv: float, convs: int = 10) -> Costs:
    """A plain chain of convolutions: each with these FLOPs and weight bytes, 1 MB of activations."""
    base = costs(flops_per_conv * convs / 1e9, mparams=weights_per_conv * convs / 4e6, ops=2 * convs)
    kernels = {"conv": [[flops_per_conv, 1e6, weights_per_conv, convs]], "gemm_bytes": 0.0, "memory_bytes": 0.0,
               "transcendental_values": 0.0, "kernels": convs, "fused": convs}
    return Costs(**{**base.as_dict(), "kernels": kernels})


def test_with_enough_records_each_convolution_is_bound_by_its_arithmetic_or_its_weights():
    # A device whose convolutions take max(FLOPs at 40 GFLOP/s, weights at 4 GB/s): a wide layer on a small map is
    # weight-bound, on a large map compute-bound. Summed over the network, FLOPs and weights cannot say which.
    def truth(c: Costs) -> float:
        return sum(n * max(f / 40e9, w / 4e9) for f, _, w, n in c.kernels["conv"]) * 1000 + c.ops * 5e-3

    rng = random.Random(2)
    pool = [kernel_costs(rng.uniform(1e6, 2e9), rng.uniform(1e5, 2e8)) for _ in range(30)]
    fitted = LatencyModel.fit(SPECS, "fp32", [Record(c, truth(c)) for c in pool[:20]])
    errors = [abs(fitted.predict_ms(c) / truth(c) - 1) for c in pool[20:]]
    assert fitted.describe()["kernel_records"] == 20 and max(errors) < 0.10
    # Three records are too few for seven coefficients: the totals form predicts, the one before kernel lists.
    few = LatencyModel.fit(SPECS, "fp32", [Record(c, truth(c)) for c in pool[:3]])
    assert few.roofline_ms(pool[25]) == pytest.approx(few.totals.base_ms(pool[25], SPECS, "fp32"))


def test_leave_one_out_predicts_each_record_as_a_fit_to_the_others_would():
    # The device page's predicted-vs-measured column: one shared set of terms and warm-started refits must give
    # what fitting the other records from scratch gives, for records with a kernel list and without.
    rng = random.Random(5)
    with_kernels = [kernel_costs(rng.uniform(1e6, 2e9), rng.uniform(1e5, 2e8)) for _ in range(12)]
    totals_only = [costs(rng.uniform(0.1, 10), mparams=rng.uniform(1, 30)) for _ in range(4)]
    records = [Record(c, rng.uniform(0.8, 1.25) * (1 + LatencyModel.fit(SPECS, "fp32", []).predict_ms(c)))
               for c in with_kernels + totals_only]
    for i, (predicted, backed_by) in enumerate(leave_one_out(SPECS, "fp32", records)):
        others = records[:i] + records[i + 1:]
        assert backed_by == len(others)
        assert predicted == pytest.approx(LatencyModel.fit(SPECS, "fp32", others).predict_ms(records[i].costs),
                                          rel=1e-3)


def test_once_the_top_is_sized_to_the_dataset_the_paper_is_compared_with_the_model_that_trains():
    items = [{"key": "resnet34", "fits_latency": True, "fits_memory": True, "latency_ms": 4.2, "memory_mb": 85}]
    line = sized_comparison(items, paper_key="resnet34", paper_label="ResNet-34", top_label="ResNet-203",
                            trains_key="densenet121", trains_label="DenseNet-121")
    assert line == ("They disagree: the paper's ResNet-34 fits too; the data-driven choice is DenseNet-121, the "
                    "ranking's top (ResNet-203) sized to the dataset.")
    agree = sized_comparison(items, paper_key="resnet34", paper_label="ResNet-34", top_label="ResNet-203",
                             trains_key="resnet34", trains_label="ResNet-34")
    assert agree.startswith("The paper's rule and the data agree: ResNet-34")
