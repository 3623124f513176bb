"""Safe reading of an uploaded zip.

Every check that the central directory allows runs before anything touches the disk; extraction then re-counts
the bytes, since a crafted header can lie about sizes. Members are extracted to numbered files, never to their
own paths, so a name can never steer a write: path logic stays on strings until the normalised tree is built.
"""

import re
import stat
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError, Limits

JUNK_FOLDERS = {"__MACOSX"}
JUNK_FILES = {"Thumbs.db", "desktop.ini"}  # plus anything hidden: .DS_Store, ._* (AppleDouble), .git/...
# Small members (label files, a flat thumbnail) compress far beyond any sane ratio; only large ones can be bombs.
RATIO_FLOOR_BYTES = 1024**2
_CHUNK = 1024**2
_DRIVE = re.compile(r"^[A-Za-z]:")
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError)


@dataclass
class Member:
    """One entry of the archive. `parts` is relative to the dataset root once a wrapper folder is stripped."""

    name: str  # exactly as written in the archive, for messages
    parts: tuple[str, ...]
    info: zipfile.ZipInfo
    is_dir: bool
    stored: Path | None = None  # set by extract()

    @property
    def suffix(self) -> str:
        return Path(self.parts[-1]).suffix.lower()


def megabytes(n: int) -> str:
    return f"{n / 1024**2:.1f} MB"


def open_archive(path: Path, limits: Limits) -> zipfile.ZipFile:
    size = path.stat().st_size
    if size > limits.max_archive_bytes:
        raise DatasetError(f"The archive is {megabytes(size)}; the limit is {megabytes(limits.max_archive_bytes)}.")
    try:
        return zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise DatasetError(f"The upload is not a zip archive or is damaged ({exc}).") from exc


def list_members(zf: zipfile.ZipFile, limits: Limits) -> list[Member]:
    """All entries that matter, after every header-level check; junk (Finder/Explorer litter) is dropped."""
    infos = zf.infolist()
    if len(infos) > limits.max_files:
        raise DatasetError(f"The archive has {len(infos)} entries; the limit is {limits.max_files}.")
    members: list[Member] = []
    seen: set[tuple[str, ...]] = set()
    for info in infos:
        if "\x00" in info.orig_filename:
            # zipfile cuts a name at its NUL ('a.jpg\x00../../x' reads as 'a.jpg'), a trick to hide the real name.
            raise DatasetError(f"{info.orig_filename!r}: a name contains a NUL byte, which no real file name has.")
        parts = _safe_parts(info.filename)
        _check_entry(info, limits)
        if _is_junk(parts):
            continue
        if parts in seen:
            raise DatasetError(f"{info.filename}: the archive holds this path twice.")
        seen.add(parts)
        members.append(Member(info.filename, parts, info, info.is_dir()))
    _check_totals([m.info for m in members if not m.is_dir], limits)
    return members


def _safe_parts(name: str) -> tuple[str, ...]:
    if any(ord(c) < 32 for c in name):
        raise DatasetError(f"{name!r}: control characters are not allowed in names.")
    # On Windows a backslash is a separator, so 'a\..\..\x' would climb out; no legitimate zip needs one.
    if "\\" in name:
        raise DatasetError(f"{name}: backslashes are not allowed in paths.")
    if name.startswith("/") or _DRIVE.match(name):
        raise DatasetError(f"{name}: absolute paths are not allowed.")
    # macOS writes names decomposed (NFD): normalise so Korean or accented class names compare equal.
    parts = tuple(unicodedata.normalize("NFC", p) for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise DatasetError(f"{name}: paths with '..' are not allowed.")
    if not parts:
        raise DatasetError(f"{name!r}: empty names are not allowed.")
    if any(len(p.encode()) > 255 for p in parts):  # what filesystems allow; class folders become folders
        raise DatasetError(f"{name}: a file or folder name is longer than 255 bytes.")
    return parts


def _check_entry(info: zipfile.ZipInfo, limits: Limits) -> None:
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise DatasetError(f"{info.filename}: symbolic links are not allowed.")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise DatasetError(f"{info.filename}: only regular files and folders are allowed.")
    if info.flag_bits & 0x1:
        raise DatasetError(f"{info.filename}: encrypted members are not supported.")
    if info.file_size > RATIO_FLOOR_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        ratio = info.file_size / max(info.compress_size, 1)
        raise DatasetError(
            f"{info.filename}: compression ratio {ratio:.0f}:1 exceeds {limits.max_ratio:.0f}:1 (a zip bomb?)."
        )


def _check_totals(infos: list[zipfile.ZipInfo], limits: Limits) -> None:
    declared = sum(i.file_size for i in infos)
    compressed = sum(i.compress_size for i in infos)
    if declared > limits.max_unpacked_bytes:
        raise DatasetError(
            f"The archive unpacks to {megabytes(declared)}; the limit is {megabytes(limits.max_unpacked_bytes)}."
        )
    if declared > RATIO_FLOOR_BYTES and declared > limits.max_ratio * max(compressed, 1):
        raise DatasetError(
            f"The archive's overall compression ratio {declared / max(compressed, 1):.0f}:1 exceeds "
            f"{limits.max_ratio:.0f}:1 (a zip bomb?)."
        )


def _is_junk(parts: tuple[str, ...]) -> bool:
    return bool(JUNK_FOLDERS.intersection(parts)) or parts[-1] in JUNK_FILES or any(p.startswith(".") for p in parts)


def extract(zf: zipfile.ZipFile, members: list[Member], raw_dir: Path, limits: Limits) -> int:
    """Write each member to raw_dir/<index>, set member.stored, and return the bytes written."""
    total = 0
    for index, member in enumerate(members):
        member.stored = raw_dir / f"{index:07d}"
        total += _extract_one(zf, member, limits.max_unpacked_bytes - total)
    return total


def _extract_one(zf: zipfile.ZipFile, member: Member, budget: int) -> int:
    written = 0
    try:
        with zf.open(member.info) as src, open(member.stored, "xb") as dst:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > member.info.file_size:
                    raise DatasetError(f"{member.name}: holds more data than its header declares.")
                if written > budget:
                    raise DatasetError("The archive unpacks to more than the size limit.")
                dst.write(chunk)
    except _ZIP_ERRORS as exc:
        raise DatasetError(f"{member.name}: cannot be extracted ({exc}).") from exc
    return written
