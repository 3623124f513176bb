"""Uploads that import: the normalised tree on disk and the report's numbers."""

import json
import unicodedata

import yaml

from projects.datasets import Limits, dataset_import

from .factories import DETECTION_LABELS, classification_entries, detection_entries, png


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_classification_without_split_gets_a_stratified_split(make_zip, dest):
    archive = make_zip(classification_entries({"cat": 10, "dog": 5, "owl": 1}))
    report = dataset_import(archive, dest, "classification", Limits(), seed=3)
    assert report.split_generated
    assert report.class_names == ["cat", "dog", "owl"]
    assert report.class_counts == {
        "cat": {"train": 8, "val": 2},
        "dog": {"train": 4, "val": 1},
        "owl": {"train": 1, "val": 0},
    }
    assert report.split_counts == {"train": 13, "val": 3}
    assert len(list((dest / "val" / "cat").iterdir())) == 2
    assert (dest / "val" / "owl").is_dir()  # every class folder in every split keeps class indices aligned


def test_the_same_seed_gives_the_same_split(make_zip, storage):
    archive = make_zip(classification_entries({"cat": 20, "dog": 20}))
    runs = [dataset_import(archive, storage / name, "classification", Limits(), seed=7) for name in ("a", "b")]
    assert runs[0] == runs[1]
    assert files_under(storage / "a") == files_under(storage / "b")
    dataset_import(archive, storage / "c", "classification", Limits(), seed=8)
    assert files_under(storage / "c") != files_under(storage / "a")


def test_classification_with_split_keeps_it_and_ignores_junk(make_zip, dest):
    entries = {
        **classification_entries({"cat": 3, "dog": 2}, prefix="train/"),
        **classification_entries({"cat": 1, "dog": 1}, prefix="valid/"),
        "__MACOSX/train/cat/._cat_0.png": b"resource fork",
        "train/.DS_Store": b"finder",
        "train/cat/.ipynb_checkpoints/cat_0-checkpoint.png": png(),
        "README.md": b"# my cats",
    }
    report = dataset_import(make_zip(entries), dest, "classification", Limits())
    assert not report.split_generated
    assert report.split_counts == {"train": 5, "val": 2}
    assert report.ignored_files == ["README.md"]
    assert files_under(dest / "val") == ["cat/cat_0.png", "dog/dog_0.png"]


def test_test_folder_stands_in_for_a_missing_val(make_zip, dest):
    entries = {
        **classification_entries(prefix="train/"),
        **classification_entries({"cat": 1, "dog": 1}, prefix="test/"),
    }
    report = dataset_import(make_zip(entries), dest, "classification", Limits())
    assert report.split_counts == {"train": 9, "val": 2}


def test_a_wrapper_folder_is_stripped(make_zip, dest):
    report = dataset_import(make_zip(classification_entries(prefix="my pets/")), dest, "classification", Limits())
    assert report.class_names == ["cat", "dog"]
    assert sorted(p.name for p in dest.iterdir()) == ["train", "val"]


def test_report_has_image_stats_progress_and_json(make_zip, dest):
    entries = {
        **classification_entries(),
        "cat/gray.png": png(size=(30, 20), mode="L"),
        "dog/alpha.png": png(size=(10, 40), mode="RGBA", color=(1, 2, 3, 4)),
        "dog/odd name (1).JPG": png(fmt="JPEG"),
    }
    lines = []
    report = dataset_import(make_zip(entries), dest, "classification", Limits(), report=lines.append)
    assert report.image_width == {"min": 10, "max": 30, "mean": 16.7}
    assert report.image_height["max"] == 40
    assert report.common_sizes[0] == {"width": 16, "height": 12, "count": 10}
    assert report.modes == {"RGB": 10, "L": 1, "RGBA": 1}
    assert "Checked 12/12 images" in lines
    assert json.loads(json.dumps(report.as_dict()))["num_images"] == 12
    assert report.size_bytes == sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    assert "odd_name_1.jpg" in [p.name for p in dest.rglob("*.jpg")]  # sanitised, extension lower-cased


def test_detection_with_split_counts_boxes_and_backgrounds(make_zip, dest):
    report = dataset_import(make_zip(detection_entries()), dest, "detection", Limits())
    assert report.class_names == ["cat", "dog", "bird"]
    assert not report.split_generated
    assert report.split_counts == {"train": 4, "val": 2}
    assert report.boxes_per_class == {"cat": 3, "dog": 1, "bird": 1}
    assert report.images_without_boxes == {"train": 2, "val": 0}
    assert report.class_counts["cat"] == {"train": 2, "val": 1}
    assert files_under(dest / "labels") == [
        "train/img0.txt",
        "train/img1.txt",
        "train/img3.txt",
        "val/img4.txt",
        "val/img5.txt",
    ]
    assert len(files_under(dest / "images")) == 6
    data_yaml = yaml.safe_load((dest / "data.yaml").read_text())
    assert data_yaml == {"path": ".", "train": "images/train", "val": "images/val", "names": ["cat", "dog", "bird"]}


def test_detection_without_split_gets_one_and_keeps_pairs(make_zip, dest):
    labels = {f"img{i}": f"{i % 3} 0.5 0.5 0.2 0.2\n" for i in range(12)}
    report = dataset_import(make_zip(detection_entries(labels, split=False)), dest, "detection", Limits())
    assert report.split_generated
    assert report.split_counts == {"train": 9, "val": 3}
    assert all(n >= 1 for n in (report.class_counts[c]["val"] for c in report.class_names))  # stratified
    for split in ("train", "val"):
        images = {p.stem for p in (dest / "images" / split).iterdir()}
        assert images == {p.stem for p in (dest / "labels" / split).iterdir()}


def test_roboflow_layout_is_accepted(make_zip, dest):
    entries = {"data.yaml": b"nc: 3\nnames: [cat, dog, bird]\n", "README.roboflow.txt": b"exported"}
    for key, text in DETECTION_LABELS.items():
        split, name = key.split("/")
        split = "valid" if split == "val" else split
        entries[f"{split}/images/{name}.jpg"] = png(fmt="JPEG")
        if text is not None:
            entries[f"{split}/labels/{name}.txt"] = text.encode()
    report = dataset_import(make_zip(entries), dest, "detection", Limits())
    assert report.split_counts == {"train": 4, "val": 2}
    assert report.ignored_files == ["README.roboflow.txt"]


def test_macos_decomposed_korean_names_are_normalised(make_zip, dest):
    cat, dog = (unicodedata.normalize("NFD", name) for name in ("고양이", "강아지"))
    entries = {f"{cat}/사진 {i}.png": png() for i in range(2)} | {f"{dog}/{i}.png": png() for i in range(2)}
    report = dataset_import(make_zip(entries), dest, "classification", Limits(), val_fraction=0)
    assert report.class_names == sorted(["고양이", "강아지"])
    assert files_under(dest / "train" / "고양이") == ["사진_0.png", "사진_1.png"]
