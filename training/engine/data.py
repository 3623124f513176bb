"""Image-folder datasets for classification: `data_dir/<split>/<class>/<image>`.

Evaluation preprocessing is `tango_common.images.preprocess_image`, which the bundle ships, so a model scores the
same in the portal and in the exported bundle. Training augmentation runs on the PIL image first, then goes through that
same function for resizing and normalisation.
"""

from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from tango_common.images import IMAGE_SUFFIXES, IMAGENET_MEAN, IMAGENET_STD, preprocess_image


def list_images(split_dir: Path, class_names: list[str]) -> list[tuple[Path, int]]:
    """(path, class index) for every image under split_dir/<class>/, classes in the order given."""
    samples = []
    for index, name in enumerate(class_names):
        class_dir = Path(split_dir) / name
        if class_dir.is_dir():
            files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            samples.extend((path, index) for path in files)
    return samples


class EvalTransform:
    """The portal's and the bundle's preprocessing, as a tensor."""

    def __init__(self, input_size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.input_size, self.mean, self.std = input_size, mean, std

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return torch.from_numpy(preprocess_image(image, self.input_size, self.mean, self.std))


AUGMENTATIONS = ("none", "light", "standard", "strong")


class TrainTransform:
    """Augmentation that keeps a class a class, at one of four strengths:

    none      the evaluation preprocessing only;
    light     crops of most of the image (75-100%), a small rotation and shift (digits, text, scans);
    standard  crops of 35-100% of the image at varied aspect, mild colour jitter (photos, textures);
    strong    crops of 25-100%, TrivialAugment's colour and geometry operations.

    Horizontal flip is opt-in (`hflip`): it turns a 2 into something that is not a 2, and text into mirror text.
    """

    def __init__(self, input_size: int, *, hflip: bool, augmentation: str = "light", mean=IMAGENET_MEAN,
                 std=IMAGENET_STD):
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, not {augmentation!r}")
        steps = []
        if augmentation == "light":
            steps = [
                transforms.RandomResizedCrop(input_size, scale=(0.75, 1.0), ratio=(0.85, 1.18), antialias=True),
                transforms.RandomAffine(degrees=10, translate=(0.05, 0.05)),
            ]
        elif augmentation == "standard":
            steps = [
                transforms.RandomResizedCrop(input_size, scale=(0.35, 1.0), antialias=True),
                transforms.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),
            ]
        elif augmentation == "strong":
            steps = [
                transforms.RandomResizedCrop(input_size, scale=(0.25, 1.0), antialias=True),
                transforms.TrivialAugmentWide(),
            ]
        if hflip and augmentation != "none":
            steps.append(transforms.RandomHorizontalFlip())
        self.augment = transforms.Compose(steps)
        self.finish = EvalTransform(input_size, mean, std)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.finish(self.augment(image))


class ImageFolderDataset(Dataset):
    def __init__(self, samples: list[tuple[Path, int]], transform):
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        with Image.open(path) as image:
            rgb = image.convert("RGB")  # grayscale and RGBA inputs become the 3 channels every model expects
        return self.transform(rgb), label


def make_datasets(data_dir: Path, class_names: list[str], *, input_size: int, hflip: bool,
                  augmentation: str = "light"):
    """(train, val) datasets; raises ValueError when either split has no images."""
    splits = {}
    for split in ("train", "val"):
        samples = list_images(Path(data_dir) / split, class_names)
        if not samples:  # the split's name only: where the server keeps the dataset is not the user's business
            raise ValueError(f"The dataset has no images under {split}/<class>/ for classes {class_names}.")
        splits[split] = samples
    train = ImageFolderDataset(splits["train"], TrainTransform(input_size, hflip=hflip, augmentation=augmentation))
    val = ImageFolderDataset(splits["val"], EvalTransform(input_size))
    return train, val
