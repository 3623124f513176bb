"""Read the specs of the machine the portal runs on, as Device field values. Django-free.

The catalog's `This_Server` row comes from here, so a user can target the server itself without knowing its
hardware. Every reader falls back to a stated default rather than failing: the data migration calls this, and a
migration must not break on an unusual machine. Figures that are estimates say so in `notes`.
"""

import importlib.util
import os
import platform
import shutil
import subprocess
from pathlib import Path

from tango_common.engines import Accelerator, engine_problem

HOST_DEVICE_NAME = "This_Server"

DEFAULT_CPU_GHZ = 2.5
# Rough single-socket DDR4-3200 dual-channel figure, used only when nothing better is known.
DEFAULT_BANDWIDTH_GBPS = 51.2
# FP32 FLOPs per core per cycle: x86 AVX2 = 2 FMA units x 8 lanes x 2 (AVX-512: 16 lanes, when the CPU flags
# say avx512f); aarch64 NEON = 2 pipes x 4 lanes x 2.
FLOPS_PER_CYCLE = {"x86_64": 32, "amd64": 32, "aarch64": 16, "arm64": 16}
FLOPS_PER_CYCLE_AVX512 = 64
FLOPS_PER_CYCLE_OTHER = 8


def flops_per_cycle(arch: str, cpuinfo: str) -> int:
    per_cycle = FLOPS_PER_CYCLE.get(arch.lower(), FLOPS_PER_CYCLE_OTHER)
    flags = (_cpuinfo_value(cpuinfo, "flags") or "").split()
    return FLOPS_PER_CYCLE_AVX512 if per_cycle == 32 and "avx512f" in flags else per_cycle

# Datasheet figures for GPUs a TANGO server plausibly has: (fp32 GFLOPS, fp16 tensor dense, int8 tensor dense,
# memory GB/s). Matched by substring of nvidia-smi's name, most specific first.
KNOWN_NVIDIA_GPUS: list[tuple[str, tuple[float, float, float, float]]] = [
    ("H200", (67_000, 989_500, 1_979_000, 4_800)),
    ("H100 PCIe", (51_200, 756_000, 1_513_000, 2_000)),
    ("H100", (67_000, 989_500, 1_979_000, 3_350)),
    ("A100-SXM4-80GB", (19_500, 312_000, 624_000, 2_039)),
    ("A100 80GB PCIe", (19_500, 312_000, 624_000, 1_935)),
    ("A100", (19_500, 312_000, 624_000, 1_555)),
    ("L4", (30_300, 121_000, 242_500, 300)),
    ("T4", (8_100, 65_000, 130_000, 320)),
    ("RTX 4090", (82_600, 330_300, 660_600, 1_008)),
    ("RTX 3090", (35_580, 142_000, 284_000, 936)),
    ("RTX 3060", (12_740, 51_200, 102_400, 360)),
]

# Engines a host may run when their Python package is importable; pytorch and onnxruntime are requirements.
OPTIONAL_ENGINE_MODULES = {
    "openvino": ("openvino",),
    "tvm": ("tvm",),
    "tensorrt": ("tensorrt",),
    "tflite": ("tflite_runtime", "ai_edge_litert"),
}


def read_host_specs() -> dict:
    """Device field values for this machine (name, tier and is_host included)."""
    cpuinfo = _read_text("/proc/cpuinfo")
    arch = platform.machine() or "unknown"
    cores = _cpu_cores()
    ghz = _cpu_ghz(cpuinfo)
    per_cycle = flops_per_cycle(arch, cpuinfo)
    cpu_gflops = round(cores * ghz * per_cycle, 1)
    specs = {
        "name": HOST_DEVICE_NAME,
        "tier": "pc",
        "is_host": True,
        "vendor": _cpu_vendor(cpuinfo),
        "cpu_arch": arch[:20],
        "cpu_name": (_cpu_model(cpuinfo) or platform.processor() or arch)[:100],
        "cpu_cores": cores,
        "os": _os_name(_read_text("/etc/os-release"))[:100],
        "default_latency_budget_ms": 30.0,
    }
    gpu = nvidia_gpu()
    specs.update(_gpu_fields(gpu, cpu_gflops) if gpu else _cpu_fields(cpu_gflops, _memory_mb()))
    specs["engines"] = installed_engines(specs["accelerator_kind"])
    specs["notes"] = _notes(specs, ghz, per_cycle, gpu)
    return specs


# --- CPU ---------------------------------------------------------------------------------------------------


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _cpuinfo_value(cpuinfo: str, key: str) -> str | None:
    for line in cpuinfo.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == key:
            return value.strip()
    return None


def _cpu_model(cpuinfo: str) -> str | None:
    # x86 says "model name"; many Arm kernels only say "Hardware" or nothing at all.
    return _cpuinfo_value(cpuinfo, "model name") or _cpuinfo_value(cpuinfo, "Hardware")


