"""Seed the device catalog: the TANGO paper's ten Table 1 devices, two Rockchip NPU boards, and This_Server.

The rows are literal here, not imported, so that later edits to the app cannot change what this migration wrote.
Figures are from vendors' public datasheets; where a vendor publishes none, the figure is derived or marked as a
third-party estimate in the row's notes, and left empty (None) when there is nothing sound to put.
This_Server is read from the machine running the migration (recommender.host, Django-free).
"""

from django.db import migrations

GPU_ENGINES = ["pytorch", "onnxruntime", "tensorrt", "tvm"]
MOBILE_ENGINES = ["tflite", "onnxruntime", "pytorch", "tvm"]
ROCKCHIP_ENGINES = ["rknn", "tflite", "onnxruntime", "pytorch", "tvm"]

JETSON_NANO = {
    "vendor": "NVIDIA",
    "cpu_arch": "aarch64",
    "cpu_name": "4x Arm Cortex-A57 @ 1.43 GHz",
    "cpu_cores": 4,
    "accelerator_kind": "nvidia_gpu",
    "accelerator_name": "128-core Maxwell GPU",
    "peak_fp32_gflops": 236.0,
    "peak_fp16_gflops": 472.0,
    "peak_int8_gops": None,
    "memory_bandwidth_gbps": 25.6,
    "memory_mb": 4096,
    "engines": GPU_ENGINES,
    "default_latency_budget_ms": 100.0,
}
JETSON_NANO_NOTE = (
    "Jetson Nano (4 GB) datasheet: 128-core Maxwell GPU, 472 GFLOPS FP16 (FP32 is half: 236 GFLOPS), "
    "4 GB 64-bit LPDDR4 at 25.6 GB/s shared by CPU and GPU. Maxwell has no fast INT8 path, so TensorRT INT8 is "
    "unavailable and the INT8 figure is left empty."
)

