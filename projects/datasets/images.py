"""Decoding every uploaded image once, and the size/mode statistics the report shows."""

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DatasetError

# Only these decoders are tried: restricting Pillow keeps exotic plugins (EPS runs Ghostscript) out of reach.
# The JPEG opener also returns the MPO files many phone cameras write.
# The one list of image types an upload may be, a dataset's images and a Try-it image alike: Pillow format -> the
# suffix a kept file gets.
IMAGE_TYPES = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "WEBP": ".webp", "TIFF": ".tif"}
PILLOW_FORMATS = tuple(IMAGE_TYPES)
_SPELLING = {"WEBP": "WebP"}  # how a sentence spells a Pillow format name, where it differs
_NAMES = [_SPELLING.get(kind, kind) for kind in IMAGE_TYPES]
# The same types as a sentence says them ("JPEG, PNG, BMP, WebP or TIFF"), derived so that the two cannot drift.
IMAGE_TYPE_NAMES = f"{', '.join(_NAMES[:-1])} or {_NAMES[-1]}" if len(_NAMES) > 1 else _NAMES[0]


# Hasler and Süsstrunk's colourfulness (2003, "Measuring colourfulness in natural images") on 0-255 values: under
# 15 is their "not colourful" class. An RGB file says how many channels an image has, not whether it shows colour;
# a photo of grey stone is RGB and all but grey, and the summary says so.
NOT_COLOURFUL = 15.0
COLOUR_SAMPLE_SIDE = 64  # pixels per side the measure reads (a thumbnail): the figure is an average
GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})  # Pillow modes with no colour channels


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    mode: str
    colourfulness: float | None = None  # images with colour channels only


def check_image(path: Path, name: str, max_pixels: int) -> ImageInfo:
    try:
        return _decode(path, name, max_pixels)
    except DatasetError:
        raise
    except UnidentifiedImageError as exc:
        raise DatasetError(f"{name}: not an image in a supported format ({', '.join(PILLOW_FORMATS)}).") from exc
    except Image.DecompressionBombError as exc:
        raise DatasetError(f"{name}: the image has too many pixels.") from exc
    except Exception as exc:  # Pillow reports bad data as OSError, SyntaxError, ValueError, struct.error...
        raise DatasetError(f"{name}: the image is corrupt or truncated ({exc}).") from exc


def pillow_open():
    """Pillow's own opener: importing ultralytics (detection, in the same worker) replaces Image.open with a wrapper
    that, on an unidentified file, tries to install and register a HEIF plugin — not something an upload should do."""
    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", Image.open)


def _decode(path: Path, name: str, max_pixels: int) -> ImageInfo:
    open_image = pillow_open()
    with open_image(path, formats=PILLOW_FORMATS) as im:
        width, height = im.size
        # Checked from the header, before verify() or load() decode anything.
        if width * height > max_pixels:
            raise DatasetError(f"{name}: {width}x{height} exceeds the limit of {max_pixels:,} pixels.")
        im.verify()  # checksums and structure; leaves the image unusable, hence the second open
    with open_image(path, formats=PILLOW_FORMATS) as im:
        im.load()  # a full decode catches truncated data that verify() lets through
        return ImageInfo(width, height, im.mode, colourfulness(im))


def colourfulness(image: Image.Image) -> float | None:
    """Hasler and Süsstrunk's M for an image with colour channels; None for grayscale modes."""
    if image.mode in GRAYSCALE_MODES:
        return None
    sample = image.convert("RGB")
    sample.thumbnail((COLOUR_SAMPLE_SIDE, COLOUR_SAMPLE_SIDE))
    r, g, b = np.asarray(sample, dtype=np.float32).reshape(-1, 3).T
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


class ImageStats:
    def __init__(self) -> None:
        self.sizes: Counter[tuple[int, int]] = Counter()
        self.modes: Counter[str] = Counter()
        self.not_colourful = 0  # images with colour channels that show almost no colour

    def add(self, info: ImageInfo) -> None:
        self.sizes[info.width, info.height] += 1
        self.modes[info.mode] += 1
        self.not_colourful += info.colourfulness is not None and info.colourfulness < NOT_COLOURFUL

    def as_fields(self) -> dict:
        return {
            "image_width": self._axis(0),
            "image_height": self._axis(1),
            "common_sizes": [{"width": w, "height": h, "count": n} for (w, h), n in self.sizes.most_common(5)],
            "modes": dict(self.modes.most_common()),
            "not_colourful": self.not_colourful,
        }

    def _axis(self, i: int) -> dict:
        if not self.sizes:
            return {"min": 0, "max": 0, "mean": 0.0}
        values = [size[i] for size in self.sizes]
        mean = sum(size[i] * n for size, n in self.sizes.items()) / self.sizes.total()
        return {"min": min(values), "max": max(values), "mean": round(mean, 1)}
