"""What the dataset page draws from `Dataset.stats`. Django-free.

The stats dict comes from the dataset validator and may grow new keys, so every reader here is defensive: a
section appears only when its key is present and well formed, and keys nobody reads are listed as they are.
"""

from dataclasses import dataclass, field

from tango_common.images import suggested_input_size as classifier_input_size

from .datasets.images import GRAYSCALE_MODES

# Keys the validator has used for images per class: {class: n} or {class: {split: n}}.
CLASS_COUNT_KEYS = ("class_counts", "images_per_class")
SIZE_KEYS = ("image_width", "image_height", "common_sizes", "image_sizes")
SHOWN_KEYS = {*CLASS_COUNT_KEYS, *SIZE_KEYS, "split_counts", "boxes_per_class", "task", "class_names",
              "num_images", "size_bytes", "modes", "not_colourful", "split_generated", "ignored_files",
              "images_without_boxes"}
# A fixed palette keeps a split's colour the same on every page; unknown splits cycle through the rest.
SPLIT_COLORS = {"train": "#4f46e5", "val": "#0ea5e9", "test": "#f59e0b", "all": "#4f46e5"}
SPARE_COLORS = ("#10b981", "#ef4444", "#8b5cf6", "#64748b")
MAX_BARS = 40


def _count(value) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else None


def class_split_counts(stats: dict) -> dict[str, dict[str, int]]:
    """{class: {split: images}}; a flat {class: n} becomes {class: {"all": n}}."""
    raw = next((stats[k] for k in CLASS_COUNT_KEYS if isinstance(stats.get(k), dict)), {})
    counts: dict[str, dict[str, int]] = {}
    for name, value in raw.items():
        if isinstance(value, dict):
            splits = {str(s): n for s, v in value.items() if (n := _count(v)) is not None}
        else:
            splits = {"all": n} if (n := _count(value)) is not None else {}
        if splits:
            counts[str(name)] = splits
    return counts


def split_counts(stats: dict) -> dict[str, int]:
    raw = stats.get("split_counts")
    if not isinstance(raw, dict):
        return {}
    return {str(s): n for s, v in raw.items() if (n := _count(v)) is not None}


@dataclass
class Segment:
    split: str
    value: int
    x: float
    width: float
    color: str


@dataclass
class Bar:
    label: str
    total: int
    y: float
    segments: list[Segment] = field(default_factory=list)

    @property
    def end(self) -> float:
        """Where the total's label goes: just right of the bar."""
        return self.segments[-1].x + self.segments[-1].width if self.segments else 0.0


@dataclass
class BarChart:
    """Geometry of a horizontal stacked bar chart, drawn by the template as SVG."""

    bars: list[Bar]
    legend: list[tuple[str, str]]
    width: int
    height: int
    label_width: int
    bar_height: int
    hidden: int  # classes left out beyond MAX_BARS

    @property
    def label_x(self) -> int:
        return self.label_width - 8

    @property
    def text_y(self) -> int:
        """Baseline that centres 12px text in a bar."""
        return self.bar_height - 5


def split_color(split: str, order: list[str]) -> str:
    if split in SPLIT_COLORS:
        return SPLIT_COLORS[split]
    return SPARE_COLORS[order.index(split) % len(SPARE_COLORS)]


def bar_chart(counts: dict[str, dict[str, int]], *, width: int = 640, label_width: int = 150,
              bar_height: int = 18, gap: int = 6) -> BarChart | None:
    if not counts:
        return None
    splits = sorted({s for c in counts.values() for s in c}, key=lambda s: (s not in SPLIT_COLORS, s))
    # Biggest classes first: imbalance is what a user looks for.
    ordered = sorted(counts.items(), key=lambda kv: -sum(kv[1].values()))
    shown = ordered[:MAX_BARS]
    peak = max(sum(c.values()) for _, c in shown) or 1
    scale = (width - label_width - 60) / peak  # 60px right margin for the total
    bars = []
    for row, (name, by_split) in enumerate(shown):
        bar = Bar(label=name, total=sum(by_split.values()), y=row * (bar_height + gap))
        x = float(label_width)
        for split in splits:
            if value := by_split.get(split, 0):
                bar.segments.append(Segment(split, value, x, value * scale, split_color(split, splits)))
                x += value * scale
        bars.append(bar)
    return BarChart(
        bars=bars, legend=[(s, split_color(s, splits)) for s in splits], width=width,
        height=len(bars) * (bar_height + gap), label_width=label_width, bar_height=bar_height,
        hidden=len(ordered) - len(shown),
    )


