"""PyTorch -> ONNX export, and a parity check that the exported graph computes what the model does."""

import copy
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch

from tango_common.images import IMAGENET_MEAN, IMAGENET_STD, preprocess_image

INPUT_NAME, OUTPUT_NAME = "images", "logits"


def _cpu_eval_copy(model: torch.nn.Module) -> torch.nn.Module:
    # A copy, so exporting never moves the caller's model off its device or out of training mode.
    return copy.deepcopy(model).cpu().eval()


def export_onnx(model: torch.nn.Module, *, input_size: int, path: Path, opset: int = 17) -> Path:
    """Write a single-file ONNX model with input "images" (N, 3, S, S) and output "logits" (N, classes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed once checked: a full disk or a crash never leaves a truncated
    # model.onnx that a later step could take for a finished one.
    partial = path.with_name(path.name + ".part")
    example = torch.zeros(1, 3, input_size, input_size)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter warns that it is deprecated; the dynamo one writes weights to a side file.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                _cpu_eval_copy(model), (example,), str(partial), dynamo=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, do_constant_folding=True,
            )
        onnx.checker.check_model(str(partial))  # by path: works for models over the 2 GB protobuf limit too
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def check_parity(model: torch.nn.Module, onnx_path: Path, image_paths, *, input_size: int,
                 report: Callable[..., None] | None = None, batch_size: int = 32) -> dict:
    """Run the same preprocessed images through PyTorch and ONNX Runtime (both CPU) and compare the logits."""
    import onnxruntime as ort

    if not image_paths:
        raise ValueError("check_parity needs at least one image")
    reference = _cpu_eval_copy(model)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    diffs, agree, scale = [], 0, 0.0
    for start in range(0, len(image_paths), batch_size):
        chunk = image_paths[start:start + batch_size]
        batch = np.stack([preprocess_image(p, input_size, IMAGENET_MEAN, IMAGENET_STD) for p in chunk])
        with torch.no_grad():
            expected = reference(torch.from_numpy(batch)).numpy()
        actual = session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        diffs.append(np.abs(expected - actual).ravel())
        scale = max(scale, float(np.abs(expected).max()))
        agree += int((expected.argmax(1) == actual.argmax(1)).sum())
    diff = np.concatenate(diffs)
    result = {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
              "top1_agreement": agree / len(image_paths), "n_images": len(image_paths), "output_scale": scale}
    if report is not None:
        report(f"parity on {result['n_images']} images: max |diff| {result['max_abs_diff']:.2e}, "
               f"mean {result['mean_abs_diff']:.2e}, top-1 agreement {100 * result['top1_agreement']:.1f}%")
    return result


PARITY_RTOL = 5e-3  # of the output scale: fp32 kernels that sum in another order differ by ~1e-6 to 1e-4 of it
PARITY_MIN_AGREEMENT = 0.99


def parity_ok(result: dict, rtol: float = PARITY_RTOL, min_agreement: float = PARITY_MIN_AGREEMENT) -> bool:
    """The exported graph computes what the model does: the largest difference is small *relative to the size of the
    outputs* (logits of a confident classifier reach tens; an absolute 1e-3 failed "max |diff| 3.91e-03, top-1
    agreement 100%"), and the predicted class agrees on (nearly) every image. The scale is the largest |logit| of the
    reference, at least 1, so near-zero outputs are not held to a vanishing tolerance."""
    scale = max(1.0, float(result.get("output_scale") or 0.0))
    return result["max_abs_diff"] <= rtol * scale and result["top1_agreement"] >= min_agreement


def parity_text(result: dict, rtol: float = PARITY_RTOL, min_agreement: float = PARITY_MIN_AGREEMENT) -> str:
    """The comparison in words, for the log and a failure message."""
    scale = max(1.0, float(result.get("output_scale") or 0.0))
    return (f"on {result['n_images']} images the outputs differ by at most {result['max_abs_diff']:.2e} "
            f"({100 * result['max_abs_diff'] / scale:.2f}% of the output scale {scale:.3g}; allowed "
            f"{100 * rtol:.1f}%), and the top-1 class agrees on {100 * result['top1_agreement']:.1f}% of them "
            f"(needed {100 * min_agreement:.0f}%)")