CATALOG = [
    {
        "name": "Cloud",
        "tier": "cloud",
        "vendor": "NVIDIA",
        "cpu_arch": "x86_64",
        "cpu_name": "AMD EPYC 7742 (64 cores)",
        "cpu_cores": 64,
        "accelerator_kind": "nvidia_gpu",
        "accelerator_name": "NVIDIA A100 40GB PCIe",
        "peak_fp32_gflops": 19_500.0,
        "peak_fp16_gflops": 312_000.0,
        "peak_int8_gops": 624_000.0,
        "memory_bandwidth_gbps": 1555.0,
        "memory_mb": 40_960,
        "os": "Ubuntu 22.04 LTS",
        "engines": GPU_ENGINES,
        "default_latency_budget_ms": 20.0,
        "notes": (
            "A cloud GPU server. NVIDIA A100 40GB PCIe datasheet: 19.5 TFLOPS FP32, 312 TFLOPS FP16 Tensor Core "
            "and 624 TOPS INT8 (dense), 40 GB HBM2 at 1,555 GB/s. Host CPU: AMD EPYC 7742, 64 cores (as in the "
            "DGX A100)."
        ),
    },
    {
        "name": "K8S_PC",
        "tier": "k8s",
        "vendor": "NVIDIA",
        "cpu_arch": "x86_64",
        "cpu_name": "Intel Core i9-10900K (10 cores)",
        "cpu_cores": 10,
        "accelerator_kind": "nvidia_gpu",
        "accelerator_name": "NVIDIA GeForce RTX 3080 10GB",
        "peak_fp32_gflops": 29_770.0,
        "peak_fp16_gflops": 119_000.0,
        "peak_int8_gops": 238_000.0,
        "memory_bandwidth_gbps": 760.0,
        "memory_mb": 10_240,
        "os": "Ubuntu 22.04 LTS, Kubernetes worker (NVIDIA device plugin)",
        "engines": GPU_ENGINES,
        "default_latency_budget_ms": 50.0,
        "notes": (
            "A Kubernetes GPU node. NVIDIA Ampere GA102 whitepaper, RTX 3080: 29.8 TFLOPS FP32, 119 TFLOPS FP16 "
            "Tensor (FP16 accumulate, dense), 238 TOPS INT8 (dense), 10 GB GDDR6X at 760 GB/s."
        ),
    },
    {
        "name": "K8S_Jetson_Nano",
        "tier": "k8s",
        **JETSON_NANO,
        "os": "JetPack 4.6 (L4T, Ubuntu 18.04), k3s worker",
        "notes": f"A Jetson Nano joined to a Kubernetes (k3s) cluster. {JETSON_NANO_NOTE}",
    },
    {
        "name": "PC_Server",
        "tier": "pc",
        "vendor": "NVIDIA",
        "cpu_arch": "x86_64",
        "cpu_name": "AMD Ryzen Threadripper 3960X (24 cores)",
        "cpu_cores": 24,
        "accelerator_kind": "nvidia_gpu",
        "accelerator_name": "NVIDIA GeForce RTX 3090 24GB",
        "peak_fp32_gflops": 35_580.0,
        "peak_fp16_gflops": 142_000.0,
        "peak_int8_gops": 284_000.0,
        "memory_bandwidth_gbps": 936.0,
        "memory_mb": 24_576,
        "os": "Ubuntu 22.04 LTS",
        "engines": GPU_ENGINES,
        "default_latency_budget_ms": 30.0,
        "notes": (
            "A workstation-class server. NVIDIA Ampere GA102 whitepaper, RTX 3090: 35.6 TFLOPS FP32, 142 TFLOPS "
            "FP16 Tensor (FP16 accumulate, dense), 284 TOPS INT8 (dense), 24 GB GDDR6X at 936 GB/s."
        ),
    },
    {
        "name": "PC",
        "tier": "pc",
        "vendor": "NVIDIA",
        "cpu_arch": "x86_64",
        "cpu_name": "Intel Core i7-12700 (12 cores)",
        "cpu_cores": 12,
        "accelerator_kind": "nvidia_gpu",
        "accelerator_name": "NVIDIA GeForce RTX 3060 12GB",
        "peak_fp32_gflops": 12_740.0,
        "peak_fp16_gflops": 51_200.0,
        "peak_int8_gops": 102_400.0,
        "memory_bandwidth_gbps": 360.0,
        "memory_mb": 12_288,
        "os": "Ubuntu 22.04 LTS",
        "engines": [*GPU_ENGINES, "openvino"],  # its Intel CPU runs OpenVINO (0005)
        "default_latency_budget_ms": 30.0,
        "notes": (
            "A desktop PC. NVIDIA RTX 3060 (GA106) specifications: 12.7 TFLOPS FP32, 51 TFLOPS FP16 Tensor "
            "(FP16 accumulate, dense), 102 TOPS INT8 (dense), 12 GB GDDR6 on 192 bits at 15 Gbps = 360 GB/s."
        ),
    },
    {
        "name": "Jetson_AGX_Orin",
        "tier": "on_device",
        "vendor": "NVIDIA",
        "cpu_arch": "aarch64",
        "cpu_name": "12x Arm Cortex-A78AE @ 2.2 GHz",
        "cpu_cores": 12,
        "accelerator_kind": "nvidia_gpu",
        "accelerator_name": "2048-core Ampere GPU, 64 Tensor Cores (+2x NVDLA v2)",
        "peak_fp32_gflops": 5_300.0,
        "peak_fp16_gflops": 42_500.0,
        "peak_int8_gops": 85_000.0,
        "memory_bandwidth_gbps": 204.8,
        "memory_mb": 65_536,
        "os": "JetPack 5.1 (L4T, Ubuntu 20.04)",
        "engines": GPU_ENGINES,
        "default_latency_budget_ms": 50.0,
        "notes": (
            "Jetson AGX Orin 64GB technical brief: GPU 5.3 TFLOPS FP32 and 170 sparse INT8 TOPS (85 dense); the "
            "FP16 Tensor figure is derived as half the dense INT8 rate (Ampere ratio). 275 sparse TOPS counts the "
            "two DLAs too. 64 GB 256-bit LPDDR5 at 204.8 GB/s, shared by CPU and GPU."
        ),
    },
    {
        "name": "Jetson_AGX_Xavier",
        "tier": "on_device",
        "vendor": "NVIDIA",
        "cpu_arch": "aarch64",
        "cpu_name": "8x NVIDIA Carmel Armv8.2 @ 2.26 GHz",
        "cpu_cores": 8,
        "accelerator_kind": "nvidia_gpu",
        "accelerator_name": "512-core Volta GPU, 64 Tensor Cores (+2x NVDLA)",
        "peak_fp32_gflops": 1_410.0,
        "peak_fp16_gflops": 11_000.0,
        "peak_int8_gops": 22_000.0,
        "memory_bandwidth_gbps": 136.5,
        "memory_mb": 32_768,
        "os": "JetPack 5.1 (L4T, Ubuntu 20.04)",
        "engines": GPU_ENGINES,
        "default_latency_budget_ms": 70.0,
        "notes": (
            "Jetson AGX Xavier 32GB datasheet: 512-core Volta GPU, 11 TFLOPS FP16 and 22 TOPS INT8 on the GPU "
            "(32 TOPS with both DLAs); FP32 is 512 cores x 2 x 1.377 GHz = 1.41 TFLOPS. 32 GB 256-bit LPDDR4x at "
            "136.5 GB/s, shared by CPU and GPU."
        ),
    },
    {
        "name": "Jetson_Nano",
        "tier": "on_device",
        **JETSON_NANO,
        "os": "JetPack 4.6 (L4T, Ubuntu 18.04)",
        "notes": JETSON_NANO_NOTE,
    },
    {
        "name": "Galaxy_S22",
        "tier": "on_device",
        "vendor": "Samsung",
        "cpu_arch": "aarch64",
        "cpu_name": "Snapdragon 8 Gen 1: 1x Cortex-X2 3.0 GHz + 3x A710 2.5 GHz + 4x A510 1.8 GHz",
        "cpu_cores": 8,
        "accelerator_kind": "adreno_gpu",
        "accelerator_name": "Adreno 730 GPU + Hexagon processor",
        "peak_fp32_gflops": 2_200.0,
        "peak_fp16_gflops": 4_400.0,
        "peak_int8_gops": None,
        "memory_bandwidth_gbps": 51.2,
        "memory_mb": 8_192,
        "os": "Android 12 (One UI 4.1)",
        "engines": MOBILE_ENGINES,
        "default_latency_budget_ms": 100.0,
        "notes": (
            "Galaxy S22 with Snapdragon 8 Gen 1 (Korea/US; Europe ships the Exynos 2200, similar class). Qualcomm "
            "publishes no GFLOPS or TOPS figures: Adreno 730 at 818 MHz is about 2.2 TFLOPS FP32 by third-party "
            "estimates (FP16 at twice the rate); the Hexagon INT8 figure is left empty. 8 GB LPDDR5-6400 on 64 "
            "bits = 51.2 GB/s. PyTorch means PyTorch Mobile / ExecuTorch."
        ),
    },
    {
        "name": "Odroid_N2",
        "tier": "on_device",
        "vendor": "Hardkernel",
        "cpu_arch": "aarch64",
        "cpu_name": "Amlogic S922X: 4x Cortex-A73 1.8 GHz + 2x Cortex-A53 1.9 GHz",
        "cpu_cores": 6,
        "accelerator_kind": "mali_gpu",
        "accelerator_name": "Arm Mali-G52 MP6 (6 EE, 846 MHz)",
        "peak_fp32_gflops": 81.0,
        "peak_fp16_gflops": 162.0,
        "peak_int8_gops": None,
        "memory_bandwidth_gbps": 10.6,
        "memory_mb": 4_096,
        "os": "Ubuntu 20.04 (Hardkernel image)",
        "engines": ["tvm", "pytorch", "onnxruntime", "tflite"],
        "default_latency_budget_ms": 200.0,
        "notes": (
            "Odroid-N2 (4 GB) from Hardkernel's specifications: Amlogic S922X, Mali-G52 with 6 execution engines at "
            "846 MHz; FP32 derived as 6 EE x 8 lanes x 2 FLOP (FMA) x 0.846 GHz = 81 GFLOPS (FP16 twice). No NPU: "
            "TVM targets the Mali GPU over OpenCL, the others run on the CPU. 4 GB 32-bit DDR4-2640 = 10.6 GB/s."
        ),
    },
    {
        "name": "Odroid_M1",
        "tier": "on_device",
        "vendor": "Hardkernel",
        "cpu_arch": "aarch64",
        "cpu_name": "Rockchip RK3568: 4x Cortex-A55 @ 2.0 GHz",
        "cpu_cores": 4,
        "accelerator_kind": "rockchip_npu",
        "accelerator_name": "RK3568 NPU 0.8 TOPS (+ Mali-G52 2EE)",
        "peak_fp32_gflops": 64.0,
        "peak_fp16_gflops": None,
        "peak_int8_gops": 800.0,
        "memory_bandwidth_gbps": 12.5,
        "memory_mb": 8_192,
        "os": "Ubuntu 20.04 (Hardkernel image)",
        "engines": ROCKCHIP_ENGINES,
        "default_latency_budget_ms": 200.0,
        "notes": (
            "Not in the paper's Table 1; added so the RKNN engine has a target. Rockchip RK3568 datasheet: NPU "
            "0.8 TOPS INT8 (no FP16 figure published, left empty). FP32 is the CPU's upper bound, 4 cores x 2.0 GHz "
            "x 8 FLOP/cycle = 64 GFLOPS (the Mali-G52 2EE is slower, ~26 GFLOPS). 8 GB 32-bit LPDDR4-3120 = "
            "12.5 GB/s."
        ),
    },
    {
        "name": "Rock_5B",
        "tier": "on_device",
        "vendor": "Radxa",
        "cpu_arch": "aarch64",
        "cpu_name": "Rockchip RK3588: 4x Cortex-A76 2.4 GHz + 4x Cortex-A55 1.8 GHz",
        "cpu_cores": 8,
        "accelerator_kind": "rockchip_npu",
        "accelerator_name": "RK3588 NPU 6 TOPS, 3 cores (+ Mali-G610 MP4)",
        "peak_fp32_gflops": 512.0,
        "peak_fp16_gflops": None,
        "peak_int8_gops": 6_000.0,
        "memory_bandwidth_gbps": 34.0,
        "memory_mb": 16_384,
        "os": "Debian 11 (Radxa image)",
        "engines": ROCKCHIP_ENGINES,
        "default_latency_budget_ms": 100.0,
        "notes": (
            "Not in the paper's Table 1; added so the RKNN engine has a target. Rockchip RK3588 datasheet: 3-core "
            "NPU, 6 TOPS INT8 (no FP16 figure published, left empty); LPDDR4x/LPDDR5 up to about 34 GB/s. FP32 is "
            "the Mali-G610 MP4, estimated 4 cores x 128 FLOP/clk x 1.0 GHz = 512 GFLOPS. Rock 5B 16 GB."
        ),
    },
]

HOST_DEVICE_NAME = "This_Server"


def seed_catalog(apps, schema_editor):
    Device = apps.get_model("recommender", "Device")
    for row in CATALOG:
        fields = dict(row)
        Device.objects.update_or_create(name=fields.pop("name"), defaults=fields)
    seed_host(Device)


def seed_host(Device):
    # The one import from app code: reading the machine is not something a migration should duplicate.
    from recommender.host import read_host_specs

    specs = read_host_specs()
    Device.objects.update_or_create(name=specs.pop("name"), defaults=specs)


def unseed_catalog(apps, schema_editor):
    Device = apps.get_model("recommender", "Device")
    Device.objects.filter(name__in=[row["name"] for row in CATALOG] + [HOST_DEVICE_NAME]).delete()


class Migration(migrations.Migration):
    dependencies = [("recommender", "0001_initial")]

    operations = [migrations.RunPython(seed_catalog, unseed_catalog)]
