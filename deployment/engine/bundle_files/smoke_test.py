#!/usr/bin/env python3
"""Check this bundle on the machine it is meant for: files intact, the model runs, its answers match the portal's.

    python smoke_test.py                              # run the model here, on the images in samples/
    python smoke_test.py --url http://127.0.0.1:8080  # ask a running serve.py instead

samples/expected.json holds what the reference model (`reference`: the PyTorch model, or the imported model) answered
for those images when TANGO packaged the bundle, and how close this engine and precision must come (`tolerance`).
Exit status 0 when every check passes, 1 otherwise.
"""

import argparse
import hashlib
import json
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # infer.py and tango_common/ sit next to this file


def bad_checksums(folder: Path) -> list[str]:
    bad = []
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        path = folder / name.lstrip("*")
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            bad.append(name)
    return bad


def run_here(folder: Path, config: dict, images: list[Path], top_k: int) -> list[dict]:
    import infer

    from tango_common.runtime_loader import describe_session

    session, config, labels = infer.load_bundle(folder)
    print(f"Runtime: {describe_session(folder, session, config)}.")
    if config.get("task") == "detection":
        return infer.detect(session, images, input_size=config["input_size"], labels=labels,
                            conf=config.get("conf", 0.25), iou=config.get("iou", 0.7),
                            max_det=config.get("max_det", 300))
    return infer.predict(session, images, input_size=config["input_size"], labels=labels, mean=config["mean"],
                         std=config["std"], top_k=top_k)


def run_remote(url: str, images: list[Path], top_k: int) -> list[dict]:
    with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=10) as answer:
        if answer.status != 200:
            raise SystemExit(f"smoke test: {url}/healthz answered {answer.status}")
    results = []
    for image in images:
        request = urllib.request.Request(f"{url.rstrip('/')}/predict?top_k={top_k}", data=image.read_bytes(),
                                         headers={"Content-Type": "application/octet-stream"}, method="POST")
        with urllib.request.urlopen(request, timeout=60) as answer:
            results.append(json.loads(answer.read()))
    return results


def iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compare_classification(expected: dict, got: dict, tolerance: dict, source: str) -> tuple[bool, str]:
    want, have = expected["top"][0], got["top"][0]
    if want["label"] != have["label"]:
        return False, f"top-1 {have['label']} ({have['probability']:.3f}), {source} said {want['label']}"
    diff = abs(want["probability"] - have["probability"])
    ok = diff <= tolerance["probability"]
    return ok, f"top-1 {have['label']} {have['probability']:.3f} ({source} {want['probability']:.3f})"


def compare_detection(expected: dict, got: dict, tolerance: dict, conf: float, source: str) -> tuple[bool, str]:
    """Every box the reference model found is found again (same class, IoU and score within tolerance), and no other
    box, except boxes so close to the score threshold that a rounding difference decides whether they appear."""
    margin = conf + tolerance["score"]
    unmatched = list(got["boxes"])
    missing = 0
    for want in expected["boxes"]:
        match = next((b for b in unmatched if b["class"] == want["class"] and iou(b["box"], want["box"]) >=
                      tolerance["iou"] and abs(b["score"] - want["score"]) <= tolerance["score"]), None)
        if match is None:
            missing += want["score"] >= margin
        else:
            unmatched.remove(match)
    extra = sum(b["score"] >= margin for b in unmatched)
    return missing == 0 and extra == 0, (f"{len(got['boxes'])} boxes ({source} {len(expected['boxes'])}), "
                                         f"{missing} missing, {extra} extra")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check that this bundle runs here and matches the portal.")
    parser.add_argument("--url", help="check a running serve.py at this address instead of loading the model here")
    args = parser.parse_args(argv)

    bad = bad_checksums(HERE)
    if bad:
        print(f"FAILED: these files differ from SHA256SUMS: {', '.join(bad)}")
        return 1
    print("Checksums: every file matches SHA256SUMS.")
    config = json.loads((HERE / "preprocess.json").read_text())
    reference = json.loads((HERE / "samples" / "expected.json").read_text())
    tolerance = reference["tolerance"]
    source = reference.get("reference", "the PyTorch model")  # or "the imported model"
    images = [HERE / item["image"] for item in reference["results"]]
    top_k = len(reference["results"][0].get("top", [])) or 1
    results = run_remote(args.url, images, top_k) if args.url else run_here(HERE, config, images, top_k)
    agreed = 0
    for want, got in zip(reference["results"], results, strict=True):
        if config.get("task") == "detection":
            ok, text = compare_detection(want, got, tolerance, config.get("conf", 0.25), source)
        else:
            ok, text = compare_classification(want, got, tolerance, source)
        agreed += ok
        print(f"  {'ok  ' if ok else 'DIFF'} {want['image']}: {text}")
    needed = tolerance["min_agreement"] * len(results)
    where = args.url or "this machine"
    if agreed >= needed:
        print(f"PASSED: {agreed} of {len(results)} samples agree with {source} on {where}.")
        return 0
    print(f"FAILED: {agreed} of {len(results)} samples agree with {source} on {where} "
          f"(at least {needed:g} must).")
    return 1


if __name__ == "__main__":
    sys.exit(main())
