"""Ultralytics with zero network look-ups and nothing written to the user's home folder.

`configure(data_root)` must run before the first `import ultralytics` of the process for the config folder to
take effect (ultralytics reads YOLO_CONFIG_DIR at import); later calls still make the settings safe (sync off,
integrations off, datasets/weights/runs folders under data_root) and put the plotting fonts where ultralytics looks.
"""

import os
import shutil
import sys
from pathlib import Path

# ultralytics asks for these by name and downloads them when missing; matplotlib's DejaVu Sans stands in.
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")
INTEGRATIONS = ("clearml", "comet", "dvc", "hub", "mlflow", "neptune", "raytune", "tensorboard", "wandb")


def configure(data_root: Path) -> Path:
    """Point ultralytics (and matplotlib's cache) into data_root/ultralytics and switch every online feature off."""
    root = Path(data_root).resolve() / "ultralytics"
    root.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_OFFLINE"] = "1"  # is_online() answers False without trying a socket
    os.environ["YOLO_AUTOINSTALL"] = "0"  # never pip-install a missing requirement
    if "ultralytics" not in sys.modules:
        os.environ["YOLO_CONFIG_DIR"] = str(root)
    if "matplotlib" not in sys.modules:
        os.environ.setdefault("MPLCONFIGDIR", str(root / "matplotlib"))
    from ultralytics.utils import SETTINGS, USER_CONFIG_DIR

    updates = {"sync": False, "datasets_dir": str(root / "datasets"), "weights_dir": str(root / "weights"),
               "runs_dir": str(root / "runs")}
    updates.update({key: False for key in INTEGRATIONS if key in SETTINGS})
    if any(SETTINGS.get(k) != v for k, v in updates.items()):
        SETTINGS.update(updates)
    for folder in {Path(USER_CONFIG_DIR), root}:
        install_fonts(folder)
    return root


def install_fonts(folder: Path) -> None:
    from matplotlib import font_manager

    source = Path(font_manager.findfont("DejaVu Sans", fallback_to_default=True))
    for name in FONT_NAMES:
        target = Path(folder) / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def local_amp_check(model) -> bool:
    """Replaces ultralytics' AMP check, which downloads yolo26n.pt: compare this model's own FP32 and autocast
    outputs on a blank image instead (AMP only runs on CUDA)."""
    import torch

    device = next(model.parameters()).device
    if device.type != "cuda":
        return False
    probe = torch.zeros(1, 3, 256, 256, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            full = _first(model(probe))
            with torch.autocast("cuda"):
                half = _first(model(probe))
        return bool(torch.isfinite(half.float()).all() and full.shape == half.shape)
    finally:
        model.train(was_training)


def _first(output):
    return output[0] if isinstance(output, (list, tuple)) else output
