"""The two types every caller of the dataset core needs: the limits it enforces and the error it raises."""

from dataclasses import dataclass


class DatasetError(Exception):
    """A problem with the upload, worded for the user who made it (it names the offending member and line)."""


@dataclass(frozen=True)
class Limits:
    """Upper bounds on an upload. The defaults suit a single-host portal; the service may pass tighter ones."""

    max_archive_bytes: int = 2 * 1024**3
    # Counts every entry of the zip, folders and junk included: a million empty entries is an attack too.
    max_files: int = 200_000
    max_unpacked_bytes: int = 8 * 1024**3
    # Photos barely compress; deflate tops out near 1000:1, which is what bombs use. Flat BMP/TIFF masks can
    # legitimately reach ~100:1, hence the headroom.
    max_ratio: float = 200.0
    # Checked from the header before any pixel is decoded (Pillow's own guard is ~89 MP).
    max_image_pixels: int = 40_000_000
