"""Training throughput through the portal against the same loop called directly.

--task detection compares the portal's detection train stage with ultralytics' DetectionTrainer called directly on
the same demo data (objects cut from scikit-image's photographs) and settings; images/s of the training phase.

The portal path is the train stage as a worker runs it: a Job row claimed by job_execute, every line and
progress update written to the database (and pushed when Redis is configured), per-epoch metrics saved to the
TrainingRun and published to viewers. The direct path calls training.engine.train.train with a no-op report.
Same data (scikit-learn's digits), same model, same seed; the two alternate so drift on a shared machine hits
both. Prints a table and writes bench/results/train_overhead.json.

    python bench/train_overhead.py [--rounds 2] [--epochs 3] [--model resnet18] [--input-size 8]
    python bench/train_overhead.py --task detection [--rounds 2] [--epochs 3]   # yolo11n at 128 px

With no DATABASE_URL it runs embedded (SQLite in a temporary data folder).
"""

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TANGO_DATA_DIR", tempfile.mkdtemp(prefix="tango-bench-train-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tango_site.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))  # a throwaway key: DEBUG is off


def setup(args):
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from projects.demo import demo_dataset
    from projects.models import Project
    from projects.services import project_create, team_create
    from recommender.models import Device

    user = get_user_model().objects.create_user("bench")
    team = team_create(name="Bench", owner=user)
    dataset = demo_dataset(team=team, user=user)
    project = project_create(
        team=team, user=user, name="bench", task="classification", dataset=dataset,
        device=Device.objects.get(name="Odroid_N2"), engine="onnxruntime", precision="fp32",
        input_size=args.input_size, latency_budget_ms=None, run_mode="step",
        options={"model": args.model, "train": {"epochs": args.epochs, "batch_size": 64, "seed": 0}},
    )
    return Project.objects.get(pk=project.pk)


def run_direct(project, args, out_dir: Path) -> list[dict]:
    from training.engine.train import TrainConfig, train
    from training.services import training_config

    config = TrainConfig.from_dict(training_config(project, args.model))
    result = train(data_dir=project.dataset.root, class_names=project.dataset.class_names, config=config,
                   out_dir=out_dir, report=lambda *a, **k: None, resume=False)
    return result.history


def run_portal(project, args) -> list[dict]:
    from projects.jobs import services as jobs
    from projects.jobs.runner import job_execute
    from projects.jobs.services import job_enqueue
    from training.models import TrainingRun

    jobs._dispatch = lambda *a: None  # this process executes the job itself, as a worker would
    if not project.jobs.filter(stage="recommend", status="succeeded").exists():
        recommend = job_enqueue(project=project, stage_key="recommend")
        job_execute(job_id=recommend.pk, attempt=1)
    job = job_enqueue(project=project, stage_key="train")
    job_execute(job_id=job.pk, attempt=1)
    job.refresh_from_db()
    if job.status != "succeeded":
        raise SystemExit(f"the portal's train job {job.status}: {job.error}")
    return TrainingRun.objects.get(job=job).history


def throughput(history: list[dict]) -> float:
    """Training images per second over all epochs (the loop's own timing of its training phase)."""
    images = sum(r["images_per_s"] * r["seconds"] for r in history)
    return images / sum(r["seconds"] for r in history)


def setup_detection(args):
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from projects.datasets.detection_demo import DEMO_RECIPE
    from projects.models import Project
    from projects.services import project_create, team_create
    from recommender.models import Device
    from training.demo import detection_demo_dataset

    user = get_user_model().objects.create_user("bench")
    team = team_create(name="Bench", owner=user)
    dataset = detection_demo_dataset(team=team, user=user)
    train = {"epochs": args.epochs, "batch": DEMO_RECIPE["batch"], "patience": 0, "seed": 0,
             "overrides": DEMO_RECIPE["overrides"]}
    project = project_create(
        team=team, user=user, name="bench-detection", task="detection", dataset=dataset,
        device=Device.objects.get(name="Jetson_Nano"), engine="onnxruntime", precision="fp32",
        input_size=args.input_size, latency_budget_ms=None, run_mode="step",
        options={"model": args.model, "train": train},
    )
    return Project.objects.get(pk=project.pk)


