"""What `./tango engines` prints: each engine, whether it converts on this server, its versions, and how to install
what is missing. Django-free (deployment.cli prints it; tests read the rows)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

from tango_common.engines import ENGINES, engine_support
from tango_common.sideenvs import SIDE_ENVS

from . import registry
from .tvm import CROSS_CXX, CROSS_PACKAGE, cross_compiler

INSTALL = {
    "tvm": f"./tango engines install tvm (Debian's {CROSS_PACKAGE} for aarch64 boards; apache-tvm is in the "
           "portal's requirements)",
    # The size is the environment's own hint, the one its missing() reason quotes (this line said 1.5 GB for TFLite
    # while the reason above it said 2.6 GB).
    "rknn": f"./tango engines install rknn (rknn-toolkit2 in its own environment, {SIDE_ENVS['rknn'].size_hint})",
    "tflite": "./tango engines install tflite (TensorFlow 2.19 + onnx2tf in its own environment, "
              f"{SIDE_ENVS['tflite'].size_hint})",
    "openvino": "pip install openvino (in the portal's requirements)",
    "onnxruntime": "pip install onnxruntime (in the portal's requirements)",
    "tensorrt": "ships with JetPack on Jetson boards and in the gpu worker's image (compose.yaml)",
}


def rows() -> list[dict]:
    out = []
    for key, engine in ENGINES.items():
        support = engine_support(key)
        converter = registry._CONVERTERS.get(key)  # noqa: SLF001 - the registry's own table, read only
        why = ("not built in this version" if converter is None else converter.missing())
        versions = {}
        if converter is not None and not why and hasattr(converter, "versions"):
            try:
                versions = converter.versions()
            except Exception as error:  # noqa: BLE001 - a broken install is reported, not raised
                why = f"installed but broken: {error}"
        row = {"engine": key, "label": engine.label, "available": not why, "why": why or "",
               "here": list(support.here), "on_device": list(support.on_device), "versions": versions,
               "install": INSTALL.get(key, "") if why and converter is not None else ""}
        if key == "tvm":
            row["targets"] = {"host": "available" if not why else why,
                              "aarch64": "available" if cross_compiler() else f"needs {CROSS_CXX} ({CROSS_PACKAGE})"}
            if not cross_compiler():
                row["install"] = INSTALL["tvm"]
        out.append(row)
    return out


def install(name: str, log: Callable[[str], None] = print) -> None:
    """Install what an engine needs on this server: a side environment, or the TVM cross compiler (apt, as root)."""
    if name in SIDE_ENVS:
        SIDE_ENVS[name].install(log)
        return
    if name == "tvm":
        if cross_compiler():
            log(f"tvm: {CROSS_CXX} is already installed.")
            return
        if shutil.which("apt-get") is None:
            raise RuntimeError(f"Install {CROSS_PACKAGE} (or any {CROSS_CXX}) with this system's package manager.")
        log(f"tvm: installing Debian's {CROSS_PACKAGE} (cross-compiles TVM libraries for aarch64 boards)…")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", CROSS_PACKAGE], check=True,
                       env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        log(f"tvm: {CROSS_CXX} installed.")
        return
    raise ValueError(f"Nothing to install for {name!r}; installable: tvm, {', '.join(SIDE_ENVS)}.")
