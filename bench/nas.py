"""Once-for-all on the digits: one supernet, a subnet per catalog device; and HPO against the defaults.

1. Trains the elastic supernet once on scikit-learn's digits (8 px, the demo's split rule: 80/20 per class).
2. Specialises it for every active device in the catalog: an evolutionary search under the device's latency
   budget, latency predicted by the recommender from the subnet's computed costs. Accuracy evaluations are shared
   between devices. Target: all devices in under 60 s.
3. For each distinct chosen architecture: its accuracy with inherited weights (no fine-tuning) against the same
   architecture trained alone from scratch for the same number of epochs. Target: within 2 points.
4. HPO: an Optuna study (SQLite) of N trials of ResNet-18 training against one run with the portal's default
   hyperparameters, same epochs per run.

The digits at 8 px need so little compute that every subnet fits every catalog budget (the recommender predicts
0.5-4 ms against budgets of 20-200 ms), and the search would have nothing to choose. So each device's budget here is
set where it binds: BUDGET_FRACTION of the way from its smallest subnet's predicted latency to its largest's. The
devices differ in where compute, memory traffic and per-operation overhead dominate, so they need not agree.
Prints tables and writes bench/results/nas.json.

    python bench/nas.py [--epochs 8] [--hpo-trials 8] [--hpo-epochs 3]
"""

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TANGO_DATA_DIR", tempfile.mkdtemp(prefix="tango-bench-nas-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tango_site.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))  # a throwaway key: DEBUG is off

BUDGET_FRACTION = 0.3
GAP_TARGET = 0.02
SEARCH_TARGET_S = 60.0


def quiet(*args, **kwargs):
    return None


def digits_folders(root: Path) -> tuple[Path, list[str]]:
    """data_dir/{train,val}/<digit>/*.png, every fifth image of a class to val."""
    from projects.datasets.digits import write_digits_dataset

    everything = write_digits_dataset(root / "all", upscale=1)
    classes = sorted(p.name for p in everything.iterdir())
    for name in classes:
        for index, path in enumerate(sorted((everything / name).iterdir())):
            split = root / "data" / ("val" if index % 5 == 0 else "train") / name
            split.mkdir(parents=True, exist_ok=True)
            path.rename(split / path.name)
    return root / "data", classes