def _range(value) -> str | None:
    """"28–640, mean 212" from {"min", "max", "mean"}; just "16" when every image has the same size."""
    if not (isinstance(value, dict) and all(_count(value.get(k)) is not None for k in ("min", "max"))):
        return None
    if value["min"] == value["max"]:
        return f"{value['min']:.0f}"
    mean = f", mean {value['mean']:.0f}" if _count(value.get("mean")) is not None else ""
    return f"{value['min']:.0f}–{value['max']:.0f}{mean}"


def image_sizes(stats: dict) -> dict:
    """Width and height ranges plus the most common sizes, as far as the stats tell."""
    common = []
    for item in stats.get("common_sizes") or []:
        if isinstance(item, dict) and all(_count(item.get(k)) is not None for k in ("width", "height")):
            common.append({"size": f"{item['width']}×{item['height']}", "count": _count(item.get("count"))})
    return {"width": _range(stats.get("image_width")), "height": _range(stats.get("image_height")),
            "common": common}


# Pillow's image modes in words (https://pillow.readthedocs.io/en/stable/handbook/concepts.html#modes): how an image
# is stored (its channels), not what it shows; whether the colour images show colour is `not_colourful`'s.
MODE_NAMES = {"1": "black and white", "L": "grayscale", "LA": "grayscale with transparency",
              "P": "palette (indexed colour)", "RGB": "RGB (three colour channels)",
              "RGBA": "RGBA (colour channels and transparency)", "CMYK": "CMYK", "YCbCr": "YCbCr",
              "I": "32-bit grayscale", "I;16": "16-bit grayscale", "F": "floating-point grayscale"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def image_modes(stats: dict) -> str:
    """"All 270 images are grayscale." / "250 RGB (three colour channels), 20 grayscale." from {"L": 270}, and how
    many of the colour ones show almost no colour."""
    raw = stats.get("modes")
    if not isinstance(raw, dict):
        return ""
    counts = sorted(((MODE_NAMES.get(str(m), f"mode {m}"), n) for m, v in raw.items() if (n := _count(v))),
                    key=lambda item: -item[1])
    if not counts:
        return ""
    if len(counts) == 1:
        name, n = counts[0]
        text = f"All {n} images are {name}." if n > 1 else f"The image is {name}."
    else:
        text = ", ".join(f"{n} {name}" for name, n in counts) + ". Training reads every image as RGB."
    if grey := _count(stats.get("not_colourful")):
        colour = sum(n for m, v in raw.items() if str(m) not in GRAYSCALE_MODES and (n := _count(v)))
        text += (f" {'All' if grey >= colour else grey} of the {colour} with colour channels "
                 f"{'shows' if grey == 1 and colour != 1 else 'show'} almost no colour: they look nearly grey.")
    return text


def split_origin(stats: dict) -> str:
    """Whether the train/validation split came with the upload or was made for it."""
    generated = stats.get("split_generated")
    if not isinstance(generated, bool):
        return ""
    if not generated:
        return "Split as uploaded (its own train and validation folders)."
    splits = split_counts(stats)
    total = sum(splits.values())
    if total and splits.get("val"):
        share = round(100 * splits["val"] / total)
        return (f"The upload had no validation split, so one was made: {share}% of each class's images, "
                f"picked at random, are held out for validation.")
    return "The upload had no validation split, so one was made from a share of each class's images."


def findings(stats: dict) -> list[str]:
    """Other things the validator found, as sentences: files it left out, detection's background images."""
    lines = []
    ignored = stats.get("ignored_files")
    if isinstance(ignored, list) and ignored:
        shown = ", ".join(str(name) for name in ignored[:5])
        more = f" and {len(ignored) - 5} more" if len(ignored) > 5 else ""
        lines.append(f"{_plural(len(ignored), 'file')} not used by the layout, left out: {shown}{more}.")
    background = stats.get("images_without_boxes")
    if isinstance(background, dict):
        parts = [f"{n} in {split}" for split, v in background.items() if (n := _count(v))]
        if parts:
            lines.append(f"Images without boxes (background): {', '.join(parts)}.")
    return lines


def _in_words(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_in_words(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_in_words(v) for v in value)
    return str(value)


def other_stats(stats: dict) -> list[tuple[str, str]]:
    """Keys this page has no section for (a newer validator's), as label and plain text: nothing the validator
    found is hidden, and no raw JSON reaches the page."""
    rows = []
    for key in sorted(k for k in stats if k not in SHOWN_KEYS):
        if stats[key] in (None, [], {}, ""):  # "no background images", "nothing ignored": not worth a row
            continue
        text = _in_words(stats[key])
        rows.append((str(key).replace("_", " ").capitalize(), text if len(text) <= 200 else text[:199] + "…"))
    return rows


def image_side(stats: dict) -> int | None:
    """The shorter side, in pixels, of the dataset's most common image size (else of its mean size): what an input
    size is suggested from."""
    stats = stats if isinstance(stats, dict) else {}
    for item in stats.get("common_sizes") or []:
        if isinstance(item, dict) and (w := _count(item.get("width"))) and (h := _count(item.get("height"))):
            return min(w, h)
    means = [_count(v.get("mean")) for k in ("image_width", "image_height") if isinstance(v := stats.get(k), dict)]
    means = [m for m in means if m]
    return round(min(means)) if means else None


def suggested_input_size(side: int | None, task: str) -> int:
    """The input size the wizard suggests for images whose shorter side is about `side` px. Classification: the
    training defaults' own rule (tango_common.images: the images' size, never enlarged, at most 224). Detection:
    at most 640 and a multiple of 32 (YOLO's stride). Without a size: 224 and 640."""
    if task == "detection":
        return 640 if not side else min(640, max(32, -(-side // 32) * 32))
    return classifier_input_size(side or 0)


# Below this many training images in its smallest class, a model trained from scratch is unlikely to be useful.
FEW_IMAGES_PER_CLASS = 30


def dataset_warnings(stats: dict, *, input_size: int | None = None) -> list[str]:
    """What the wizard's Review warns about the data: too few images, strong imbalance, an input size far above
    the images' own."""
    stats = stats if isinstance(stats, dict) else {}
    warnings = []
    counts = class_split_counts(stats)
    train = {name: by_split.get("train", by_split.get("all", 0)) for name, by_split in counts.items()}
    if train:
        smallest = min(train, key=train.get)
        if train[smallest] < FEW_IMAGES_PER_CLASS:
            even = len(train) > 1 and len(set(train.values())) == 1  # naming one class would blame it alone
            where = "each class" if even else f"class {smallest!r}"
            warnings.append(
                f"A small dataset: {_plural(train[smallest], 'training image')} in {where}. A model "
                f"trained from scratch on so few images is likely to be weak; a few hundred per class, or uploaded "
                f"pretrained weights, do much better.")
        largest = max(train.values())
        if train[smallest] and largest / train[smallest] >= 5:
            warnings.append(f"Imbalanced classes: {largest} training images in the largest, {train[smallest]} in "
                            f"{smallest!r}. The model may favour the big classes.")
    side = image_side(stats)
    if input_size and side and input_size >= 2 * side:
        warnings.append(f"The images are about {side} px; an input of {input_size} px enlarges them "
                        f"{input_size / side:.1f}× and costs latency without adding detail.")
    return warnings


def dataset_summary(stats: dict) -> dict:
    stats = stats if isinstance(stats, dict) else {}
    counts = class_split_counts(stats)
    boxes = stats.get("boxes_per_class")
    return {
        "chart": bar_chart(counts),
        "splits": split_counts(stats),
        "sizes": image_sizes(stats),
        "boxes": {str(k): v for k, v in boxes.items()} if isinstance(boxes, dict) else {},
        "modes": image_modes(stats),
        "split_origin": split_origin(stats),
        "findings": findings(stats),
        "other": other_stats(stats),
    }
