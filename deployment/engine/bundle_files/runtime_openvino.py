"""OpenVINO for this bundle: `load_session(bundle_dir, config)` -> an object that runs like an ONNX Runtime session.

infer.py, serve.py and smoke_test.py load the model through this file only. The precision is stated, never left to
the CPU (OpenVINO would run bf16 silently on CPUs that have it): `inference_precision` in preprocess.json.
"""

from pathlib import Path


class _Input:
    def __init__(self, name):
        self.name = name


class OpenVINOSession:
    def __init__(self, compiled, input_name):
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.input_name = input_name

    def get_inputs(self):
        return [_Input(self.input_name)]

    def run(self, _output_names, feed):
        self.request.infer({0: next(iter(feed.values()))})
        return [self.request.get_output_tensor(0).data.copy()]


def load_session(bundle_dir, config):
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(Path(bundle_dir) / config["model_file"]))
    device = config.get("openvino_device", "CPU")
    properties = {"INFERENCE_PRECISION_HINT": config.get("inference_precision", "f32")}
    compiled = core.compile_model(model, device, properties)
    return OpenVINOSession(compiled, config.get("input_name", "images"))


def describe(session) -> str:
    import openvino as ov

    precision = session.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()  # "bf16", not "<Type: …>"
    return f"openvino {ov.get_version()} (CPU, {precision})"
