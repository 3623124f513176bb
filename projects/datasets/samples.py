"""A few thumbnails of a stored dataset, so its page shows what the images look like. Django-free.

Read from the normalised tree the importer wrote (classification: <split>/<class>/<image>; detection:
images/<split>/<image> with YOLO labels/<split>/<stem>.txt), re-encoded by Pillow as small PNG data URIs: the page
embeds them, so no route serves the dataset's files and nothing the user uploaded reaches the browser as it is.
"""

import base64
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from .layout import IMAGE_EXTENSIONS

BOX_COLOURS = ("#ef4444", "#22c55e", "#3b82f6", "#f59e0b", "#a855f7", "#14b8a6")


@dataclass(frozen=True)
class Thumbnail:
    caption: str  # the class (classification) or the classes boxed in it (detection)
    data_uri: str
    width: int
    height: int


def _images(folder: Path, limit: int) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)[:limit]


def _encode(image: Image.Image, size: int) -> tuple[str, int, int]:
    image.thumbnail((size, size), Image.Resampling.LANCZOS if max(image.size) > size else Image.Resampling.NEAREST)
    if max(image.size) < size:  # tiny images (8 px digits) drawn bigger, pixels kept sharp
        scale = max(1, size // max(image.size))
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(), image.width, image.height


def _open_rgb(path: Path) -> Image.Image | None:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError):  # the file went missing or is unreadable: show the others
        return None


def classification_thumbnails(root: Path, class_names: list[str], *, per_class: int, max_classes: int,
                              size: int) -> list[Thumbnail]:
    thumbs = []
    for name in class_names[:max_classes]:
        paths = _images(root / "train" / name, per_class) or _images(root / "val" / name, per_class)
        for path in paths:
            if (image := _open_rgb(path)) is not None:
                thumbs.append(Thumbnail(name, *_encode(image, size)))
    return thumbs


def _boxes(label_file: Path) -> list[tuple[int, float, float, float, float]]:
    boxes = []
    try:
        lines = label_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return boxes
    for line in lines:
        parts = line.split()
        if len(parts) == 5:
            try:
                boxes.append((int(parts[0]), *(float(v) for v in parts[1:])))
            except ValueError:
                continue
    return boxes


def detection_thumbnails(root: Path, class_names: list[str], *, limit: int, size: int) -> list[Thumbnail]:
    thumbs = []
    for path in _images(root / "images" / "train", limit) or _images(root / "images" / "val", limit):
        image = _open_rgb(path)
        if image is None:
            continue
        boxes = _boxes(root / "labels" / path.parent.name / f"{path.stem}.txt")
        draw = ImageDraw.Draw(image)
        line = max(1, round(max(image.size) / 100))
        for cls, cx, cy, w, h in boxes:
            x0, y0 = (cx - w / 2) * image.width, (cy - h / 2) * image.height
            x1, y1 = (cx + w / 2) * image.width, (cy + h / 2) * image.height
            draw.rectangle((x0, y0, x1, y1), outline=BOX_COLOURS[cls % len(BOX_COLOURS)], width=line)
        names = sorted({class_names[c] if 0 <= c < len(class_names) else str(c) for c, *_ in boxes})
        thumbs.append(Thumbnail(", ".join(names) or "background", *_encode(image, size)))
    return thumbs


def dataset_thumbnails(root: Path, task: str, class_names: list[str], *, per_class: int = 3, max_classes: int = 12,
                       size: int = 72) -> list[Thumbnail]:
    """Up to per_class images of each of the first max_classes classes (detection: a dozen images, boxes drawn),
    at most size pixels on their longer side."""
    root = Path(root)
    if task == "detection":
        return detection_thumbnails(root, class_names, limit=per_class * 4, size=size * 2)
    return classification_thumbnails(root, class_names, per_class=per_class, max_classes=max_classes, size=size)
