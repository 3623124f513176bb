"""The one entry point: an uploaded zip in, a validated and normalised dataset folder out, or nothing at all.

Order matters: header checks and layout recognition run on names only, before anything is written; then
members are extracted into a temporary folder beside dest_dir, validated, arranged into the normalised tree,
and that tree is renamed to dest_dir in one step. Any failure removes the temporary folder.
"""

import os
import re
import shutil
import tempfile
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import yaml

from .archive import extract, list_members, megabytes, open_archive
from .errors import DatasetError, Limits
from .images import ImageStats, check_image
from .layout import Layout, Sample, classification_layout, detection_layout, strip_wrapper
from .report import DatasetReport
from .split import smallest_group_with_val, split_groups
from .yolo import read_class_names, read_label_file

TASKS = {"classification": classification_layout, "detection": detection_layout}
SPLITS = ("train", "val")
PROGRESS_EVERY = 250  # images between "Checked n/N images" lines


def dataset_import(
    archive_path: Path,
    dest_dir: Path,
    task: str,
    limits: Limits,
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    report: Callable[[str], None] | None = None,
) -> DatasetReport:
    """Validate the uploaded zip and write the normalised dataset to dest_dir.

    dest_dir must not exist yet; its parent must (the temporary work folder is made there, on the same
    filesystem, so the finished tree can be renamed into place).

    Raises DatasetError (user-facing message) for any problem with the upload; dest_dir is then absent and
    nothing else is left behind. ValueError / FileExistsError signal a caller's mistake, not the user's.
    """
    say = report or (lambda line: None)
    archive_path, dest_dir = Path(archive_path), Path(dest_dir)
    _check_arguments(task, val_fraction, dest_dir)
    with open_archive(archive_path, limits) as zf:
        layout = TASKS[task](strip_wrapper(list_members(zf, limits)))
        say(f"Found {len(layout.samples)} images ({task}, {'split' if layout.has_split else 'no split'}).")
        work = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.importing-", dir=dest_dir.parent))
        try:
            result = _Import(zf, layout, task, limits, say).run(work, seed=seed, val_fraction=val_fraction)
            os.rename(work / "out", dest_dir)  # same filesystem: the tree appears whole or not at all
        finally:
            shutil.rmtree(work, ignore_errors=True)
    say(f"Imported {result.num_images} images in {len(result.class_names)} classes ({megabytes(result.size_bytes)}).")
    return result


def _check_arguments(task: str, val_fraction: float, dest_dir: Path) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, not {task!r}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), not {val_fraction}")
    if dest_dir.exists():
        raise FileExistsError(dest_dir)
    # Not created here: on failure a made-up parent would be left behind.
    if not dest_dir.parent.is_dir():
        raise FileNotFoundError(f"the parent of dest_dir must exist: {dest_dir.parent}")


