"""Every bad upload fails with a message naming the problem, and leaves nothing on disk (see import_fails)."""

import stat
import struct
import zipfile

import pytest

from projects.datasets import Limits

from .factories import DATA_YAML, classification_entries, detection_entries, png


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../evil.png", "'..'"),
        ("cat/../../evil.png", "'..'"),
        ("/tmp/evil.png", "absolute"),
        ("C:/evil.png", "absolute"),
        ("cat\\..\\..\\evil.png", "backslash"),
    ],
)
def test_path_tricks_are_rejected(make_zip, import_fails, name, expected):
    archive = make_zip({**classification_entries(), name: png()})
    message = import_fails(archive)
    assert expected in message and name in message


def test_symlink_member_is_rejected(make_zip, import_fails):
    link = zipfile.ZipInfo("cat/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = make_zip([*classification_entries().items(), (link, b"/etc/passwd")])
    assert "cat/link.png: symbolic links are not allowed" in import_fails(archive)


def test_archive_over_the_size_limit_is_rejected(make_zip, import_fails):
    archive = make_zip(classification_entries())
    assert "the limit is" in import_fails(archive, limits=Limits(max_archive_bytes=1000))


def test_too_many_files_are_rejected(make_zip, import_fails):
    archive = make_zip(classification_entries())
    assert "has 9 entries; the limit is 5" in import_fails(archive, limits=Limits(max_files=5))


def test_declared_unpacked_size_over_the_limit_is_rejected(make_zip, import_fails):
    archive = make_zip(classification_entries())
    assert "unpacks to" in import_fails(archive, limits=Limits(max_unpacked_bytes=300))


def test_zip_bomb_member_is_rejected(make_zip, import_fails):
    archive = make_zip({**classification_entries(), "cat/bomb.bmp": bytes(8 * 1024**2)})
    assert "cat/bomb.bmp: compression ratio" in import_fails(archive)


def test_many_small_highly_compressed_members_are_rejected_as_a_whole(make_zip, import_fails):
    # Each member stays under the per-member floor; together they are a bomb.
    bombs = {f"cat/bomb{i}.bmp": bytes(900 * 1024) for i in range(3)}
    archive = make_zip({**classification_entries(), **bombs})
    assert "overall compression ratio" in import_fails(archive)


def test_member_larger_than_its_header_says_is_rejected(make_zip, import_fails):
    archive = make_zip(classification_entries())
    data = bytearray(archive.read_bytes())
    last_entry = data.rfind(b"PK\x01\x02")  # central directory entry of dog/dog_3.png
    struct.pack_into("<I", data, last_entry + 24, 10)  # declare 10 bytes uncompressed
    # zipfile stops reading at the declared size and the CRC then fails; our byte count is the second guard.
    archive.write_bytes(bytes(data))
    assert "dog/dog_3.png: cannot be extracted" in import_fails(archive)


def test_not_a_zip_is_rejected(tmp_path, import_fails):
    archive = tmp_path / "upload.zip"
    archive.write_text("just some text, not a zip")
    assert "not a zip archive" in import_fails(archive)


def test_non_image_file_in_a_class_folder_is_rejected(make_zip, import_fails):
    archive = make_zip({**classification_entries(), "cat/notes.txt": b"hello"})
    assert "cat/notes.txt: not an image" in import_fails(archive)


def test_truncated_image_is_rejected(make_zip, import_fails):
    data = png(size=(64, 64))
    archive = make_zip({**classification_entries(), "dog/broken.png": data[: len(data) // 2]})
    assert "dog/broken.png: the image is corrupt or truncated" in import_fails(archive)


def test_text_with_an_image_extension_is_rejected(make_zip, import_fails):
    archive = make_zip({**classification_entries(), "dog/fake.jpg": b"<html>not a photo</html>"})
    assert "dog/fake.jpg: not an image in a supported format" in import_fails(archive)


def test_image_over_the_pixel_limit_is_rejected(make_zip, import_fails):
    archive = make_zip(classification_entries())
    assert "cat/cat_0.png: 16x12 exceeds the limit of 100 pixels" in import_fails(
        archive, limits=Limits(max_image_pixels=100)
    )


def test_empty_class_folder_is_rejected(make_zip, import_fails):
    archive = make_zip({**classification_entries(), "bird/": None})
    assert "bird/: the class folder is empty" in import_fails(archive)


def test_a_single_class_is_rejected(make_zip, import_fails):
    archive = make_zip(classification_entries({"cat": 3}, prefix="train/"))
    assert "at least 2 class folders; found 1" in import_fails(archive)


def test_image_outside_class_folders_is_rejected(make_zip, import_fails):
    archive = make_zip({**classification_entries(), "stray.png": png()})
    assert "stray.png: images must be inside a folder named after their class" in import_fails(archive)


def test_yolo_upload_for_classification_suggests_detection(make_zip, import_fails):
    archive = make_zip(detection_entries())
    assert "choose detection" in import_fails(archive)


# A walk uploaded class folders as detection and read "photos/cat/cat_00.jpg: unexpected location", which did not
# say that the task was the mistake; the opposite slip already named it.
@pytest.mark.parametrize("prefix", ["", "train/"])
def test_class_folders_for_detection_suggest_classification(make_zip, import_fails, prefix):
    archive = make_zip(classification_entries(prefix=prefix))
    assert "choose classification" in import_fails(archive, task="detection")


def test_malformed_label_line_is_rejected(make_zip, import_fails):
    labels = {"train/img0": "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n", "val/img1": ""}
    archive = make_zip(detection_entries(labels))
    message = import_fails(archive, task="detection")
    assert "labels/train/img0.txt line 2: expected 5 values 'class cx cy w h', found 4" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("0 0.5 0.5 0.2 0.2 0.1 0.1", "segmentation polygons are not supported"),
        ("0 0.5 abc 0.2 0.2", "'abc' is not a number"),
        ("0 1.5 0.5 0.2 0.2", "normalised to [0, 1]"),
        ("0 0.5 0.5 0 0.2", "width and height must be positive"),
        ("1.5 0.5 0.5 0.2 0.2", "not a whole number"),
    ],
)
def test_bad_label_values_are_rejected(make_zip, import_fails, line, expected):
    archive = make_zip(detection_entries({"train/img0": line, "val/img1": ""}))
    message = import_fails(archive, task="detection")
    assert "labels/train/img0.txt line 1" in message and expected in message


def test_class_id_beyond_data_yaml_names_is_rejected(make_zip, import_fails):
    labels = {"train/img3": "0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n", "val/img1": ""}
    archive = make_zip(detection_entries(labels))
    message = import_fails(archive, task="detection")
    assert message == "labels/train/img3.txt line 2: class id 7 is out of range (data.yaml has 3 classes)."


def test_data_yaml_nc_disagreeing_with_names_is_rejected(make_zip, import_fails):
    archive = make_zip(detection_entries(data_yaml=b"nc: 4\nnames: [cat, dog, bird]\n"))
    assert "data.yaml: nc is 4 but names lists 3 classes" in import_fails(archive, task="detection")


def test_label_file_without_an_image_is_rejected(make_zip, import_fails):
    entries = {**detection_entries(), "labels/train/ghost.txt": b"0 0.5 0.5 0.1 0.1\n"}
    archive = make_zip(entries)
    assert "labels/train/ghost.txt: no image" in import_fails(archive, task="detection")


def test_detection_without_data_yaml_is_rejected(make_zip, import_fails):
    entries = detection_entries()
    del entries["data.yaml"]
    assert "data.yaml is missing" in import_fails(make_zip(entries), task="detection")


def test_unreadable_data_yaml_is_rejected(make_zip, import_fails):
    archive = make_zip(detection_entries(data_yaml=b"names: [cat, dog\n"))
    assert "data.yaml: not valid YAML" in import_fails(archive, task="detection")


def test_the_default_data_yaml_fixture_is_valid(make_zip, dest):
    # Guards the tests above: they fail for the reason they name, not because the fixture is broken.
    from projects.datasets import dataset_import

    assert dataset_import(make_zip(detection_entries(data_yaml=DATA_YAML)), dest, "detection", Limits()).num_images


def test_text_with_an_image_extension_is_rejected_after_ultralytics_is_imported(make_zip, import_fails):
    # ultralytics patches PIL.Image.open on import; the worker that validates uploads may also train detectors.
    import ultralytics.utils.patches  # noqa: F401

    test_text_with_an_image_extension_is_rejected(make_zip, import_fails)
