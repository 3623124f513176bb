"""Recognising an upload's layout from member paths alone, before anything is extracted.

The result is a list of samples (image, split as uploaded, class or label file); files the layout does not use
are either rejected with a message or listed as ignored, never silently dropped.
"""

from dataclasses import dataclass, field, replace

from .archive import Member
from .errors import DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Folder names users give their splits, mapped to ours. "test" only stands in for a missing "val".
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
YOLO_FOLDERS = ("images", "labels")
DATA_YAML = ("data.yaml", "data.yml")
# A top folder with one of these names is part of the layout, never a wrapper to strip.
_RESERVED = set(SPLIT_FOLDERS) | set(YOLO_FOLDERS)


@dataclass
class Sample:
    image: Member
    split: str | None  # "train" or "val" as uploaded; None when the upload has no split
    class_name: str | None = None  # classification
    label: Member | None = None  # detection; None means a background image
    box_classes: list[int] = field(default_factory=list)  # detection, filled once labels are read


@dataclass
class Layout:
    samples: list[Sample]
    class_names: list[str]  # classification; detection reads them from data.yaml
    data_yaml: Member | None = None
    ignored: list[str] = field(default_factory=list)

    @property
    def has_split(self) -> bool:
        return any(s.split for s in self.samples)

    def members_to_extract(self) -> list[Member]:
        labels = [s.label for s in self.samples if s.label]
        return [s.image for s in self.samples] + labels + ([self.data_yaml] if self.data_yaml else [])


def strip_wrapper(members: list[Member]) -> list[Member]:
    """Drop one top folder that holds everything: what 'Compress folder' produces."""
    files = [m for m in members if not m.is_dir]
    if not files:
        raise DatasetError("The archive contains no files.")
    tops = {m.parts[0] for m in members}
    top = next(iter(tops))
    if len(tops) > 1 or top.lower() in _RESERVED or any(len(m.parts) == 1 for m in files):
        return members
    return [replace(m, parts=m.parts[1:]) for m in members if len(m.parts) > 1]


def is_image(member: Member) -> bool:
    return member.suffix in IMAGE_EXTENSIONS


def _not_an_image(member: Member) -> DatasetError:
    return DatasetError(f"{member.name}: not an image (allowed: {', '.join(IMAGE_EXTENSIONS)}).")


def _folders(members: list[Member]) -> set[tuple[str, ...]]:
    """Every folder, whether the zip has an entry for it or only implies it by a file inside."""
    folders = set()
    for m in members:
        depth = len(m.parts) if m.is_dir else len(m.parts) - 1
        folders.update(m.parts[:i] for i in range(1, depth + 1))
    return folders


def split_folders(names: set[str]) -> dict[str, str | None]:
    """Map uploaded split folder names to "train"/"val", or None for a test folder that is ignored."""
    found = {name: SPLIT_FOLDERS[name.lower()] for name in names if name.lower() in SPLIT_FOLDERS}
    for split in ("train", "val", "test"):
        same = sorted(n for n, s in found.items() if s == split)
        if len(same) > 1:
            raise DatasetError(f"Folders {' and '.join(n + '/' for n in same)} are the same split; keep one.")
    has_val = "val" in found.values()
    mapping = {name: (None if has_val else "val") if s == "test" else s for name, s in found.items()}
    if found and "train" not in mapping.values():
        raise DatasetError(f"Found {', '.join(sorted(n + '/' for n in found))} but no train/ folder.")
    return mapping


# --- classification: one folder per class, optionally under train/ and val/ ---


def classification_layout(members: list[Member]) -> Layout:
    top = {f[0] for f in _folders(members) if len(f) == 1}
    if set(YOLO_FOLDERS) <= top:
        raise DatasetError("This looks like a YOLO detection upload (images/ and labels/); choose detection.")
    splits = split_folders(top)
    if splits and top - set(splits):
        others = ", ".join(sorted(n + "/" for n in top - set(splits)))
        raise DatasetError(f"Put class folders inside the split folders: found {others} next to them.")
    depth = 2 if splits else 1  # how deep the class folders sit
    layout = Layout(samples=[], class_names=[])
    for m in (m for m in members if not m.is_dir):
        _place_classification_file(m, splits, depth, layout)
    class_folders = {f for f in _folders(members) if len(f) == depth and (not splits or splits[f[0]])}
    _check_classes(layout, class_folders, depth)
    return layout


def _place_classification_file(m: Member, splits: dict, depth: int, layout: Layout) -> None:
    if len(m.parts) <= depth:
        if is_image(m):
            raise DatasetError(f"{m.name}: images must be inside a folder named after their class.")
        layout.ignored.append(m.name)  # a README or a CSV next to the folders
    elif splits and splits[m.parts[0]] is None:
        layout.ignored.append(m.name)  # test/ when val/ exists
    elif len(m.parts) > depth + 1:
        raise DatasetError(f"{m.name}: class folder '{m.parts[depth - 1]}' must hold images, not sub-folders.")
    elif not is_image(m):
        raise _not_an_image(m)
    else:
        split = splits[m.parts[0]] if splits else None
        layout.samples.append(Sample(image=m, split=split, class_name=m.parts[depth - 1]))