class _Import:
    """One import's steps after layout recognition, sharing the open archive and the layout."""

    def __init__(self, zf: zipfile.ZipFile, layout: Layout, task: str, limits: Limits, say: Callable) -> None:
        self.zf, self.layout, self.task, self.limits, self.say = zf, layout, task, limits, say
        self.class_names = layout.class_names

    def run(self, work: Path, *, seed: int, val_fraction: float) -> DatasetReport:
        raw = work / "raw"
        raw.mkdir()
        members = self.layout.members_to_extract()
        self.say(f"Extracted {len(members)} files ({megabytes(extract(self.zf, members, raw, self.limits))}).")
        if self.task == "detection":
            self._read_labels()
        stats = self._check_images()
        splits, generated = self._split(seed, val_fraction)
        out = work / "out"
        write = _write_classification if self.task == "classification" else _write_detection
        size = write(out, splits, self.class_names)
        return self._report(splits, generated, stats, size)

    def _read_labels(self) -> None:
        yaml_member = self.layout.data_yaml
        self.class_names = read_class_names(yaml_member.stored.read_bytes(), yaml_member.name)
        for sample in self.layout.samples:
            if sample.label:
                data = sample.label.stored.read_bytes()
                sample.box_classes = read_label_file(data, sample.label.name, len(self.class_names))

    def _check_images(self) -> ImageStats:
        stats = ImageStats()
        total = len(self.layout.samples)
        for done, sample in enumerate(self.layout.samples, start=1):
            stats.add(check_image(sample.image.stored, sample.image.name, self.limits.max_image_pixels))
            if done % PROGRESS_EVERY == 0 or done == total:
                self.say(f"Checked {done}/{total} images")
        return stats

    def _split(self, seed: int, val_fraction: float) -> tuple[dict[str, list[Sample]], bool]:
        samples = sorted(self.layout.samples, key=lambda s: s.image.name)
        if any(s.split == "val" for s in samples):
            return {split: [s for s in samples if s.split == split] for split in SPLITS}, False
        train, val = split_groups(self._strata(samples), seed=seed, val_fraction=val_fraction)
        if not val and val_fraction > 0:
            # Training measures accuracy on val after every epoch; without one image there it could only fail later.
            raise DatasetError(
                f"The dataset is too small to set aside a validation image: {len(samples)} image(s), and every "
                f"class keeps at least one for training. Add images "
                f"({smallest_group_with_val(val_fraction)} or more of some class) or a val/ folder.")
        self.say(f"Made a split (seed {seed}): {len(train)} train, {len(val)} val.")
        return {"train": train, "val": val}, True

    def _strata(self, samples: list[Sample]) -> dict:
        if self.task == "classification":
            key = lambda s: s.class_name  # noqa: E731
        else:
            # An image is filed under its rarest class, so a rare class lands in both splits; -1 = background.
            totals = Counter(c for s in samples for c in s.box_classes)
            key = lambda s: min(s.box_classes, key=lambda c: (totals[c], c), default=-1)  # noqa: E731
        groups = defaultdict(list)
        for sample in samples:
            groups[key(sample)].append(sample)
        return groups

    def _report(self, splits: dict, generated: bool, stats: ImageStats, size: int) -> DatasetReport:
        counts = {name: dict.fromkeys(SPLITS, 0) for name in self.class_names}
        boxes, background = Counter(), dict.fromkeys(SPLITS, 0)
        for split, samples in splits.items():
            for sample in samples:
                if self.task == "classification":
                    counts[sample.class_name][split] += 1
                    continue
                boxes.update(self.class_names[c] for c in sample.box_classes)
                background[split] += not sample.box_classes
                for c in set(sample.box_classes):
                    counts[self.class_names[c]][split] += 1
        detection = self.task == "detection"
        return DatasetReport(
            task=self.task,
            class_names=list(self.class_names),
            num_images=sum(len(s) for s in splits.values()),
            size_bytes=size,
            split_generated=generated,
            split_counts={split: len(samples) for split, samples in splits.items()},
            class_counts=counts,
            **stats.as_fields(),
            boxes_per_class={name: boxes[name] for name in self.class_names} if detection else None,
            images_without_boxes=background if detection else None,
            ignored_files=list(self.layout.ignored),
        )


# --- the normalised tree ---


class _UniqueNames:
    """Sanitised file stems, unique per folder ignoring case, so the tree also survives a macOS/Windows copy."""

    def __init__(self) -> None:
        self.taken: dict[Path, set[str]] = defaultdict(set)

    def claim(self, folder: Path, filename: str) -> str:
        stem = re.sub(r"[^\w.-]+", "_", filename.rsplit(".", 1)[0]).strip("._-")
        # \w keeps Korean and other letters; cap the UTF-8 length so a suffix still fits in 255 bytes.
        stem = stem.encode()[:200].decode(errors="ignore") or "image"
        candidate, n = stem, 1
        while candidate.lower() in self.taken[folder]:
            candidate, n = f"{stem}-{n}", n + 1
        self.taken[folder].add(candidate.lower())
        return candidate


def _move(member, target: Path) -> int:
    os.replace(member.stored, target)
    return target.stat().st_size


def _write_classification(out: Path, splits: dict[str, list[Sample]], class_names: list[str]) -> int:
    # Every class folder exists in every split, even empty, so folder-based loaders agree on class indices.
    for split in SPLITS:
        for name in class_names:
            (out / split / name).mkdir(parents=True)
    names, size = _UniqueNames(), 0
    for split, samples in splits.items():
        for sample in samples:
            folder = out / split / sample.class_name
            stem = names.claim(folder, sample.image.parts[-1])
            size += _move(sample.image, folder / f"{stem}{sample.image.suffix}")
    return size


def _write_detection(out: Path, splits: dict[str, list[Sample]], class_names: list[str]) -> int:
    for kind in ("images", "labels"):
        for split in SPLITS:
            (out / kind / split).mkdir(parents=True)
    names, size = _UniqueNames(), 0
    for split, samples in splits.items():
        for sample in samples:
            # One stem for the pair: YOLO loaders find a label by the image's name.
            stem = names.claim(out / "images" / split, sample.image.parts[-1])
            size += _move(sample.image, out / "images" / split / f"{stem}{sample.image.suffix}")
            if sample.label:
                size += _move(sample.label, out / "labels" / split / f"{stem}.txt")
    data_yaml = {"path": ".", "train": "images/train", "val": "images/val", "names": class_names}
    text = yaml.safe_dump(data_yaml, sort_keys=False, allow_unicode=True)
    (out / "data.yaml").write_text(text, encoding="utf-8")
    return size + len(text.encode())
