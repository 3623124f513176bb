"""One tiny detector trained once per test session, shared by the training and deployment tests.

The run happens with every socket connection refused (and recorded), which is the offline test: ultralytics must
train, validate and predict without a single network attempt.
"""

import json
import socket
from pathlib import Path

import pytest

from projects.datasets.detection_demo import write_detection_demo

INPUT_SIZE = 64
# Fast-learning settings for a 3-epoch run on 32 images: batch 1 with an optimizer step per image (nbs = batch),
# so 96 steps also move BatchNorm's running statistics (momentum 0.03) far enough for eval mode to find boxes;
# no warm-up (ultralytics' lasts at least 100 steps), no mosaic (four 64 px images in one are too small to learn).
BATCH = 1
FAST = {"nbs": BATCH, "warmup_epochs": 0, "mosaic": 0.0, "optimizer": "SGD", "lr0": 0.02}


class NetworkBlocked(OSError):
    pass


class SocketGuard:
    """Refuses and records every outbound connection while active."""

    def __init__(self):
        self.attempts = []

    def __enter__(self):
        self.patch = pytest.MonkeyPatch()

        def refuse(sock, address, *args):
            self.attempts.append(address)
            raise NetworkBlocked(f"network access attempted: {address}")

        self.patch.setattr(socket.socket, "connect", refuse)
        self.patch.setattr(socket.socket, "connect_ex", refuse)
        self.patch.setattr(socket, "getaddrinfo", lambda host, *a, **k: refuse(None, host))
        return self

    def __exit__(self, *exc):
        self.patch.undo()


def tiny_dataset(root: Path, *, train: int = 32, val: int = 8) -> Path:
    folder = root / f"tiny-detection-{train}-{val}"
    if not (folder / "data.yaml").exists():
        write_detection_demo(folder, train=train, val=val, size=INPUT_SIZE, classes=["cat"], seed=3)
    return folder


def trained_detector(base: Path) -> dict:
    """{"data_dir", "out_dir", "result", "lines", "network_attempts"}; trains on first use in this session."""
    from training.engine.yolo.train import train_detector

    data_dir = tiny_dataset(base)
    out_dir = base / "tiny-detector"
    record = base / "tiny-detector.json"
    if record.exists():
        return json.loads(record.read_text())
    lines = []
    with SocketGuard() as guard:
        result = train_detector(data_dir=data_dir, model="yolo11n", out_dir=out_dir, data_root=base / "data",
                                input_size=INPUT_SIZE, epochs=3, batch=BATCH, overrides=FAST, n_predictions=3,
                                report=lambda line, progress=None: line is not None and lines.append(line))
    shared = {"data_dir": str(data_dir), "out_dir": str(out_dir), "result": result.as_dict(), "lines": lines,
              "network_attempts": [str(a) for a in guard.attempts]}
    record.write_text(json.dumps(shared))
    return shared
