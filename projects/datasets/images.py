"""Decoding every uploaded image once, and the size/mode statistics the report shows."""

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .errors import DatasetError

# Only these decoders are tried: restricting Pillow keeps exotic plugins (EPS runs Ghostscript) out of reach.
# The JPEG opener also returns the MPO files many phone cameras write.
PILLOW_FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "TIFF")


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    mode: str


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


def _pillow_open():
    """Pillow's own opener: importing ultralytics (detection, in the same worker) replaces Image.open with a wrapper
    that, on an unidentified file, tries to install and register a HEIF plugin — not something an upload should do."""
    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", Image.open)


def _decode(path: Path, name: str, max_pixels: int) -> ImageInfo:
    open_image = _pillow_open()
    with open_image(path, formats=PILLOW_FORMATS) as im:
        width, height = im.size
        # Checked from the header, before verify() or load() decode anything.
        if width * height > max_pixels:
            raise DatasetError(f"{name}: {width}x{height} exceeds the limit of {max_pixels:,} pixels.")
        im.verify()  # checksums and structure; leaves the image unusable, hence the second open
    with open_image(path, formats=PILLOW_FORMATS) as im:
        im.load()  # a full decode catches truncated data that verify() lets through
        return ImageInfo(width, height, im.mode)


class ImageStats:
    def __init__(self) -> None:
        self.sizes: Counter[tuple[int, int]] = Counter()
        self.modes: Counter[str] = Counter()

    def add(self, info: ImageInfo) -> None:
        self.sizes[info.width, info.height] += 1
        self.modes[info.mode] += 1

    def as_fields(self) -> dict:
        return {
            "image_width": self._axis(0),
            "image_height": self._axis(1),
            "common_sizes": [{"width": w, "height": h, "count": n} for (w, h), n in self.sizes.most_common(5)],
            "modes": dict(self.modes.most_common()),
        }

    def _axis(self, i: int) -> dict:
        if not self.sizes:
            return {"min": 0, "max": 0, "mean": 0.0}
        values = [size[i] for size in self.sizes]
        mean = sum(size[i] * n for size, n in self.sizes.items()) / self.sizes.total()
        return {"min": min(values), "max": max(values), "mean": round(mean, 1)}
