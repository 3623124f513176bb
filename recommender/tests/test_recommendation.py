"""The recommendation through the services: costs from the model itself, records that recalibrate, calibrate."""

import pytest
from django.core.management import call_command

from recommender.engine.latency import LatencyModel
from recommender.models import ArchitectureCost, BenchmarkRecord, Device
from recommender.services import (
    architecture_costs,
    benchmark_record_add,
    device_specs,
    latency_model_for,
    recommendation_for,
)

pytestmark = pytest.mark.django_db

SIZE = 64


def recommend(device, budget_ms, team=None):
    return recommendation_for(device=device, task="classification", engine="onnxruntime", precision="fp32",
                              input_size=SIZE, num_classes=10, budget_ms=budget_ms, memory_limit_mb=None, team=team)


def test_costs_come_from_the_model_and_are_cached_per_architecture():
    from training.engine.zoo import build_model, model_profile

    costs = architecture_costs(model_name="resnet18", num_classes=10, input_size=SIZE)
    reference = model_profile(build_model("resnet18", num_classes=10, input_size=SIZE), SIZE)
    assert (costs.params, costs.flops) == (reference["params"], reference["flops"])
    assert costs.weight_bytes == 4 * costs.params and costs.peak_activation_bytes > 0 and costs.layers == 21
    assert architecture_costs(model_name="resnet18", num_classes=10, input_size=SIZE) == costs
    assert ArchitectureCost.objects.filter(signature=costs.signature).count() == 1


def test_records_saying_a_device_is_three_times_slower_move_the_choice_to_a_smaller_model():
    nano = Device.objects.get(name="Jetson_Nano")
    prior = LatencyModel(device_specs(nano), "fp32")
    resnet101 = architecture_costs(model_name="resnet101", num_classes=10, input_size=SIZE)
    budget = prior.predict_ms(resnet101) * 1.01
    before = recommend(nano, budget)["ranking"]
    assert before["confidence"] == "datasheet prior only (no measured record yet)"

    for name in ("resnet18", "densenet121", "vgg_tiny", "resnet50"):
        costs = architecture_costs(model_name=name, num_classes=10, input_size=SIZE)
        benchmark_record_add(device=nano, engine="onnxruntime", precision="fp32", model_name=name, num_classes=10,
                             input_size=SIZE, latency_ms=3 * prior.predict_ms(costs), source="benchmark")
    after = recommend(nano, budget)["ranking"]

    assert after["confidence"] == "fitted to 4 measured records"
    assert after["top"]["latency_ms"] <= budget
    smaller = architecture_costs(model_name=after["top"]["key"], num_classes=10, input_size=SIZE)
    chosen_before = architecture_costs(model_name=before["top"]["key"], num_classes=10, input_size=SIZE)
    assert prior.predict_ms(smaller) < prior.predict_ms(chosen_before) / 2, (before["top"]["key"], after["top"]["key"])
    rejected = {i["key"]: i for i in after["items"]}[before["top"]["key"]]
    assert rejected["status"] == "too_slow" and rejected["latency_ms"] == pytest.approx(
        3 * before["top"]["latency_ms"], rel=0.15)


def test_another_teams_records_do_not_move_this_teams_predictions():
    from projects.models import Team

    nano = Device.objects.get(name="Jetson_Nano")
    theirs, ours = Team.objects.create(name="Theirs"), Team.objects.create(name="Ours")
    benchmark_record_add(device=nano, engine="onnxruntime", precision="fp32", model_name="resnet18", num_classes=10,
                         input_size=SIZE, latency_ms=500.0, source="benchmark", team=theirs)
    assert latency_model_for(device=nano, engine="onnxruntime", precision="fp32", team=ours).records == 0
    assert latency_model_for(device=nano, engine="onnxruntime", precision="fp32", team=theirs).records == 1


def test_the_paper_choice_stands_beside_the_ranking():
    result = recommend(Device.objects.get(name="Cloud"), budget_ms=1000)
    assert result["paper"]["model_label"] == "ResNet-203"
    keys = [i["key"] for i in result["ranking"]["items"]]
    assert "resnet203" in keys and len(keys) == 16
    assert result["comparison"]


def test_calibrate_measures_this_server_and_every_record_recalibrates(capsys):
    call_command("calibrate", "--quick")
    host = Device.objects.get(is_host=True)
    records = BenchmarkRecord.objects.filter(device=host, engine="onnxruntime", precision="fp32")
    assert records.count() == 3 and all(r.latency_ms > 0 and r.source == "calibrate" for r in records)
    assert latency_model_for(device=host, engine="onnxruntime", precision="fp32").records == 3
    out = capsys.readouterr().out
    assert "predicted" in out and "Stored 3 records for This_Server" in out


def test_the_wizard_preview_ranks_from_cached_costs_only():
    from recommender.services import candidates_for, recommendation_preview

    nano = Device.objects.get(name="Jetson_Nano")
    args = dict(device=nano, task="classification", engine="onnxruntime", precision="fp32", input_size=48,
                num_classes=4, budget_ms=50, memory_limit_mb=None)
    line, warnings = recommendation_preview(**args)
    assert line.startswith("Paper rules: ResNet-34. The recommend stage ranks") and warnings == []
    candidates_for(task="classification", num_classes=4, input_size=48)  # what a recommend stage run caches
    line, warnings = recommendation_preview(**args)
    assert line.startswith("Ranking: ") and line.endswith("Paper rules: ResNet-34.") and warnings == []
    # A small dataset: the Review names the model that will train, and why it is not the ranking's top.
    roomy = {**args, "budget_ms": 100_000}
    top = recommendation_preview(**roomy)[0].removeprefix("Ranking: ").split(" (")[0]
    line, _ = recommendation_preview(**roomy, n_train=72)
    assert f"the ranking's top, {top}, is too big to train from scratch on 72 training images" in line, line
    # A budget no candidate meets: the Review step says so before the project exists, and what to change.
    line, warnings = recommendation_preview(**{**args, "budget_ms": 0.001})
    assert line.startswith("Ranking: nothing fits; closest ")
    assert warnings and warnings[0].startswith("Nothing is expected to fit the 0.001 ms budget")
    assert "Raise the budget" in warnings[0] and "finds no model to train" in warnings[0]
