"""TensorFlow Lite (LiteRT) for this bundle: `load_session(bundle_dir, config)` -> an object that runs like an ONNX
Runtime session.

infer.py, serve.py and smoke_test.py load the model through this file only. The interpreter is LiteRT's
(`pip install ai-edge-litert`), else the older `tflite-runtime`, else full TensorFlow's. The .tflite file takes
NHWC input (onnx2tf's layout) while infer.py prepares NCHW batches like every other engine: the batch is transposed
here. A detector's output comes back as infer.py expects it, (N, 4 + classes, anchors).
"""

from pathlib import Path

import numpy as np


class _Input:
    def __init__(self, name):
        self.name = name


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            from tensorflow.lite.python.interpreter import Interpreter
    return Interpreter


class TFLiteSession:
    def __init__(self, interpreter, input_name):
        self.interpreter = interpreter
        self.input = interpreter.get_input_details()[0]
        self.output = interpreter.get_output_details()[0]
        self.input_name = input_name
        self.nhwc = int(self.input["shape"][-1]) == 3

    def get_inputs(self):
        return [_Input(self.input_name)]

    def run(self, _output_names, feed):
        batch = np.asarray(next(iter(feed.values())), dtype=np.float32)
        outputs = []
        for item in batch:  # the file is built for batch 1
            x = item.transpose(1, 2, 0)[None] if self.nhwc and item.shape[0] == 3 else item[None]
            self.interpreter.set_tensor(self.input["index"], np.ascontiguousarray(x))
            self.interpreter.invoke()
            outputs.append(np.array(self.interpreter.get_tensor(self.output["index"])))
        output = np.concatenate(outputs)
        if output.ndim == 3 and output.shape[1] > output.shape[2]:  # (N, anchors, 4 + classes) -> channels first
            output = output.transpose(0, 2, 1)
        return [output]


def load_session(bundle_dir, config):
    interpreter = _interpreter_class()(
        model_path=str(Path(bundle_dir) / config["model_file"]), num_threads=int(config.get("threads", 1))
    )
    interpreter.allocate_tensors()
    return TFLiteSession(interpreter, config.get("input_name", "images"))


def describe(session) -> str:
    module = type(session.interpreter).__module__.split(".")[0]
    return f"{module} TFLite interpreter (CPU, {session.input['dtype'].__name__} input)"
