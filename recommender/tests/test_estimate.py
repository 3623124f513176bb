"""The roofline estimate: it need not be exact, but it must move the right way."""

import pytest
from django.forms.models import model_to_dict

from recommender.estimate import (
    BANDWIDTH_EFFICIENCY,
    estimate_latency_ms,
    fits_memory,
    peak_gflops,
    required_memory_mb,
)
from recommender.models import Device

NANO = {"peak_fp32_gflops": 236.0, "peak_fp16_gflops": 472.0, "peak_int8_gops": None, "memory_bandwidth_gbps": 25.6}
ORIN = {"peak_fp32_gflops": 5300.0, "peak_fp16_gflops": 42500.0, "peak_int8_gops": 85000.0,
        "memory_bandwidth_gbps": 204.8}
RESNET18 = (3.6e9, 11.7e6)  # FLOPs at 224x224 (2 per MAC), parameters
RESNET50 = (8.2e9, 25.6e6)


def test_a_bigger_model_is_slower_on_the_same_device():
    assert estimate_latency_ms(*RESNET50, NANO) > estimate_latency_ms(*RESNET18, NANO)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_a_faster_device_runs_the_same_model_faster(precision):
    assert estimate_latency_ms(*RESNET50, ORIN, precision) < estimate_latency_ms(*RESNET50, NANO, precision)


def test_latency_grows_with_flops_and_never_shrinks_with_params():
    flops = [estimate_latency_ms(f, 1e6, NANO) for f in (1e8, 1e9, 1e10)]
    params = [estimate_latency_ms(1e6, p, NANO) for p in (1e6, 1e7, 1e8)]
    assert flops == sorted(flops) and flops[0] < flops[-1]
    assert params == sorted(params) and params[0] < params[-1]


def test_lower_precision_is_not_slower():
    latencies = [estimate_latency_ms(*RESNET50, ORIN, p) for p in ("fp32", "fp16", "int8")]
    assert latencies == sorted(latencies, reverse=True)


def test_a_weight_heavy_model_is_bound_by_memory_traffic():
    params = 1e9  # 4 GB of fp32 weights, almost no arithmetic
    expected_ms = params * 4 / (NANO["memory_bandwidth_gbps"] * 1e9 * BANDWIDTH_EFFICIENCY) * 1000
    assert estimate_latency_ms(1e6, params, NANO) == pytest.approx(expected_ms)


def test_missing_half_and_int8_peaks_fall_back_to_the_wider_precision():
    cpu_only = {"peak_fp32_gflops": 100.0, "memory_bandwidth_gbps": 20.0}
    assert peak_gflops(cpu_only, "fp16") == peak_gflops(cpu_only, "int8") == 100.0
    assert peak_gflops(NANO, "int8") == 472.0


def test_memory_fit():
    assert fits_memory(RESNET50[1], "fp32", 4096)
    assert not fits_memory(7e9, "fp32", 4096)
    assert fits_memory(7e9, "int8", 16_384)
    assert required_memory_mb(1e8, "fp16") < required_memory_mb(1e8, "fp32")


def test_unknown_precision_is_an_error():
    with pytest.raises(ValueError, match="Unknown precision 'int4'"):
        estimate_latency_ms(1e9, 1e6, NANO, "int4")


@pytest.mark.django_db
def test_catalog_devices_order_as_expected_for_resnet50_fp16():
    specs = {d.name: model_to_dict(d) for d in Device.objects.all()}
    order = ["Cloud", "PC_Server", "Jetson_AGX_Orin", "Jetson_Nano", "Odroid_N2"]
    latencies = [estimate_latency_ms(*RESNET50, specs[name], "fp16") for name in order]
    assert latencies == sorted(latencies)
