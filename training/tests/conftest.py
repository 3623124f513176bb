"""Fixtures for the Django-free training core: a tiny synthetic image dataset and a quiet report callback."""

import pytest

from training.engine.synthetic import make_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """(data_dir, class_names): 3 classes of 16x16 PNGs, 20 train and 8 val images each."""
    root = tmp_path_factory.mktemp("data")
    return root, make_dataset(root)


class Recorder:
    """A report() callback that keeps what it was told."""

    def __init__(self):
        self.lines, self.progress = [], []

    def __call__(self, line, progress=None):
        if line is not None:
            self.lines.append(line)
        if progress is not None:
            self.progress.append(progress)


@pytest.fixture
def report():
    return Recorder()
