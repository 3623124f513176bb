#!/usr/bin/env python3
"""Build a TensorRT engine from model.onnx and benchmark it: `python3 trt_build.py --precision fp16`.

Shipped in every TensorRT kit TANGO makes (the portal's server has no TensorRT; the device does: JetPack on a
Jetson, or a GPU worker image that ships `tensorrt`), and used by the portal itself where `tensorrt` imports.
Self-contained: tensorrt, numpy and the standard library; the GPU buffers go through torch when it has CUDA,
else through cuda-python (`cuda.cudart`).

int8 is calibrated (IInt8EntropyCalibrator2) on calibration.npz: images of the project's own dataset, stored as
uint8 pixels after resizing/letterboxing, with the mean/std the model was trained with.
Prints one JSON object: engine file, precision, latency p50/p90/p99 (ms, batch 1, after warm-up), throughput.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def calibration_batches(path: Path):
    data = np.load(path)
    pixels, mean, std = data["pixels"], data["mean"], data["std"]
    for item in pixels:
        yield ((item.astype(np.float32) / 255.0 - mean[:, None, None]) / std[:, None, None])[None].astype(np.float32)


class _Buffers:
    """Device memory via torch (when it has CUDA) or cuda-python."""

    def __init__(self):
        try:
            import torch

            if not torch.cuda.is_available():
                raise ImportError
            self.torch = torch
        except ImportError:
            self.torch = None
            from cuda import cudart

            self.cudart = cudart

    def alloc(self, shape, dtype=np.float32):
        if self.torch is not None:
            tensor = self.torch.empty(tuple(shape), dtype=self.torch.float32, device="cuda")
            return tensor, tensor.data_ptr()
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        _, ptr = self.cudart.cudaMalloc(nbytes)
        return ptr, ptr

    def to_device(self, handle, ptr, array):
        if self.torch is not None:
            handle.copy_(self.torch.from_numpy(np.ascontiguousarray(array)))
        else:
            self.cudart.cudaMemcpy(ptr, array.ctypes.data, array.nbytes,
                                   self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice)

    def to_host(self, handle, ptr, shape):
        if self.torch is not None:
            return handle.cpu().numpy()
        out = np.empty(shape, dtype=np.float32)
        self.cudart.cudaMemcpy(out.ctypes.data, ptr, out.nbytes, self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost)
        return out

    def sync(self):
        if self.torch is not None:
            self.torch.cuda.synchronize()
        else:
            self.cudart.cudaDeviceSynchronize()


def build(onnx_path: Path, engine_path: Path, precision: str, calibration: Path | None, input_size: int) -> None:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        raise SystemExit("TensorRT could not parse the ONNX model: "
                         + "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    shape = (1, 3, input_size, input_size)
    profile.set_shape(name, shape, shape, shape)
    config.add_optimization_profile(profile)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _calibrator(trt, calibration, shape, engine_path.with_suffix(".cache"))
        config.set_calibration_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise SystemExit("TensorRT failed to build the engine.")
    engine_path.write_bytes(bytes(serialized))


def _calibrator(trt, calibration: Path, shape, cache: Path):
    buffers = _Buffers()

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self.batches = calibration_batches(calibration)
            self.handle, self.ptr = buffers.alloc(shape)

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            batch = next(self.batches, None)
            if batch is None:
                return None
            buffers.to_device(self.handle, self.ptr, batch)
            return [self.ptr]

        def read_calibration_cache(self):
            return cache.read_bytes() if cache.exists() else None

        def write_calibration_cache(self, data):
            cache.write_bytes(bytes(data))

    return Calibrator()


class Runner:
    """batch (1, 3, S, S) float32 -> first output, on the built engine."""

    def __init__(self, engine_path: Path):
        import tensorrt as trt

        self.buffers = _Buffers()
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        self.context = self.engine.create_execution_context()
        self.io = []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.context.get_tensor_shape(name))
            handle, ptr = self.buffers.alloc(shape)
            self.context.set_tensor_address(name, ptr)
            self.io.append((name, self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT, shape, handle, ptr))
        self.stream = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        inputs = [io for io in self.io if io[1]]
        outputs = [io for io in self.io if not io[1]]
        self.buffers.to_device(inputs[0][3], inputs[0][4], np.ascontiguousarray(batch, dtype=np.float32))
        self.context.execute_async_v3(self.stream)
        self.buffers.sync()
        return self.buffers.to_host(outputs[0][3], outputs[0][4], outputs[0][2])


def benchmark(run, input_size: int, warmup: int = 20, runs: int = 200) -> dict:
    batch = np.random.default_rng(0).random((1, 3, input_size, input_size), dtype=np.float32)
    for _ in range(warmup):
        run(batch)
    timings = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run(batch)
        timings.append((time.perf_counter() - t0) * 1000)
    q = statistics.quantiles(timings, n=100)
    return {"latency_p50_ms": statistics.median(timings), "latency_p90_ms": q[89], "latency_p99_ms": q[98],
            "throughput_ips": 1000 / statistics.mean(timings), "runs": runs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp16")
    parser.add_argument("--onnx", default=str(HERE / "model.onnx"))
    parser.add_argument("--engine", default=None, help="output engine file (default model-<precision>.engine)")
    parser.add_argument("--calibration", default=str(HERE / "calibration.npz"))
    parser.add_argument("--input-size", type=int, default=None)
    parser.add_argument("--no-benchmark", action="store_true")
    args = parser.parse_args(argv)
    info = json.loads((HERE / "kit.json").read_text()) if (HERE / "kit.json").exists() else {}
    input_size = args.input_size or info.get("input_size")
    if not input_size:
        raise SystemExit("--input-size is needed (no kit.json beside this script)")
    engine = Path(args.engine or Path(args.onnx).with_name(f"model-{args.precision}.engine"))
    started = time.perf_counter()
    build(Path(args.onnx), engine, args.precision, Path(args.calibration), input_size)
    result = {"engine": str(engine), "precision": args.precision, "build_s": round(time.perf_counter() - started, 1)}
    if not args.no_benchmark:
        result |= benchmark(Runner(engine), input_size)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
