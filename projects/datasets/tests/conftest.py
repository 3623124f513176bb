"""Fixtures: uploads written to tmp_path, and an import that must fail without leaving anything behind."""

from pathlib import Path

import pytest

from projects.datasets import DatasetError, Limits, dataset_import

from .factories import tree, write_zip


@pytest.fixture
def make_zip(tmp_path):
    def make(entries, name="upload.zip") -> Path:
        return write_zip(tmp_path / name, entries)

    return make


@pytest.fixture
def storage(tmp_path) -> Path:
    """Where the service keeps datasets; dest_dir goes inside it."""
    folder = tmp_path / "datasets"
    folder.mkdir()
    return folder


@pytest.fixture
def dest(storage) -> Path:
    return storage / "ds1"


@pytest.fixture
def import_fails(tmp_path, dest):
    """Run an import that must fail; check it left nothing anywhere, and return the error message."""

    def run(archive: Path, task="classification", limits: Limits | None = None) -> str:
        before = tree(tmp_path.parent)
        with pytest.raises(DatasetError) as failure:
            dataset_import(archive, dest, task, limits or Limits())
        assert not dest.exists()
        assert tree(tmp_path.parent) == before
        return str(failure.value)

    return run
