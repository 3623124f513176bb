"""What Try it says about an image it cannot take: the refusal names what went wrong, in the words the upload
forms use for the accepted types."""

import io
import struct

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from deployment.trials import check_image
from projects.datasets.images import IMAGE_TYPE_NAMES, IMAGE_TYPES


def refusal(data: bytes) -> str:
    with pytest.raises(ValidationError) as caught:
        check_image(SimpleUploadedFile("upload", data))
    return " ".join(caught.value.message_dict["image"])


def bmp_header(width: int, height: int, header_size: int = 40) -> bytes:
    """A BMP file header and info header with no pixels after it."""
    info = struct.pack("<IiiHHIIiiII", header_size, width, height, 1, 24, 0, 0, 0, 0, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def test_the_sentence_of_accepted_types_names_every_type_an_upload_may_be():
    assert IMAGE_TYPE_NAMES == "JPEG, PNG, BMP, WebP or TIFF"
    spoken = IMAGE_TYPE_NAMES.replace(" or ", ", ").upper().split(", ")
    assert spoken == list(IMAGE_TYPES)  # one name per accepted type, in the same order


def test_a_header_pillow_cannot_parse_is_reported_as_that_not_as_a_known_image():
    said = refusal(bmp_header(8, 8, header_size=0))  # "BM", then an info header of a size no BMP has
    assert "known" not in said
    assert said == f"Pillow could not open the file as a {IMAGE_TYPE_NAMES} image (Unsupported BMP header type (0))."


def test_a_truncated_image_is_named_by_its_format():
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="PNG")
    said = refusal(buffer.getvalue()[:60])
    assert said.startswith("The file is a PNG image but Pillow cannot decode it: it is corrupt or truncated (")


def test_an_image_too_large_for_pillow_to_open_is_refused_for_its_size():
    assert refusal(bmp_header(20_000, 20_000)) == "The image has more than 40 megapixels."
    assert refusal(bmp_header(8_000, 8_000)) == "The image is 8000x8000; at most 40 megapixels."


def test_not_an_image_at_all():
    assert refusal(b"just some text") == f"That is not a {IMAGE_TYPE_NAMES} image."
