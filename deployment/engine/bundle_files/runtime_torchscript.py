"""TorchScript for this bundle: `load_session(bundle_dir, config)` -> an object that runs like an ONNX Runtime session.

infer.py, serve.py and smoke_test.py load the model through this file only. The model is TorchScript, loaded with
torch.jit.load (no pickled Python code runs); on a device with an NVIDIA GPU it runs on CUDA when torch has it.
"""

from pathlib import Path


class _Input:
    def __init__(self, name):
        self.name = name


class TorchScriptSession:
    def __init__(self, module, device, input_name, half):
        self.module, self.device, self.input_name, self.half = module, device, input_name, half

    def get_inputs(self):
        return [_Input(self.input_name)]

    def run(self, _output_names, feed):
        import torch

        batch = torch.from_numpy(next(iter(feed.values()))).to(self.device)
        if self.half:
            batch = batch.half()
        with torch.inference_mode():
            out = self.module(batch)
        if isinstance(out, (list, tuple)):
            out = out[0]
        return [out.float().cpu().numpy()]


def load_session(bundle_dir, config):
    import torch

    device = "cuda" if config.get("gpu") and torch.cuda.is_available() else "cpu"
    module = torch.jit.load(str(Path(bundle_dir) / config["model_file"]), map_location=device).eval()
    half = config.get("precision") == "fp16" and device == "cuda"
    if half:
        module = module.half()
    return TorchScriptSession(module, device, config.get("input_name", "images"), half)


def describe(session) -> str:
    import torch

    return f"torch {torch.__version__} TorchScript ({session.device})"
