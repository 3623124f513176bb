"""YOLO detection metadata: data.yaml's class names and the `cls cx cy w h` label files."""

import math

import yaml

from .errors import DatasetError

MAX_YAML_BYTES = 1024**2  # data.yaml is a few lines; anything bigger is not one


def read_text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")  # Windows editors prepend a BOM
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{name}: not UTF-8 text.") from exc


def read_class_names(data: bytes, name: str) -> list[str]:
    if len(data) > MAX_YAML_BYTES:
        raise DatasetError(f"{name}: too large for a data.yaml.")
    try:
        doc = yaml.safe_load(read_text(data, name))
    except yaml.YAMLError as exc:
        raise DatasetError(f"{name}: not valid YAML ({str(exc).splitlines()[0]}).") from exc
    if not isinstance(doc, dict) or "names" not in doc:
        raise DatasetError(f"{name}: needs a 'names' entry listing the classes.")
    names = _names_list(doc["names"], name)
    nc = doc.get("nc")
    if nc is not None and nc != len(names):
        raise DatasetError(f"{name}: nc is {nc} but names lists {len(names)} classes.")
    return names


def _names_list(names, name: str) -> list[str]:
    if isinstance(names, dict):  # {0: person, 1: car}, as ultralytics writes it
        try:
            by_id = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"{name}: the keys of 'names' must be class ids 0, 1, 2...") from exc
        if sorted(by_id) != list(range(len(by_id))):
            raise DatasetError(f"{name}: the keys of 'names' must be class ids 0, 1, 2... without gaps.")
        names = [by_id[i] for i in range(len(by_id))]
    if not isinstance(names, list) or not names:
        raise DatasetError(f"{name}: 'names' must be a non-empty list or a mapping of class ids to names.")
    cleaned = [str(n).strip() if n is not None else "" for n in names]
    if "" in cleaned:
        raise DatasetError(f"{name}: class {cleaned.index('')} has an empty name.")
    if len(set(cleaned)) != len(cleaned):
        raise DatasetError(f"{name}: class names must be unique.")
    return cleaned


def read_label_file(data: bytes, name: str, num_classes: int) -> list[int]:
    """Validate every line and return the class id of each box."""
    classes = []
    for number, line in enumerate(read_text(data, name).splitlines(), start=1):
        if line.strip():
            classes.append(_parse_box(line.split(), f"{name} line {number}", num_classes))
    return classes


def _parse_box(fields: list[str], where: str, num_classes: int) -> int:
    if len(fields) != 5:
        hint = " (segmentation polygons are not supported)" if len(fields) > 5 else ""
        raise DatasetError(f"{where}: expected 5 values 'class cx cy w h', found {len(fields)}{hint}.")
    try:
        values = [float(f) for f in fields]
    except ValueError:
        bad = next(f for f in fields if not _is_number(f))
        raise DatasetError(f"{where}: '{bad}' is not a number.") from None
    cls, cx, cy, w, h = values
    if not cls.is_integer():
        raise DatasetError(f"{where}: class id {fields[0]} is not a whole number.")
    if not 0 <= cls < num_classes:
        raise DatasetError(f"{where}: class id {int(cls)} is out of range (data.yaml has {num_classes} classes).")
    if not all(math.isfinite(v) and 0 <= v <= 1 for v in (cx, cy, w, h)):
        raise DatasetError(f"{where}: coordinates must be normalised to [0, 1] (found {' '.join(fields[1:])}).")
    if w <= 0 or h <= 0:
        raise DatasetError(f"{where}: box width and height must be positive.")
    return int(cls)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
