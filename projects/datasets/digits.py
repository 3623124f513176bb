"""scikit-learn's bundled handwritten digits (1797 real 8x8 scans, no download) as an image-folder dataset.

Used by the demo project and the tests: a real classification upload that any fresh install can make.
"""

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image


def _digit_pngs(upscale: int) -> Iterator[tuple[str, str, bytes]]:
    """(class name, file name, PNG bytes) for every digit, grayscale, 8*upscale pixels square."""
    from sklearn.datasets import load_digits  # imported here: sklearn is slow to import and only this needs it

    digits = load_digits()
    size = 8 * upscale
    for index, (pixels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        # The scans hold ink counts 0..16; stretch them to the 0..255 of an 8-bit image.
        gray = Image.fromarray(np.round(pixels * (255 / 16)).astype(np.uint8), mode="L")
        if upscale != 1:
            gray = gray.resize((size, size), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        gray.save(buffer, format="PNG")
        yield str(target), f"digit_{index:04d}.png", buffer.getvalue()


def write_digits_dataset(dest_dir: Path, *, upscale: int = 4) -> Path:
    """Write dest_dir/<digit>/digit_NNNN.png for the 10 classes "0".."9" and return dest_dir."""
    dest_dir = Path(dest_dir)
    for class_name, file_name, data in _digit_pngs(upscale):
        folder = dest_dir / class_name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / file_name).write_bytes(data)
    return dest_dir


def make_digits_zip(zip_path: Path, *, upscale: int = 4, wrapper: str | None = "digits") -> Path:
    """Zip the digits in the upload layout (class folders, no split), inside one wrapper folder by default."""
    zip_path = Path(zip_path)
    prefix = f"{wrapper}/" if wrapper else ""
    # PNG is already compressed: storing avoids deflating it again for nothing.
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as zf:
        for class_name, file_name, data in _digit_pngs(upscale):
            zf.writestr(f"{prefix}{class_name}/{file_name}", data)
    return zip_path