def _cpu_vendor(cpuinfo: str) -> str:
    vendor_id = _cpuinfo_value(cpuinfo, "vendor_id") or ""
    return {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}.get(vendor_id, vendor_id)[:60]


def _cpu_cores() -> int:
    # The CPUs this process may use (a container's limit), which is what a model running here gets.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _cpu_ghz(cpuinfo: str) -> float:
    mhz = _cpuinfo_value(cpuinfo, "cpu MHz")
    if mhz is None:  # Arm: the kernel exposes the maximum frequency in kHz instead.
        khz = _read_text("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip()
        mhz = str(int(khz) / 1000) if khz.isdigit() else None
    try:
        ghz = float(mhz) / 1000 if mhz else 0.0
    except ValueError:
        ghz = 0.0
    return round(ghz, 2) if ghz > 0 else DEFAULT_CPU_GHZ


def _memory_mb() -> int:
    for line in _read_text("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024  # reported in kB
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        return 1024


def _os_name(os_release: str) -> str:
    for line in os_release.splitlines():
        if line.startswith("PRETTY_NAME="):
            pretty = line.split("=", 1)[1].strip().strip('"')
            return f"{pretty} ({platform.system()} {platform.release()})"
    return platform.platform()


def _cpu_fields(cpu_gflops: float, memory_mb: int) -> dict:
    return {
        "accelerator_kind": Accelerator.NONE,
        "accelerator_name": "",
        "peak_fp32_gflops": cpu_gflops,
        "peak_fp16_gflops": None,
        "peak_int8_gops": None,
        "memory_bandwidth_gbps": DEFAULT_BANDWIDTH_GBPS,
        "memory_mb": memory_mb,
    }


# --- NVIDIA GPU --------------------------------------------------------------------------------------------


def nvidia_gpu() -> tuple[str, int] | None:
    """(name, memory MiB) of the first NVIDIA GPU per nvidia-smi, or None when there is none."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=15, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvidia_smi(result.stdout) if result.returncode == 0 else None


def parse_nvidia_smi(output: str) -> tuple[str, int] | None:
    for line in output.splitlines():
        name, sep, memory = line.rpartition(",")
        if sep and memory.strip().isdigit():
            return name.strip(), int(memory.strip())
    return None


def known_gpu_figures(name: str) -> tuple[float, float, float, float] | None:
    for key, figures in KNOWN_NVIDIA_GPUS:
        if key.lower() in name.lower():
            return figures
    return None


def _gpu_fields(gpu: tuple[str, int], cpu_gflops: float) -> dict:
    name, memory_mb = gpu
    figures = known_gpu_figures(name)
    fp32, fp16, int8, bandwidth = figures or (cpu_gflops, None, None, DEFAULT_BANDWIDTH_GBPS)
    return {
        "accelerator_kind": Accelerator.NVIDIA_GPU,
        "accelerator_name": name[:100],
        "peak_fp32_gflops": fp32,
        "peak_fp16_gflops": fp16,
        "peak_int8_gops": int8,
        "memory_bandwidth_gbps": bandwidth,
        "memory_mb": memory_mb,  # the model lives in GPU memory
    }


# --- Engines and notes -------------------------------------------------------------------------------------


def installed_engines(accelerator: str) -> list[str]:
    """Engines importable here that this accelerator can run (engine_problem is the one judge of the latter)."""
    engines = ["pytorch", "onnxruntime"]
    for key, modules in OPTIONAL_ENGINE_MODULES.items():
        # find_spec looks for the package without importing it: importing torch-sized stacks here would be slow.
        if any(importlib.util.find_spec(module) for module in modules):
            engines.append(key)
    return [key for key in engines if engine_problem(key, accelerator) is None]


def _notes(specs: dict, ghz: float, per_cycle: int, gpu: tuple[str, int] | None) -> str:
    simd = {32: "AVX2 FMA", 64: "AVX-512 FMA"}.get(per_cycle, "SIMD FMA")
    cpu = (
        f"Read from this machine by recommender.host. CPU peak estimated as {specs['cpu_cores']} logical CPUs × "
        f"{ghz} GHz × {per_cycle} FP32 FLOP/cycle ({simd}); "
        "a roofline bound, not a measurement."
    )
    if gpu is None:
        return (
            f"{cpu} No NVIDIA GPU found (nvidia-smi absent or silent). Bandwidth is a rough default "
            f"({DEFAULT_BANDWIDTH_GBPS} GB/s, dual-channel DDR4-3200)."
        )
    if known_gpu_figures(gpu[0]):
        return f"{cpu} GPU {gpu[0]} ({gpu[1]} MiB) per nvidia-smi; peak and bandwidth from NVIDIA's datasheet."
    return (
        f"{cpu} GPU {gpu[0]} ({gpu[1]} MiB) per nvidia-smi is not in the known-GPU table: the peak shown is "
        f"the CPU estimate and the bandwidth a rough default ({DEFAULT_BANDWIDTH_GBPS} GB/s)."
    )