def _check_classes(layout: Layout, class_folders: set[tuple[str, ...]], depth: int) -> None:
    used = {s.image.parts[:depth] for s in layout.samples}
    for folder in sorted(class_folders - used):
        raise DatasetError(f"{'/'.join(folder)}/: the class folder is empty.")
    layout.class_names = sorted({s.class_name for s in layout.samples})
    if len(layout.class_names) < 2:
        raise DatasetError(f"Classification needs at least 2 class folders; found {len(layout.class_names)}.")
    trained = {s.class_name for s in layout.samples if s.split in (None, "train")}
    for name in layout.class_names:
        if name not in trained:
            raise DatasetError(f"Class '{name}' has images in the validation split but none in train/.")


# --- detection: YOLO images/ + labels/ (+ optional split folders either side) and data.yaml ---


def detection_layout(members: list[Member]) -> Layout:
    if _looks_like_class_folders(members):
        raise DatasetError("This looks like a classification upload (one folder per class, no images/, labels/ or "
                           "data.yaml); choose classification.")
    layout = Layout(samples=[], class_names=[])
    images: dict[tuple, Member] = {}
    labels: dict[tuple, Member] = {}
    for m in (m for m in members if not m.is_dir):
        _place_detection_file(m, images, labels, layout)
    if layout.data_yaml is None:
        raise DatasetError("data.yaml is missing: a YOLO detection upload needs it to name the classes.")
    if not images:
        raise DatasetError("No images found: put them in images/ (or images/train/ and images/val/).")
    splits = _detection_splits(images, labels)
    for key, label in labels.items():
        if key not in images:
            raise DatasetError(f"{label.name}: no image in images/ has this label file's name.")
    for key, image in sorted(images.items(), key=lambda kv: kv[1].name):
        split = splits[key[0]] if key[0] is not None else None
        if key[0] is not None and split is None:
            layout.ignored.extend(m.name for m in (image, labels.get(key)) if m)
            continue
        layout.samples.append(Sample(image=image, split=split, label=labels.get(key)))
    if not layout.samples:
        raise DatasetError("No images found in the train or validation split.")
    return layout


def _looks_like_class_folders(members: list[Member]) -> bool:
    """No YOLO folder (at the top or under a split folder) and no data.yaml, but images in folders: the other task."""
    yolo = any(f[-1].lower() in YOLO_FOLDERS for f in _folders(members) if len(f) <= 2)
    data_yaml = any(len(m.parts) == 1 and m.parts[0].lower() in DATA_YAML for m in members)
    return not yolo and not data_yaml and any(len(m.parts) > 1 and is_image(m) for m in members if not m.is_dir)


def _place_detection_file(m: Member, images: dict, labels: dict, layout: Layout) -> None:
    where = _yolo_location(m)
    if where == "data.yaml":
        layout.data_yaml = m
    elif where is None:
        layout.ignored.append(m.name)
    else:
        kind, split, rest = where
        key = (split, *rest[:-1], rest[-1].rsplit(".", 1)[0])  # the file's path without extension
        if kind == "images":
            if not is_image(m):
                raise _not_an_image(m)
            if key in images:
                raise DatasetError(f"{images[key].name} and {m.name} would share one label file; rename one.")
            images[key] = m
        elif m.suffix == ".cache" or rest == ("classes.txt",):
            layout.ignored.append(m.name)  # ultralytics' label cache, labelImg's class list
        elif m.suffix != ".txt":
            raise DatasetError(f"{m.name}: label files must be .txt files in YOLO format.")
        else:
            labels[key] = m


def _yolo_location(m: Member):
    """("images"|"labels", split folder or None, path below it), "data.yaml", or None for an ignored file."""
    parts, low = m.parts, [p.lower() for p in m.parts]
    if len(parts) == 1:
        return "data.yaml" if low[0] in DATA_YAML else None
    if low[0] in YOLO_FOLDERS:
        if len(parts) > 2 and low[1] in SPLIT_FOLDERS:
            return low[0], low[1], parts[2:]
        return low[0], None, parts[1:]
    if low[0] in SPLIT_FOLDERS and len(parts) > 2 and low[1] in YOLO_FOLDERS:  # Roboflow: train/images/...
        return low[1], low[0], parts[2:]
    raise DatasetError(f"{m.name}: unexpected location; a detection upload holds images/, labels/ and data.yaml.")


def _detection_splits(images: dict, labels: dict) -> dict[str, str | None]:
    folders = {key[0] for key in [*images, *labels]}
    if None in folders and len(folders) > 1:
        loose = next(m for k, m in [*images.items(), *labels.items()] if k[0] is None)
        raise DatasetError(f"{loose.name}: is outside the split folders; put every file in train/ or val/.")
    return split_folders(folders - {None})
