"""The seeded catalog, row by row: what the data migration wrote must be a usable, honest target list."""

import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from recommender.models import Device
from tango_common.engines import Accelerator, engine_problem

pytestmark = pytest.mark.django_db

# name -> (tier, accelerator kind): the paper's ten devices and the two Rockchip boards added for RKNN.
EXPECTED = {
    "Cloud": ("cloud", Accelerator.NVIDIA_GPU),
    "K8S_PC": ("k8s", Accelerator.NVIDIA_GPU),
    "K8S_Jetson_Nano": ("k8s", Accelerator.NVIDIA_GPU),
    "PC_Server": ("pc", Accelerator.NVIDIA_GPU),
    "PC": ("pc", Accelerator.NVIDIA_GPU),
    "Jetson_AGX_Orin": ("on_device", Accelerator.NVIDIA_GPU),
    "Jetson_AGX_Xavier": ("on_device", Accelerator.NVIDIA_GPU),
    "Jetson_Nano": ("on_device", Accelerator.NVIDIA_GPU),
    "Galaxy_S22": ("on_device", Accelerator.ADRENO_GPU),
    "Odroid_N2": ("on_device", Accelerator.MALI_GPU),
    "Odroid_M1": ("on_device", Accelerator.ROCKCHIP_NPU),
    "Rock_5B": ("on_device", Accelerator.ROCKCHIP_NPU),
}
PAPER_DEVICES = list(EXPECTED)[:10]
SEEDED = [*EXPECTED, "This_Server"]


def all_devices():
    return {d.name: d for d in Device.objects.all()}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_catalog_device_is_seeded_with_its_tier_and_accelerator(name):
    device = Device.objects.get(name=name)
    assert (device.tier, device.accelerator_kind) == EXPECTED[name]
    assert device.is_active and not device.is_host


@pytest.mark.parametrize("name", SEEDED)
def test_each_seeded_device_passes_model_validation(name):
    Device.objects.get(name=name).full_clean()


@pytest.mark.parametrize("name", SEEDED)
def test_each_seeded_device_runs_only_engines_its_accelerator_can(name):
    device = Device.objects.get(name=name)
    assert device.engines, "every device runs at least one engine"
    assert [e for e in device.engines if engine_problem(e, device.accelerator_kind, device.cpu_name)] == []


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_catalog_device_has_plausible_figures_and_a_cited_source(name):
    d = Device.objects.get(name=name)
    assert d.vendor and d.cpu_name and d.os and d.accelerator_name
    assert d.cpu_arch in {"x86_64", "aarch64"}
    assert 1 <= d.cpu_cores <= 128
    assert 10 <= d.peak_fp32_gflops <= 100_000
    assert d.peak_fp16_gflops is None or d.peak_fp16_gflops >= d.peak_fp32_gflops
    assert 5 <= d.memory_bandwidth_gbps <= 5_000
    assert 1_024 <= d.memory_mb <= 128 * 1024
    assert 10 <= d.default_latency_budget_ms <= 500
    assert len(d.notes) > 80, "notes cite the datasheet figures"


def test_the_paper_lists_exactly_these_ten_devices_and_tiers():
    devices = all_devices()
    tiers = {name: devices[name].tier for name in PAPER_DEVICES}
    assert tiers == {
        "Cloud": "cloud",
        "K8S_PC": "k8s", "K8S_Jetson_Nano": "k8s",
        "PC_Server": "pc", "PC": "pc",
        "Jetson_AGX_Orin": "on_device", "Jetson_AGX_Xavier": "on_device", "Jetson_Nano": "on_device",
        "Galaxy_S22": "on_device", "Odroid_N2": "on_device",
    }


def test_key_datasheet_figures():
    d = all_devices()
    assert d["Jetson_Nano"].peak_fp16_gflops == 472 and d["Jetson_Nano"].memory_bandwidth_gbps == 25.6
    assert d["Cloud"].memory_mb == 40 * 1024 and d["Cloud"].memory_bandwidth_gbps == 1555
    assert d["Odroid_M1"].peak_int8_gops == 800 and d["Rock_5B"].peak_int8_gops == 6000
    assert d["Jetson_AGX_Orin"].memory_bandwidth_gbps == 204.8


def test_half_precision_peak_falls_from_cloud_to_pc_to_jetson_to_odroid():
    # FP32 alone would not do: a GeForce card's FP32 exceeds the A100's, while its tensor FP16 does not.
    d = all_devices()
    fp16 = [d[n].peak_fp16_gflops for n in ("Cloud", "PC_Server", "Jetson_AGX_Orin", "Jetson_Nano", "Odroid_N2")]
    assert fp16 == sorted(fp16, reverse=True)


def test_only_rockchip_boards_run_rknn_and_only_nvidia_devices_run_tensorrt():
    for device in Device.objects.all():
        assert ("rknn" in device.engines) == (device.accelerator_kind == Accelerator.ROCKCHIP_NPU)
        if "tensorrt" in device.engines:
            assert device.accelerator_kind == Accelerator.NVIDIA_GPU
    assert {d.name for d in Device.objects.all() if "rknn" in d.engines} == {"Odroid_M1", "Rock_5B"}


def test_odroid_n2_has_no_npu_and_runs_tvm_on_its_mali_gpu():
    n2 = Device.objects.get(name="Odroid_N2")
    assert n2.accelerator_kind == Accelerator.MALI_GPU and "Mali-G52" in n2.accelerator_name
    assert set(n2.engines) == {"tvm", "pytorch", "onnxruntime", "tflite"}


def test_this_server_is_seeded_as_the_host_pc():
    host = Device.objects.get(is_host=True)
    assert (host.name, host.tier) == ("This_Server", "pc")


def test_the_seed_migration_reverses_to_an_empty_catalog_and_reapplies():
    seed = importlib.import_module("recommender.migrations.0002_seed_devices")
    state = MigrationExecutor(connection).loader.project_state(("recommender", "0002_seed_devices"))
    Device.objects.create(name="Custom_Board", tier="on_device", cpu_arch="aarch64", peak_fp32_gflops=10,
                          memory_bandwidth_gbps=5, memory_mb=1024, os="Linux", engines=["tflite"])

    seed.unseed_catalog(state.apps, None)
    assert list(Device.objects.values_list("name", flat=True)) == ["Custom_Board"], "admin-added rows survive"

    seed.seed_catalog(state.apps, None)
    seed.seed_catalog(state.apps, None)  # idempotent
    assert set(Device.objects.values_list("name", flat=True)) == {*SEEDED, "Custom_Board"}


def test_the_intel_pc_offers_openvino_on_its_cpu_beside_its_nvidia_card():
    # Regression: OpenVINO was judged by the accelerator alone, so the catalog's PC (Intel Core i7-12700 with an
    # RTX 3060) did not offer it; only "This server" did, though an Intel PC is OpenVINO's home.
    from projects.engine_support import engine_choices

    pc = Device.objects.get(name="PC")
    assert "openvino" in pc.engines and "Intel" in pc.cpu_name
    offered = {c.value: c for c in engine_choices(task="classification", device=pc)}
    assert offered["openvino"].enabled, offered["openvino"].problem
    # the vendor is what lets it in: an AMD or Arm CPU beside an NVIDIA card still cannot take it
    assert engine_problem("openvino", Accelerator.NVIDIA_GPU, "AMD Ryzen Threadripper 3960X")
    assert engine_problem("openvino", Accelerator.NVIDIA_GPU, "12x Arm Cortex-A78AE @ 2.2 GHz")
