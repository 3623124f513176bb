"""Builders for tiny uploads, made with Pillow at test time: no binary test files are checked in."""

import io
import os
import zipfile
from pathlib import Path

from PIL import Image


def png(size=(16, 12), color=(200, 30, 30), mode="RGB", fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color if mode != "L" else 128).save(buffer, format=fmt)
    return buffer.getvalue()


def write_zip(path: Path, entries) -> Path:
    """entries: {name or ZipInfo: bytes}, or pairs; None as the data makes a folder entry."""
    pairs = entries.items() if isinstance(entries, dict) else entries
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in pairs:
            if data is None:
                zf.writestr(zipfile.ZipInfo(name if name.endswith("/") else name + "/"), b"")
            else:
                zf.writestr(name, data)
    return path


def tree(root: Path) -> list[tuple[str, int]]:
    """Every path under root with its size (0 for folders): what the import must leave exactly as it was."""
    listing = []
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            listing.append((os.path.join(folder, name), 0))
        for name in files:
            path = os.path.join(folder, name)
            listing.append((path, os.path.getsize(path)))
    return sorted(listing)


def classification_entries(counts=None, prefix="") -> dict:
    counts = counts or {"cat": 5, "dog": 4}
    return {f"{prefix}{cls}/{cls}_{i}.png": png(color=(i * 20, 80, 160)) for cls, n in counts.items() for i in range(n)}


DATA_YAML = b"names:\n  0: cat\n  1: dog\n  2: bird\n"
# image -> label text; None = no label file (a background image)
DETECTION_LABELS = {
    "train/img0": "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n",
    "train/img1": "0 0.4 0.4 0.3 0.3\n\n",
    "train/img2": None,
    "train/img3": "",
    "val/img4": "2 0.5 0.5 1 1\n",
    "val/img5": "0 0.1 0.9 0.05 0.05\n",
}


def detection_entries(labels=None, data_yaml=DATA_YAML, split=True) -> dict:
    entries = {"data.yaml": data_yaml}
    for key, text in (labels if labels is not None else DETECTION_LABELS).items():
        path = key if split else key.split("/")[-1]
        entries[f"images/{path}.jpg"] = png(size=(40, 30), fmt="JPEG")
        if text is not None:
            entries[f"labels/{path}.txt"] = text.encode()
    return entries