def loaders(data_dir: Path, classes: list[str], batch_size: int = 64):
    import torch
    from torch.utils.data import DataLoader

    from training.engine.data import EvalTransform, ImageFolderDataset, list_images
    from training.engine.supernet import preload

    def split(name):
        return preload(ImageFolderDataset(list_images(data_dir / name, classes), EvalTransform(8)))

    train = DataLoader(split("train"), batch_size=batch_size, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    return train, DataLoader(split("val"), batch_size=512)


def catalog():
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from recommender.models import Device

    return list(Device.objects.filter(is_active=True))


def latency_model(device, spec, num_classes: int):
    """The recommender's latency prediction for this device (ONNX Runtime fp32), from each subnet's costs."""
    from recommender.services import latency_model_for
    from training.automl import subnet_costs

    model = latency_model_for(device=device, engine="onnxruntime", precision="fp32")
    return lambda config: model.predict_ms(subnet_costs(spec, config, num_classes=num_classes, input_size=8))


def specialise(supernet, devices, train, val) -> tuple[list[dict], float]:
    from training.engine import supernet as sn

    accuracy = sn.AccuracyCache(supernet, train, val)
    rows, started = [], time.monotonic()
    for device in devices:
        predict = latency_model(device, supernet.spec, supernet.num_classes)
        fastest, slowest = predict(sn.smallest(supernet.spec)), predict(sn.largest(supernet.spec))
        budget = fastest + BUDGET_FRACTION * (slowest - fastest)
        found = sn.evolutionary_search(supernet.spec, accuracy=accuracy, latency_ms=predict, budget_ms=budget)
        rows.append({"device": device.name, "budget_ms": budget, **found.as_dict(),
                     "largest_latency_ms": predict(sn.largest(supernet.spec))})
    return rows, time.monotonic() - started


def inherited_vs_scratch(supernet, rows, train, val, epochs: int, lr: float) -> list[dict]:
    import torch

    from training.engine import supernet as sn

    results = []
    for label in dict.fromkeys(r["label"] for r in rows):  # distinct architectures, in catalog order
        config = sn.SubnetConfig.from_dict(next(r["config"] for r in rows if r["label"] == label))
        inherited = sn.top1(sn.subnet_for(supernet, config, train), val)
        torch.manual_seed(0)
        alone = sn.build_subnet(supernet.spec, config, supernet.num_classes)
        scratch = sn.subnet_train(alone, train, val, epochs=epochs, lr=lr, report=quiet)
        results.append({"architecture": label, "inherited_top1": inherited, "scratch_top1": scratch,
                        "gap": scratch - inherited})
    return results


def hpo_vs_default(data_dir: Path, classes: list[str], trials: int, epochs: int, work: Path) -> dict:
    from training.engine import hpo
    from training.engine.defaults import data_facts, resolve
    from training.engine.train import TrainConfig, train

    # The portal's defaults for this dataset (what a project with no options trains with), at the same epochs.
    defaults, _ = resolve({}, data_facts(data_dir, classes))
    base = {**defaults, "model": "resnet18", "input_size": 8, "epochs": epochs, "patience": 0, "device": "cpu"}

    def run(overrides: dict, out: Path, on_epoch=None) -> float:
        config = TrainConfig.from_dict({**base, **overrides})
        callback = (lambda record: on_epoch(record["epoch"], record["top1"])) if on_epoch else None
        return train(data_dir=data_dir, class_names=classes, config=config, out_dir=out, report=quiet,
                     on_epoch=callback, resume=False).best_top1

    default = run({}, work / "default")
    counter = iter(range(10_000))
    study = hpo.study_open(storage_url=f"sqlite:///{work / 'hpo.db'}", name="digits")
    summary = hpo.study_run(study=study, task="classification",
                            objective=lambda params, on_epoch: run(params, work / f"t{next(counter)}", on_epoch),
                            budget=hpo.Budget(trials=trials, minutes=60), report=quiet)
    return {"default_top1": default, "best_top1": summary["best"]["value"], "best_params": summary["best"]["params"],
            "trials": len(summary["trials"]), "pruned": sum(t["state"] == "pruned" for t in summary["trials"]),
            "importances": summary["importances"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="supernet epochs (and scratch epochs)")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--hpo-trials", type=int, default=8)
    parser.add_argument("--hpo-epochs", type=int, default=3)
    parser.add_argument("--only", choices=("nas", "hpo"), help="run one half")
    args = parser.parse_args()

    import torch

    from training.engine import supernet as sn

    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="tango-nas-"))
    data_dir, classes = digits_folders(work)
    train, val = loaders(data_dir, classes)
    devices = catalog()
    result = {"budget_fraction": BUDGET_FRACTION}
    if args.only != "hpo":
        result.update(nas_part(args, sn, data_dir, classes, train, val, devices))
    if args.only != "nas":
        search = hpo_vs_default(data_dir, classes, args.hpo_trials, args.hpo_epochs, work)
        result["hpo"] = search
        print(f"\nHPO, ResNet-18, {args.hpo_epochs} epochs per run: defaults {100 * search['default_top1']:.1f}%, best "
              f"of {search['trials']} trials ({search['pruned']} pruned) {100 * search['best_top1']:.1f}% with "
              f"{search['best_params']}")
    out = ROOT / "bench" / "results" / "nas.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    if args.only == "hpo":
        better = result["hpo"]["best_top1"] >= result["hpo"]["default_top1"]
        print(f"HPO best trial {100 * result['hpo']['best_top1']:.1f}% against the defaults' "
              f"{100 * result['hpo']['default_top1']:.1f}% (target: at least as good) {'MET' if better else 'MISSED'}")
        return
    met = result["within"] and result["search_seconds"] < SEARCH_TARGET_S and result["worst_gap"] <= GAP_TARGET
    print(f"specialised {len(result['devices'])} devices in {result['search_seconds']:.1f}s (target < "
          f"{SEARCH_TARGET_S:.0f}s), worst inherited-vs-scratch gap {100 * result['worst_gap']:.1f} pts (target <= "
          f"{100 * GAP_TARGET:.0f}) {'MET' if met else 'MISSED'}")


def nas_part(args, sn, data_dir, classes, train, val, devices) -> dict:
    spec = sn.SupernetSpec(widths=(16, 32, 64, 128), stem_width=16)
    supernet = sn.Supernet(spec, num_classes=len(classes))
    trained = sn.supernet_train(supernet, train, val, config=sn.SupernetTrainConfig(epochs=args.epochs, lr=args.lr),
                                report=quiet)
    print(f"supernet: {args.epochs} epochs in {trained.seconds:.0f}s; largest top-1 {100 * trained.largest_top1:.1f}%,"
          f" smallest {100 * trained.smallest_top1:.1f}%\n")

    rows, search_s = specialise(supernet, devices, train, val)
    print(f"{'device':<20}{'budget ms':>11}{'predicted ms':>14}{'largest ms':>12}  {'subnet':<22}{'top-1':>7}")
    for r in rows:
        print(f"{r['device']:<20}{r['budget_ms']:>11.4f}{r['latency_ms']:>14.4f}{r['largest_latency_ms']:>12.4f}  "
              f"{r['label']:<22}{100 * r['accuracy']:>6.1f}%")
    within = all(r["fits"] and r["latency_ms"] <= r["budget_ms"] for r in rows)
    print(f"\nspecialised {len(rows)} devices in {search_s:.1f}s; every prediction within its budget: {within}\n")

    gaps = inherited_vs_scratch(supernet, rows, train, val, args.epochs, args.lr)
    print(f"{'architecture':<22}{'inherited':>11}{'scratch':>9}{'gap (pts)':>11}")
    for g in gaps:
        print(f"{g['architecture']:<22}{100 * g['inherited_top1']:>10.1f}%{100 * g['scratch_top1']:>8.1f}%"
              f"{100 * g['gap']:>11.1f}")
    return {"supernet": trained.__dict__, "devices": rows, "search_seconds": search_s, "gaps": gaps,
            "within": within, "worst_gap": max(g["gap"] for g in gaps)}


if __name__ == "__main__":
    main()
