#!/usr/bin/env python3
"""Run the TANGO image classifier in this folder on images: `python infer.py IMAGE_OR_FOLDER [...]`.

Self-contained on purpose (numpy, Pillow, the engine's runtime and the standard library only): this file is copied
into every exported bundle as `infer.py`, together with `tango_common/images.py`, the preprocessing the portal itself
evaluates with, so the numbers the portal shows and the numbers the bundle prints come from the same code. The
model runs on the bundle's engine through its `runtime.py` (tango_common/runtime_loader.py).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

if not __package__:  # run as a script from a bundle folder: its tango_common/ sits next to this file, and
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # python -I leaves the folder off sys.path

# In the portal this is the neutral package; in a bundle, the copy of it that sits next to infer.py.
from tango_common.images import IMAGE_SUFFIXES, IMAGENET_MEAN, IMAGENET_STD, preprocess_image
from tango_common.runtime_loader import open_session

HERE = Path(__file__).resolve().parent


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)  # avoids overflow in exp
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def load_bundle(bundle_dir=HERE):
    """The model's session on the bundle's engine (its runtime.py), preprocess settings and labels of a folder."""
    bundle_dir = Path(bundle_dir)
    config = json.loads((bundle_dir / "preprocess.json").read_text())
    labels = (bundle_dir / "labels.txt").read_text(encoding="utf-8").splitlines()
    return open_session(bundle_dir, config), config, labels


def predict(session, paths, *, input_size: int, labels, mean=IMAGENET_MEAN, std=IMAGENET_STD, top_k: int = 3,
            batch_size: int = 16) -> list[dict]:
    """Top-k labels with softmax probabilities for each image, in the order given."""
    input_name = session.get_inputs()[0].name
    results = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        batch = np.stack([preprocess_image(p, input_size, mean, std) for p in chunk])
        probabilities = softmax(session.run(None, {input_name: batch})[0])
        for path, probs in zip(chunk, probabilities, strict=True):
            order = np.argsort(-probs, kind="stable")[:top_k]
            top = [{"label": labels[i], "index": int(i), "probability": float(probs[i])} for i in order]
            results.append({"image": str(path), "top": top})
    return results


def expand_paths(arguments) -> list[Path]:
    """Files as given; folders become their image files (sorted, not recursive)."""
    paths = []
    for argument in map(Path, arguments):
        if argument.is_dir():
            paths.extend(sorted(p for p in argument.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif argument.is_file():
            paths.append(argument)
        else:
            raise SystemExit(f"infer.py: no such file or folder: {argument}")
    return paths


def format_text(results) -> str:
    lines = []
    for result in results:
        top = ", ".join(f"{t['label']} {t['probability']:.3f}" for t in result["top"])
        lines.append(f"{result['image']}: {top}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Classify images with the model in this bundle.")
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--top-k", type=int, default=3, help="how many labels to print per image (default 3)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--bundle-dir", default=str(HERE), help="the bundle folder (default: where infer.py is)")
    args = parser.parse_args(argv)

    paths = expand_paths(args.images)
    if not paths:
        print("infer.py: no images found", file=sys.stderr)
        return 1
    session, config, labels = load_bundle(args.bundle_dir)
    try:
        results = predict(session, paths, input_size=config["input_size"], labels=labels, mean=config["mean"],
                          std=config["std"], top_k=max(1, min(args.top_k, len(labels))), batch_size=args.batch_size)
    except OSError as error:  # Pillow's UnidentifiedImageError: a file that is not an image (it names the file)
        print(f"infer.py: {error}: not an image Pillow can read", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=2) if args.format == "json" else format_text(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
