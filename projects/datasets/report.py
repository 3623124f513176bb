"""What an import found, stored with the Dataset row and shown on the project page."""

from dataclasses import asdict, dataclass, field


@dataclass
class DatasetReport:
    task: str  # "classification" or "detection"
    class_names: list[str]  # index = class id
    num_images: int
    size_bytes: int  # of the normalised tree on disk
    split_generated: bool  # True when the upload had no train/val split and the import made one
    split_counts: dict[str, int]  # {"train": images, "val": images}
    # class -> {"train": n, "val": n}: images of the class (detection: images with at least one box of it)
    class_counts: dict[str, dict[str, int]]
    image_width: dict[str, float]  # {"min", "max", "mean"}
    image_height: dict[str, float]
    common_sizes: list[dict[str, int]]  # up to 5 of {"width", "height", "count"}, most common first
    modes: dict[str, int]  # Pillow modes seen ("L", "RGB", "RGBA", "P"...) -> images
    not_colourful: int  # images with colour channels whose colourfulness is under images.NOT_COLOURFUL
    boxes_per_class: dict[str, int] | None = None  # detection only
    images_without_boxes: dict[str, int] | None = None  # detection only, per split: background images
    ignored_files: list[str] = field(default_factory=list)  # members the layout did not use (README, test/...)

    def as_dict(self) -> dict:
        """Plain JSON types only (str keys, lists, numbers), ready for a JSONField."""
        return asdict(self)
