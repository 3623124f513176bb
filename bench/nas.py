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
SEARCH_CALIBRATION = 256  # training images whose statistics a candidate's batch norms take
SEARCH_HELD_OUT = 256  # validation images a candidate is scored on during the search
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


def specialise(supernet, devices, train, val, settings=None) -> tuple[list[dict], float, int]:
    """Every device's subnet, from one shared archive of evaluated subnets. Candidates are scored on fixed batches
    (BN statistics from SEARCH_CALIBRATION training images, top-1 on SEARCH_HELD_OUT validation images); the
    figures reported afterwards are on the whole validation split. Timed from the trained supernet to the last
    device's choice, latency models and costs included."""
    from training.engine import supernet as sn

    started = time.monotonic()
    accuracy = sn.SubnetEvaluator(supernet, sn.fixed_batch(train, SEARCH_CALIBRATION)[0],
                                  sn.fixed_batch(val, SEARCH_HELD_OUT))
    targets, extremes = [], {}
    for device in devices:
        predict = latency_model(device, supernet.spec, supernet.num_classes)
        fastest, slowest = predict(sn.smallest(supernet.spec)), predict(sn.largest(supernet.spec))
        targets.append(sn.Target(device.name, predict, fastest + BUDGET_FRACTION * (slowest - fastest)))
        extremes[device.name] = slowest
    found = sn.search_targets(supernet.spec, accuracy=accuracy, targets=targets, settings=settings)
    seconds = time.monotonic() - started
    rows = [{"device": t.name, "budget_ms": t.budget_ms, **f.as_dict(), "largest_latency_ms": extremes[t.name]}
            for t, f in zip(targets, found, strict=True)]
    return rows, seconds, len(accuracy.values)


def inherited_vs_scratch(supernet, rows, train, val, epochs: int, lr: float) -> list[dict]:
    """Per distinct chosen architecture, top-1 on the whole validation split: inherited weights (BN statistics
    recalibrated over the training split, no fine-tuning) against the architecture trained alone from scratch."""
    import torch

    from training.engine import supernet as sn

    results = []
    for label in dict.fromkeys(r["label"] for r in rows):  # distinct architectures, in catalog order
        config = sn.SubnetConfig.from_dict(next(r["config"] for r in rows if r["label"] == label))
        inherited = sn.top1(sn.subnet_for(supernet, config, train, batches=len(train)), val)
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
    parser.add_argument("--label-weight", type=float, default=0.5,
                        help="the smaller subnets' weight on the labels against distillation from the largest")
    parser.add_argument("--hpo-trials", type=int, default=8)
    parser.add_argument("--hpo-epochs", type=int, default=3)
    parser.add_argument("--only", choices=("nas", "hpo"), help="run one half")
    parser.add_argument("--supernet", help="a file to save the trained supernet to, or to load it from if it exists")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own; 1 on a loaded machine, "
                                                     "where threads waiting on each other cost more than they gain)")
    args = parser.parse_args()

    import torch

    from training.engine import supernet as sn

    if args.threads:
        torch.set_num_threads(args.threads)
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
    if args.supernet and Path(args.supernet).exists():  # iterating on the search: reuse a trained supernet
        supernet, trained = sn.supernet_load(Path(args.supernet)), None
        print(f"supernet: loaded from {args.supernet}\n")
    else:
        supernet = sn.Supernet(spec, num_classes=len(classes))
        trained = sn.supernet_train(supernet, train, val, report=quiet,
                                    config=sn.SupernetTrainConfig(epochs=args.epochs, lr=args.lr,
                                                                  label_weight=args.label_weight))
        print(f"supernet: {args.epochs} epochs in {trained.seconds:.0f}s (sandwich rule); largest top-1 "
              f"{100 * trained.largest_top1:.1f}%, smallest {100 * trained.smallest_top1:.1f}%\n")
        if args.supernet:
            sn.supernet_save(supernet, Path(args.supernet))

    rows, search_s, evaluated = specialise(supernet, devices, train, val)
    within = all(r["fits"] and r["latency_ms"] <= r["budget_ms"] for r in rows)
    print(f"specialised {len(rows)} devices in {search_s:.1f}s ({evaluated} subnets evaluated on the fixed search "
          f"batches); every prediction within its budget: {within}\n")

    gaps = {g["architecture"]: g for g in inherited_vs_scratch(supernet, rows, train, val, args.epochs, args.lr)}
    print(f"{'device':<20}{'budget ms':>10}{'predicted':>10}  {'subnet':<24}{'inherited':>10}{'scratch':>9}"
          f"{'gap pts':>8}")
    for r in rows:
        g = gaps[r["label"]]
        r.update(inherited_top1=g["inherited_top1"], scratch_top1=g["scratch_top1"], gap=g["gap"])
        print(f"{r['device']:<20}{r['budget_ms']:>10.4f}{r['latency_ms']:>10.4f}  {r['label']:<24}"
              f"{100 * g['inherited_top1']:>9.1f}%{100 * g['scratch_top1']:>8.1f}%{100 * g['gap']:>8.1f}")
    print(f"\n(top-1 on the whole validation split, {len(val.dataset)} images; inherited: no fine-tuning, BN "
          f"statistics recalibrated over the training split; scratch: {args.epochs} epochs alone, same recipe)")
    return {"supernet": trained.__dict__ if trained else None, "devices": rows, "search_seconds": search_s,
            "evaluated": evaluated, "gaps": list(gaps.values()), "within": within,
            "worst_gap": max(g["gap"] for g in gaps.values())}


if __name__ == "__main__":
    main()
