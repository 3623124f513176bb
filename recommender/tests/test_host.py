"""Reading this server's specs, and keeping the This_Server device in step with them."""

import os
import platform

import pytest
from django.core.management import call_command

from recommender import host
from recommender.models import Device
from recommender.services import host_device_refresh
from tango_common.engines import Accelerator, engine_problem

H100_SMI = "NVIDIA H100 80GB HBM3, 81559\n"


def test_host_specs_on_this_machine_are_sane():
    specs = host.read_host_specs()
    assert (specs["name"], specs["tier"], specs["is_host"]) == ("This_Server", "pc", True)
    assert specs["cpu_arch"] == platform.machine()
    assert 1 <= specs["cpu_cores"] <= (os.cpu_count() or 1)
    assert specs["cpu_name"] and specs["os"]
    assert specs["memory_mb"] >= 256
    assert specs["peak_fp32_gflops"] > 0 and specs["memory_bandwidth_gbps"] > 0
    assert {"pytorch", "onnxruntime"} <= set(specs["engines"])
    assert [e for e in specs["engines"] if engine_problem(e, specs["accelerator_kind"])] == []
    assert "not a measurement" in specs["notes"]


def test_host_specs_are_valid_device_field_values():
    device = Device(**host.read_host_specs())
    device.clean_fields()
    device.clean()


def test_without_nvidia_smi_the_host_is_cpu_only_and_has_no_tensorrt(monkeypatch):
    monkeypatch.setattr(host, "nvidia_gpu", lambda: None)
    specs = host.read_host_specs()
    assert specs["accelerator_kind"] == Accelerator.NONE
    assert "tensorrt" not in specs["engines"]
    assert "No NVIDIA GPU found" in specs["notes"]


def test_with_a_known_nvidia_gpu_the_host_takes_its_datasheet_figures(monkeypatch):
    monkeypatch.setattr(host, "nvidia_gpu", lambda: host.parse_nvidia_smi(H100_SMI))
    specs = host.read_host_specs()
    assert specs["accelerator_kind"] == Accelerator.NVIDIA_GPU
    assert specs["accelerator_name"] == "NVIDIA H100 80GB HBM3"
    assert specs["memory_mb"] == 81559
    assert (specs["peak_fp32_gflops"], specs["memory_bandwidth_gbps"]) == (67_000, 3_350)
    assert "openvino" not in specs["engines"], "OpenVINO does not target NVIDIA GPUs"


def test_an_unknown_nvidia_gpu_keeps_the_cpu_estimate_and_says_so(monkeypatch):
    monkeypatch.setattr(host, "nvidia_gpu", lambda: ("NVIDIA Mystery 9000", 4096))
    specs = host.read_host_specs()
    assert specs["peak_fp16_gflops"] is None
    assert "not in the known-GPU table" in specs["notes"]


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (H100_SMI, ("NVIDIA H100 80GB HBM3", 81559)),
        ("NVIDIA GeForce RTX 3090, 24576\nNVIDIA GeForce RTX 3090, 24576\n", ("NVIDIA GeForce RTX 3090", 24576)),
        ("", None),
        ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", None),
    ],
)
def test_parse_nvidia_smi(output, expected):
    assert host.parse_nvidia_smi(output) == expected


def test_the_more_specific_gpu_name_wins():
    assert host.known_gpu_figures("NVIDIA H100 PCIe")[3] == 2_000
    assert host.known_gpu_figures("NVIDIA H100 80GB HBM3")[3] == 3_350


def test_cpu_frequency_defaults_when_neither_cpuinfo_nor_sysfs_gives_one(monkeypatch):
    monkeypatch.setattr(host, "_read_text", lambda path: "")
    assert host._cpu_ghz("processor\t: 0\nBogoMIPS\t: 50.00\n") == host.DEFAULT_CPU_GHZ
    assert host._cpu_ghz("cpu MHz\t\t: 3200.000\n") == 3.2


def test_os_name_comes_from_os_release():
    assert host._os_name('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n').startswith(
        "Debian GNU/Linux 12 (bookworm) ("
    )


@pytest.mark.django_db
def test_refresh_updates_the_one_host_device_and_keeps_an_admins_deactivation():
    Device.objects.filter(name="This_Server").update(is_active=False, cpu_cores=999)
    device = host_device_refresh()
    host_device_refresh()
    assert Device.objects.filter(is_host=True).count() == 1
    assert device.cpu_cores == host.read_host_specs()["cpu_cores"]
    assert device.is_active is False


@pytest.mark.django_db
def test_refresh_creates_the_host_device_when_missing():
    Device.objects.filter(name="This_Server").delete()
    assert host_device_refresh().is_host


@pytest.mark.django_db
def test_refresh_host_device_command(capsys):
    call_command("refresh_host_device")
    assert capsys.readouterr().out.startswith("This_Server: ")


def test_the_cpu_peak_counts_avx512_lanes_when_the_cpu_has_them():
    avx2 = "flags\t\t: fpu sse2 avx avx2 fma\n"
    avx512 = "flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw\n"
    assert host.flops_per_cycle("x86_64", avx2) == 32
    assert host.flops_per_cycle("x86_64", avx512) == 64
    assert host.flops_per_cycle("aarch64", avx512) == 16  # the flag means nothing on Arm
    assert host.flops_per_cycle("riscv64", "") == 8
