import numpy as np
import pytest
import torch

from tango_common.images import preprocess_image
from training.engine.data import list_images, make_datasets


def test_validation_images_get_exactly_the_bundles_preprocessing(dataset):
    root, class_names = dataset
    _, val = make_datasets(root, class_names, input_size=24, hflip=False)
    path, label = val.samples[0]
    image, target = val[0]
    assert target == label
    np.testing.assert_array_equal(image.numpy(), preprocess_image(path, 24))


def test_class_order_is_the_order_given_not_the_folder_order(dataset):
    root, class_names = dataset
    reordered = list(reversed(class_names))
    samples = list_images(root / "train", reordered)
    assert samples[0][0].parent.name == reordered[0] and samples[0][1] == 0


def test_training_images_are_augmented_to_the_input_size(dataset):
    root, class_names = dataset
    train, _ = make_datasets(root, class_names, input_size=20, hflip=True)
    torch.manual_seed(0)
    first, second = train[0][0], train[0][0]
    assert first.shape == (3, 20, 20) and not torch.equal(first, second)


def test_a_split_without_images_is_refused(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images under train/"):
        make_datasets(tmp_path, ["a"], input_size=16, hflip=False)
