"""Django-free deployment core: ONNX export, parity checks, bundles."""
