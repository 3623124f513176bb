"""Image preprocessing: one function for training's evaluation, the portal's measurements and the exported bundle.

Standalone on purpose (numpy and Pillow only, no package-relative imports): the bundle builder copies this file
into every bundle as `tango_common/images.py`, next to `infer.py`, so the numbers the portal shows and the numbers
the bundle prints come from the same code.
"""

import numpy as np
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def preprocess_image(image, input_size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """A path or PIL image -> normalised CHW float32 array: RGB, bilinear resize to a square, [0, 1], mean/std."""
    if not isinstance(image, Image.Image):
        with Image.open(image) as opened:
            image = opened.convert("RGB")  # convert() loads the pixels, so the file can close
    else:
        image = image.convert("RGB")  # grayscale and RGBA become 3 channels, like the training data
    if image.size != (input_size, input_size):
        image = image.resize((input_size, input_size), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    array = (array - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(array.transpose(2, 0, 1))


MAX_SUGGESTED_INPUT = 224


def suggested_input_size(side: int) -> int:
    """The input size for images whose shorter side is about `side` pixels: their own size (a multiple of 8), never
    upscaled, at most 224 (the usual size for photos; larger inputs cost latency for little accuracy)."""
    if side <= 0:
        return MAX_SUGGESTED_INPUT
    side = min(int(side), MAX_SUGGESTED_INPUT)
    return max(8, side - side % 8 if side >= 16 else side)