def run_direct_detection(project, args, out_dir: Path) -> list[dict]:
    """ultralytics' own trainer on the same data yaml and settings, timed by the same two callbacks."""
    from django.conf import settings

    from training.engine.yolo import offline
    from training.engine.yolo.train import write_data_yaml
    from training.engine.yolo.zoo import model_yaml

    offline.configure(settings.DATA_DIR)
    from ultralytics.models.yolo.detect import DetectionTrainer

    options = project.options["train"]
    data_yaml, _ = write_data_yaml(project.dataset.root, out_dir)
    trainer = DetectionTrainer(overrides={
        "model": model_yaml(args.model), "data": str(data_yaml), "imgsz": args.input_size, "epochs": args.epochs,
        "batch": options["batch"], "device": "cpu", "workers": 0, "seed": 0, "patience": 0, "plots": False,
        "amp": False, "pretrained": False, "project": str(out_dir), "name": "direct", "exist_ok": True,
        **options["overrides"]})
    history, started = [], {}
    trainer.add_callback("on_train_epoch_start", lambda t: started.update(at=time.perf_counter()))
    trainer.add_callback("on_train_epoch_end", lambda t: history.append(
        {"epoch": t.epoch + 1, "train_images": len(t.train_loader.dataset),
         "train_seconds": time.perf_counter() - started["at"]}))
    trainer.train()
    history[-1]["map50"] = float(trainer.metrics.get("metrics/mAP50(B)", 0.0))
    return history


def detection_throughput(history: list[dict]) -> float:
    return sum(r["train_images"] for r in history) / sum(r["train_seconds"] for r in history)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("classification", "detection"), default="classification")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default=None, help="resnet18 (classification) or yolo11n (detection)")
    parser.add_argument("--input-size", type=int, default=None, help="8 (classification) or 128 (detection)")
    args = parser.parse_args()
    detection = args.task == "detection"
    args.model = args.model or ("yolo11n" if detection else "resnet18")
    args.input_size = args.input_size or (128 if detection else 8)
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    project = setup_detection(args) if detection else setup(args)
    rows = []
    for round_ in range(1, args.rounds + 1):
        for path in ("direct", "portal"):
            started = time.perf_counter()
            if path == "direct":
                direct = run_direct_detection if detection else run_direct
                history = direct(project, args, Path(tempfile.mkdtemp(prefix="direct-")))
            else:
                history = run_portal(project, args)
            quality = history[-1]["map50"] if detection else history[-1]["top1"]
            rows.append({"round": round_, "path": path,
                         "images_per_s": detection_throughput(history) if detection else throughput(history),
                         "wall_s": time.perf_counter() - started, "final_metric": quality})
            print(f"round {round_} {path:6s} {rows[-1]['images_per_s']:8.1f} img/s  {rows[-1]['wall_s']:6.1f} s wall"
                  f"  {'mAP50' if detection else 'top-1'} {quality:.3f}", flush=True)
    direct = statistics.mean(r["images_per_s"] for r in rows if r["path"] == "direct")
    portal = statistics.mean(r["images_per_s"] for r in rows if r["path"] == "portal")
    direct_wall = statistics.mean(r["wall_s"] for r in rows if r["path"] == "direct")
    portal_wall = statistics.mean(r["wall_s"] for r in rows if r["path"] == "portal")
    summary = {"direct_images_per_s": direct, "portal_images_per_s": portal, "ratio": portal / direct,
               "direct_wall_s": direct_wall, "portal_wall_s": portal_wall, "wall_ratio": direct_wall / portal_wall,
               "target_ratio": 0.95, "database": "postgres" if os.environ.get("DATABASE_URL") else "sqlite",
               "task": args.task, "model": args.model, "input_size": args.input_size, "epochs": args.epochs,
               "train_images": project.dataset.stats.get("split_counts", {}).get("train"), "rows": rows,
               "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    print()
    print(f"{'path':8s} {'img/s':>9s} {'wall s':>8s}")
    print(f"{'direct':8s} {direct:9.1f} {direct_wall:8.1f}")
    print(f"{'portal':8s} {portal:9.1f} {portal_wall:8.1f}")
    print(f"ratio portal/direct: {summary['ratio']:.3f} (throughput), {summary['wall_ratio']:.3f} (wall, direct/portal)"
          f"  target >= 0.95")
    out = ROOT / "bench" / "results" / ("train_overhead_detection.json" if detection else "train_overhead.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {out}")
    verdict = "MET" if summary["ratio"] >= summary["target_ratio"] else "MISSED"
    print(f"portal/direct training throughput ({args.task}, {args.model}) {summary['ratio']:.3f} vs target "
          f"{summary['target_ratio']} … {verdict}")


if __name__ == "__main__":
    main()
