"""Does training with no options set give a useful model? The new defaults (training.engine.defaults) against the
old fixed recipe, on small 3-class datasets made from images that ship inside scikit-image and scikit-learn (nothing
is downloaded).

Datasets (a few hundred images each, 3 classes; the train/val split is made here):
  photos    64 px crops of three photographs (Chelsea the cat, the coffee cup, the astronaut), random position,
            scale, small rotation, flips and colour changes: "a 3-class dataset of 64x64 photos" as issue 9 found it
  textures  64 px grayscale crops of three textures (brick, grass, gravel) at random scale and angle
  objects   the cat, the cup and the rocket pasted at random size and place on varied backgrounds (brick, grass,
            the moon, gradients...): the object, not the scene, is the class
  digits    scikit-learn's 8x8 handwritten 0, 1 and 2, at 16 px (small grayscale: no flips)

Both recipes train the same model (ResNet-18, from scratch) at the same input size, the one the new defaults
derive from the images (so the comparison is about the recipe; the old wizard also upscaled 64 px photos to 224,
which only made it worse and slower). Old: 10 epochs, batch 64, SGD lr 0.05 with no warm-up, cosine, light
augmentation, no label smoothing, early stop after 5 epochs, running BatchNorm statistics.

    python bench/train_defaults.py [--datasets photos,textures,objects,digits] [--seeds 0] [--device auto] [--jobs 1]
                                   [--per-class 72,28] [--epochs 15,30,60]

--per-class sets the images per class (train,val): 24,6 is "3 classes x 30 photos". --epochs trains the new
defaults again at each number of epochs given (the warm-up in proportion, as when a user sets them), to see what
the data gains from more passes; the table adds a column per count.

Prints a table, writes bench/results/train_defaults.json; the last line says MET when every dataset reaches the
target accuracy (80% top-1 on validation by default, --target) with the new defaults.
"""

import argparse
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PER_CLASS = {"train": 72, "val": 28}  # 300 images: 216 to train on, 84 to validate
SIDE = 64

OLD_DEFAULTS = {"epochs": 10, "batch_size": 64, "optimizer": "sgd", "lr": 0.05, "schedule": "cosine", "patience": 5}


def _skimage(name: str) -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)())


def _random_crop(photo: Image.Image, rng: random.Random, *, scale=(0.35, 0.9), box=None) -> Image.Image:
    x0, y0, x1, y1 = box or (0, 0, photo.width, photo.height)
    short = min(x1 - x0, y1 - y0)
    side = int(short * rng.uniform(*scale))
    x = rng.randint(x0, x1 - side)
    y = rng.randint(y0, y1 - side)
    crop = photo.crop((x, y, x + side, y + side))
    if rng.random() < 0.5:
        crop = crop.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BILINEAR)
    return crop.resize((SIDE, SIDE), Image.Resampling.BILINEAR)


def _jitter(image: Image.Image, rng: random.Random) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.7, 1.3))
    if image.mode == "RGB":
        image = ImageEnhance.Color(image).enhance(rng.uniform(0.6, 1.4))
    return ImageOps.mirror(image) if rng.random() < 0.5 else image


def photos(rng: random.Random):
    sources = {"cat": ("chelsea", (60, 10, 420, 300)), "cup": ("coffee", (130, 10, 460, 300)),
               "astronaut": ("astronaut", (100, 0, 400, 350))}
    loaded = {cls: (_skimage(name).convert("RGB"), box) for cls, (name, box) in sources.items()}

    def make(cls):
        photo, box = loaded[cls]
        return _jitter(_random_crop(photo, rng, scale=(0.4, 1.0), box=box), rng)

    return list(sources), make


def textures(rng: random.Random):
    loaded = {name: _skimage(name).convert("L") for name in ("brick", "grass", "gravel")}

    def make(cls):
        photo = loaded[cls]
        if rng.random() < 0.5:
            photo = photo.rotate(rng.choice((90, 180, 270)))
        return _jitter(_random_crop(photo, rng, scale=(0.15, 0.5)), rng)

    return list(loaded), make


def objects(rng: random.Random):
    sources = {"cat": ("chelsea", (60, 10, 420, 300)), "cup": ("coffee", (130, 10, 460, 300)),
               "rocket": ("rocket", (285, 90, 355, 420))}
    cutouts = {cls: _skimage(name).convert("RGB").crop(box) for cls, (name, box) in sources.items()}
    backgrounds = [_skimage(name).convert("RGB") for name in ("brick", "grass", "gravel", "moon", "page")]

    def make(cls):
        if rng.random() < 0.25:
            a, b = (tuple(rng.randrange(256) for _ in range(3)) for _ in range(2))
            ramp = np.linspace(0, 1, SIDE, dtype=np.float32)[:, None, None]
            scene = Image.fromarray((np.array(a) * (1 - ramp) + np.array(b) * ramp).astype(np.uint8)
                                    .repeat(SIDE, axis=1))
        else:
            scene = _random_crop(rng.choice(backgrounds), rng, scale=(0.3, 1.0))
        obj = cutouts[cls]
        height = int(SIDE * rng.uniform(0.5, 0.9))
        width = max(4, min(SIDE, int(height * obj.width / obj.height * rng.uniform(0.85, 1.15))))
        obj = obj.resize((width, height), Image.Resampling.BILINEAR)
        scene.paste(obj, (rng.randint(0, SIDE - width), rng.randint(0, SIDE - height)))
        return _jitter(scene, rng)

    return list(sources), make


