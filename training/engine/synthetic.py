"""A tiny image dataset drawn with PIL, for tests and smoke runs: classes differ by colour and stripe direction."""

import random
from pathlib import Path

from PIL import Image, ImageDraw

# name -> (colour, stripes): horizontal, vertical or a centred square.
PATTERNS = {
    "red_rows": ((220, 40, 40), "rows"),
    "green_columns": ((40, 200, 60), "columns"),
    "blue_square": ((50, 70, 230), "square"),
}


def draw(pattern: str, colour, size: int, rng: random.Random) -> Image.Image:
    background = tuple(rng.randint(0, 60) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    pen = ImageDraw.Draw(image)
    jitter = tuple(max(0, min(255, c + rng.randint(-30, 30))) for c in colour)
    offset = rng.randint(0, 2)
    if pattern == "rows":
        for y in range(offset, size, 4):
            pen.rectangle((0, y, size - 1, y + 1), fill=jitter)
    elif pattern == "columns":
        for x in range(offset, size, 4):
            pen.rectangle((x, 0, x + 1, size - 1), fill=jitter)
    else:
        margin = size // 4 + offset - 1
        pen.rectangle((margin, margin, size - 1 - margin, size - 1 - margin), fill=jitter)
    return image


def make_dataset(root: Path, *, per_class: int = 20, val_per_class: int = 8, size: int = 16, seed: int = 0,
                 classes: list[str] | None = None) -> list[str]:
    """Write root/train/<class>/*.png and root/val/<class>/*.png; returns the class names in order."""
    rng = random.Random(seed)
    classes = classes or list(PATTERNS)
    for split, count in (("train", per_class), ("val", val_per_class)):
        for name in classes:
            colour, pattern = PATTERNS[name]
            folder = Path(root) / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                draw(pattern, colour, size, rng).save(folder / f"{i:03d}.png")
    return classes
