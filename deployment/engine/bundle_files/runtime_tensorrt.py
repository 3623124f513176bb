"""TensorRT for this bundle: the engine is built on the device, from model.onnx, the first time it runs.

`load_session(bundle_dir, config)` builds `model-<precision>.engine` next to model.onnx when it is missing (a
TensorRT engine only runs on the GPU and TensorRT version it was built with, so it cannot be built anywhere else)
and returns an object that runs like an ONNX Runtime session. With the TensorRT kit's trt_build.py in the bundle it
builds through that (int8 calibrated on the project's images); `python trt_build.py --precision fp16` builds it
ahead of time and prints its latency. Needs the `tensorrt` Python package (JetPack ships it on Jetsons;
`pip install tensorrt` on a PC or cloud GPU) and torch with CUDA for the device buffers.
"""

import time
from pathlib import Path


class _Input:
    def __init__(self, name):
        self.name = name


def engine_path(bundle_dir, config) -> Path:
    return Path(bundle_dir) / f"model-{config.get('precision', 'fp16')}.engine"


def build_with_kit(bundle_dir, config) -> bool:
    """Build through the TensorRT kit's trt_build.py when the bundle has it (it calibrates int8 on the project's
    images); False when it has none."""
    import subprocess
    import sys

    script = Path(bundle_dir) / "trt_build.py"
    if not script.is_file():
        return False
    subprocess.run([sys.executable, str(script), "--precision", config.get("precision", "fp16")], cwd=bundle_dir,
                   check=True)
    return engine_path(bundle_dir, config).is_file()


def build_engine(bundle_dir, config, log=print) -> Path:
    """Parse model.onnx and serialise an engine for this GPU; fp16 unless the bundle asks for fp32."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    onnx_path = Path(bundle_dir) / config["model_file"]
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    build = builder.create_builder_config()
    if config.get("precision", "fp16") == "fp16" and builder.platform_has_fast_fp16:
        build.set_flag(trt.BuilderFlag.FP16)
    size = config["input_size"]
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    batch = int(config.get("max_batch", 16))
    profile.set_shape(name, (1, 3, size, size), (1, 3, size, size), (batch, 3, size, size))
    build.add_optimization_profile(profile)
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, build)
    if serialized is None:
        raise RuntimeError("TensorRT failed to build the engine (see the messages above).")
    path = engine_path(bundle_dir, config)
    path.write_bytes(bytes(serialized))
    log(f"Built {path.name} with TensorRT {trt.__version__} in {time.perf_counter() - started:.1f} s.")
    return path


class TensorRTSession:
    def __init__(self, engine, input_name):
        import torch

        self.engine, self.input_name, self.torch = engine, input_name, torch
        self.context = engine.create_execution_context()
        self.names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.output = next(n for n in self.names if n != self.input_name)
        self.stream = torch.cuda.Stream()

    def get_inputs(self):
        return [_Input(self.input_name)]

    def run(self, _output_names, feed):
        torch = self.torch
        batch = torch.from_numpy(next(iter(feed.values()))).cuda().contiguous()
        self.context.set_input_shape(self.input_name, tuple(batch.shape))
        out = torch.empty(tuple(self.context.get_tensor_shape(self.output)), dtype=torch.float32, device="cuda")
        self.context.set_tensor_address(self.input_name, batch.data_ptr())
        self.context.set_tensor_address(self.output, out.data_ptr())
        with torch.cuda.stream(self.stream):
            self.context.execute_async_v3(self.stream.cuda_stream)
        self.stream.synchronize()
        return [out.cpu().numpy()]


def load_session(bundle_dir, config):
    import tensorrt as trt

    path = engine_path(bundle_dir, config)
    if not path.is_file() and not build_with_kit(bundle_dir, config):
        build_engine(bundle_dir, config)
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(path.read_bytes())
    return TensorRTSession(engine, config.get("input_name", "images"))


def describe(session) -> str:
    import tensorrt as trt

    return f"tensorrt {trt.__version__} (CUDA)"