def digits(rng: random.Random):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pools = {str(d): [img for img, t in zip(bunch.images, bunch.target, strict=True) if t == d] for d in (0, 1, 2)}
    for pool in pools.values():
        rng.shuffle(pool)
    taken = {cls: 0 for cls in pools}

    def make(cls):
        pixels = pools[cls][taken[cls] % len(pools[cls])]
        taken[cls] += 1
        image = Image.fromarray((pixels * 255 / 16).astype(np.uint8), mode="L")
        return image.resize((16, 16), Image.Resampling.NEAREST)

    return list(pools), make


DATASETS = {"photos": photos, "textures": textures, "objects": objects, "digits": digits}


def build(name: str, root: Path, seed: int = 0, per_class: dict | None = None) -> tuple[Path, list[str]]:
    rng = random.Random(f"{name}-{seed}")
    classes, make = DATASETS[name](rng)
    folder = root / name
    for split, count in (per_class or PER_CLASS).items():
        for cls in classes:
            (folder / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                make(cls).save(folder / split / cls / f"{i:03d}.png")
    return folder, classes


def run_one(folder: Path, classes: list[str], config_values: dict, out: Path) -> dict:
    from training.engine.train import TrainConfig, train

    config = TrainConfig.from_dict(config_values)
    started = time.perf_counter()
    result = train(data_dir=folder, class_names=classes, config=config, out_dir=out, resume=False,
                   report=lambda line=None, progress=None: None)
    return {"top1": result.final["top1"], "best_epoch": result.best_epoch, "epochs": result.epochs_completed,
            "seconds": round(time.perf_counter() - started, 1)}


def _run_task(task) -> dict:
    import torch

    torch.set_num_threads(1)  # several runs share the host's cores
    _, _, folder, classes, values, out = task
    return run_one(folder, classes, values, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="0", help="training seeds, comma-separated (the median is reported)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--target", type=float, default=0.80, help="top-1 every dataset must reach (0-1)")
    parser.add_argument("--skip-old", action="store_true", help="train the new defaults only")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (processes; e.g. 8 on a GPU host)")
    parser.add_argument("--per-class", default=f"{PER_CLASS['train']},{PER_CLASS['val']}",
                        help="train,val images per class")
    parser.add_argument("--epochs", default="", help="also train the new defaults at these epoch counts")
    args = parser.parse_args()
    train_n, val_n = (int(n) for n in args.per_class.split(","))
    sweep = [int(e) for e in args.epochs.split(",") if e]

    from tango_common.images import suggested_input_size
    from training.engine.defaults import data_facts, resolve

    seeds = [int(s) for s in args.seeds.split(",")]
    rows, runs = [], []
    with tempfile.TemporaryDirectory(prefix="tango-bench-defaults-") as tmp:
        for name in args.datasets.split(","):
            folder, classes = build(name, Path(tmp), per_class={"train": train_n, "val": val_n})
            facts = data_facts(folder, classes)
            input_size = suggested_input_size(facts.side)
            new_values, _ = resolve({}, facts)
            common = {"model": args.model, "input_size": input_size, "device": args.device}
            rows.append({"dataset": name, "classes": classes, "train_images": facts.n_train, "input_size": input_size,
                         "chance": 1 / len(classes), "new_recipe": new_values, "runs": {}})
            swept = [(f"new@{e}", resolve({"epochs": e}, facts)[0]) for e in sweep]
            for label, values in (("old", OLD_DEFAULTS), ("new", new_values), *swept):
                if not (label == "old" and args.skip_old):
                    runs += [(len(rows) - 1, label, folder, classes, {**values, **common, "seed": seed},
                              Path(tmp) / f"{name}-{label}-{seed}") for seed in seeds]
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            done = pool.map(_run_task, runs)
            for (index, label, *_), outcome in zip(runs, done, strict=True):
                rows[index]["runs"].setdefault(label, []).append(outcome)
                print(f"  {rows[index]['dataset']:9} {label}: {100 * outcome['top1']:.1f}% ({outcome['seconds']}s)",
                      flush=True)
    for row in rows:
        for label, outcomes in row["runs"].items():
            row[label] = statistics.median(r["top1"] for r in outcomes)

    print()
    swept_head = "".join(f" {'@' + str(e):>7}" for e in sweep)
    print(f"{'dataset':10} {'classes':28} {'train':>5} {'px':>4} {'chance':>7} {'old':>7} {'new':>7}{swept_head}"
          "  new recipe")
    for row in rows:
        old = f"{100 * row['old']:.1f}%" if "old" in row else "-"
        recipe = row["new_recipe"]
        swept_cells = "".join(f" {100 * row[f'new@{e}']:6.1f}%" for e in sweep)
        print(f"{row['dataset']:10} {','.join(row['classes']):28} {row['train_images']:5d} {row['input_size']:4d} "
              f"{100 * row['chance']:6.1f}% {old:>7} {100 * row['new']:6.1f}%{swept_cells}  "
              f"{recipe['epochs']} epochs, batch {recipe['batch_size']}, lr {recipe['lr']}, {recipe['augmentation']}"
              f"{' + flips' if recipe['hflip'] else ''}")
    met = all(row["new"] >= args.target for row in rows)
    out = ROOT / "bench" / "results" / "train_defaults.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"target": args.target, "model": args.model, "seeds": seeds, "rows": rows,
                               "met": met, "device": args.device, "per_class": {"train": train_n, "val": val_n},
                               "epochs_swept": sweep}, indent=2))
    print(f"Default training reaches {100 * args.target:.0f}% top-1 on every dataset "
          f"(lowest {100 * min(r['new'] for r in rows):.1f}%): {'MET' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
