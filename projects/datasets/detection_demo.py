"""A real-image detection dataset any fresh install can make: objects cut from scikit-image's bundled photographs
(the astronaut's face, Chelsea the cat, the coffee cup, the rocket, the motorcycle), pasted at random sizes and
places onto varied backgrounds (brick, grass, gravel, the moon, the Hubble deep field, a microscope slide, gradients),
with their boxes in YOLO format. Nothing is downloaded: every picture ships inside scikit-image.

Used by the detection demo project and the tests; the zip it writes is the upload layout the importer accepts
(images/{train,val}, labels/{train,val}, data.yaml).
"""

import io
import random
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageEnhance

# class -> (scikit-image loader, crop box x0, y0, x1, y1 in that photograph's pixels)
OBJECTS = {
    "astronaut": ("astronaut", (135, 10, 270, 190)),
    "cat": ("chelsea", (60, 10, 420, 300)),
    "cup": ("coffee", (130, 10, 460, 300)),
    "rocket": ("rocket", (285, 90, 355, 420)),
    "motorcycle": ("motorcycle", (50, 110, 720, 470)),
}
CLASS_NAMES = list(OBJECTS)
BACKGROUNDS = ("brick", "grass", "gravel", "moon", "hubble_deep_field", "immunohistochemistry", "page", "coins")
MAX_TRIES = 20  # placements tried per object before the scene keeps fewer objects


def _photo(name: str) -> np.ndarray:
    from skimage import data  # imported here: scikit-image is slow to import and only this needs it

    if name == "motorcycle":
        return data.stereo_motorcycle()[0]
    return getattr(data, name)()


class _Library:
    """The cut-out objects and background photographs, loaded once per dataset."""

    def __init__(self) -> None:
        self.objects = {cls: Image.fromarray(_photo(name)).convert("RGB").crop(box)
                        for cls, (name, box) in OBJECTS.items()}
        self.backgrounds = [Image.fromarray(_photo(name)).convert("RGB") for name in BACKGROUNDS]


def _background(lib: _Library, rng: random.Random, size: int) -> Image.Image:
    if rng.random() < 0.2:  # a smooth two-colour gradient now and then: no texture at all to lean on
        top, bottom = (np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32) for _ in range(2))
        ramp = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
        pixels = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (size, size, 3))
        return Image.fromarray(pixels.astype(np.uint8))
    photo = rng.choice(lib.backgrounds)
    side = rng.randint(min(photo.size) // 3, min(photo.size))
    x, y = rng.randint(0, photo.width - side), rng.randint(0, photo.height - side)
    return photo.crop((x, y, x + side, y + side)).resize((size, size), Image.Resampling.BILINEAR)


def _cutout(lib: _Library, rng: random.Random, cls: str, size: int) -> Image.Image:
    """The object, re-cropped a little, resized, maybe mirrored, with its brightness and contrast jittered."""
    obj = lib.objects[cls]
    dx, dy = int(obj.width * 0.06), int(obj.height * 0.06)
    obj = obj.crop((rng.randint(0, dx), rng.randint(0, dy), obj.width - rng.randint(0, dx),
                    obj.height - rng.randint(0, dy)))
    longest = rng.uniform(0.25, 0.6) * size
    aspect = obj.width / obj.height * rng.uniform(0.85, 1.15)
    w, h = (longest, longest / aspect) if aspect >= 1 else (longest * aspect, longest)
    obj = obj.resize((max(4, round(w)), max(4, round(h))), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        obj = obj.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    obj = ImageEnhance.Brightness(obj).enhance(rng.uniform(0.7, 1.3))
    return ImageEnhance.Contrast(obj).enhance(rng.uniform(0.8, 1.2))


def _overlap(a, b) -> float:
    """Intersection over the smaller box: objects may touch but never hide each other."""
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller


def render_scene(lib: _Library, rng: random.Random, size: int,
                 classes: list[str] = CLASS_NAMES) -> tuple[Image.Image, list[tuple[int, ...]]]:
    """One image and its boxes (class id in `classes`, x0, y0, x1, y1 in pixels)."""
    canvas = _background(lib, rng, size)
    boxes = []
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        cls = rng.randrange(len(classes))
        obj = _cutout(lib, rng, classes[cls], size)
        for _ in range(MAX_TRIES):
            x, y = rng.randint(0, size - obj.width), rng.randint(0, size - obj.height)
            box = (x, y, x + obj.width, y + obj.height)
            if all(_overlap(box, other[1:]) < 0.15 for other in boxes):
                canvas.paste(obj, (x, y))
                boxes.append((cls, *box))
                break
    return canvas, boxes


def yolo_label(boxes, size: int) -> str:
    lines = []
    for cls, x0, y0, x1, y1 in boxes:
        cx, cy, w, h = (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size
        lines.append(f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")


def _files(*, train: int, val: int, size: int, seed: int, classes: list[str] | None) -> Iterator[tuple[str, bytes]]:
    """(relative path, bytes) of every file in the YOLO layout, data.yaml last."""
    classes = list(classes or CLASS_NAMES)
    unknown = set(classes) - set(CLASS_NAMES)
    if unknown:
        raise ValueError(f"unknown demo classes {sorted(unknown)}; choose from {CLASS_NAMES}")
    lib = _Library()
    for split, count in (("train", train), ("val", val)):
        rng = random.Random(f"{seed}:{split}")  # val does not shift when train's size changes
        for index in range(count):
            image, boxes = render_scene(lib, rng, size, classes)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=92)
            stem = f"{split}_{index:04d}"
            yield f"images/{split}/{stem}.jpg", buffer.getvalue()
            yield f"labels/{split}/{stem}.txt", yolo_label(boxes, size).encode()
    doc = {"path": ".", "train": "images/train", "val": "images/val", "names": classes}
    yield "data.yaml", yaml.safe_dump(doc, sort_keys=False).encode()


def write_detection_demo(dest_dir: Path, *, train: int = 240, val: int = 60, size: int = 160, seed: int = 0,
                         classes: list[str] | None = None) -> Path:
    """Write the dataset in the normalised YOLO layout (what the importer produces) and return dest_dir."""
    dest_dir = Path(dest_dir)
    for relative, data in _files(train=train, val=val, size=size, seed=seed, classes=classes):
        path = dest_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return dest_dir


def make_detection_demo_zip(zip_path: Path, *, train: int = 240, val: int = 60, size: int = 160, seed: int = 0,
                            classes: list[str] | None = None, wrapper: str | None = "detection_demo") -> Path:
    """The same dataset as an upload zip, inside one wrapper folder by default."""
    zip_path = Path(zip_path)
    prefix = f"{wrapper}/" if wrapper else ""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as zf:  # JPEGs do not deflate
        for relative, data in _files(train=train, val=val, size=size, seed=seed, classes=classes):
            zf.writestr(prefix + relative, data)
    return zip_path


# What the demo trains: the smallest current model at the images' own size. Measured by bench/detection_demo.py.
DEMO_RECIPE = {
    "train": 240, "val": 60, "image_size": 128,
    "model": "yolo11n", "input_size": 128, "epochs": 25, "batch": 8,
    # An optimizer step per batch (ultralytics otherwise accumulates to 64 images: 4 steps an epoch here).
    "overrides": {"nbs": 8, "warmup_epochs": 1, "close_mosaic": 5},
}
