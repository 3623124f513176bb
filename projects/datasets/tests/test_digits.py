from projects.datasets import Limits, dataset_import
from projects.datasets.digits import make_digits_zip, write_digits_dataset


def test_digits_writer_makes_ten_classes_of_real_scans(tmp_path):
    root = write_digits_dataset(tmp_path / "digits", upscale=1)
    assert sorted(p.name for p in root.iterdir()) == [str(d) for d in range(10)]
    assert len(list(root.rglob("*.png"))) == 1797


def test_digits_zip_imports_as_a_classification_upload(tmp_path):
    archive = make_digits_zip(tmp_path / "digits.zip")
    report = dataset_import(archive, tmp_path / "ds", "classification", Limits())
    assert report.num_images == 1797
    assert report.class_names == [str(d) for d in range(10)]
    assert report.common_sizes == [{"width": 32, "height": 32, "count": 1797}]
    assert report.modes == {"L": 1797}
