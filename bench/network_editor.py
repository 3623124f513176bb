"""How fast the network editor answers an edit: the graph core's work behind one preview.

For each model: the first graph (trace on the meta device, cold), then an edit answered warm (the edits applied
to the cached graph, shapes re-inferred, the costs read off the shapes for a classifier, a detector's layers
rebuilt on the meta device and profiled the way the recommender profiles candidates, engine flags). The database
look-up of the latency model is a few milliseconds on top and is left out. Target: a warm answer within 1 s for
every model, so the costs follow the user's edits.

    python bench/network_editor.py [--repeats 3]

Prints a table and writes bench/results/network_editor.json; the last line says MET or MISSED.
"""

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_S = 1.0
CASES = [  # model, input size, an edit that changes the costs
    ("resnet50", 224, [{"op": "resize", "node": "layer3_1_conv1", "channels": 128}]),
    ("densenet121", 224, [{"op": "insert", "after": "features_denseblock2_denselayer1_relu2", "layer": "Dropout"}]),
    ("vgg16", 224, [{"op": "resize", "node": "features_0", "channels": 32}]),
    ("resnet203", 224, [{"op": "resize", "node": "layer3_1_conv1", "channels": 128}]),
    ("yolov7-tiny", 640, [{"op": "set", "node": "2", "params": {"args": [48, 1, 1]}}]),
    ("yolov7", 640, [{"op": "set", "node": "2", "params": {"args": [48, 3, 1]}}]),
]


def yolo_build(spec):
    from ultralytics.nn.tasks import parse_model

    return parse_model(copy.deepcopy(spec), ch=3, verbose=False)[0]


def first_graph(name: str, size: int) -> dict:
    import torch

    from training.engine.yolo.zoo import LABELS, model_dict
    from training.engine.zoo import build_model
    from visualizer.graph.trace import graph_of
    from visualizer.graph.yolo import yolo_graph

    if name in LABELS:
        return yolo_graph(model_dict(name, 80), yolo_build, size, name=name)
    with torch.device("meta"):
        model = build_model(name, num_classes=1000, input_size=size)
    return graph_of(model, size, name=name, num_classes=1000)


def answer(graph: dict, edits: list) -> dict:
    from recommender.profiling import profile_model
    from visualizer.graph.checks import engine_flags
    from visualizer.graph.costs import graph_costs
    from visualizer.graph.edits import apply
    from visualizer.graph.yolo import routed_model, yolo_apply

    if graph.get("family") == "yolo":  # as visualizer.services.predicted_costs does
        edited = yolo_apply(graph, edits, yolo_build)
        costs = profile_model(routed_model(edited["spec"], yolo_build), graph["input_size"]).as_dict()
    else:
        edited = apply(graph, edits)
        costs = graph_costs(edited)
    engine_flags(edited, "rknn")
    return {"errors": edited["errors"], "params": costs["params"], "flops": costs["flops"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for name, size, edits in CASES:
        started = time.perf_counter()
        graph = first_graph(name, size)
        cold = time.perf_counter() - started
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            result = answer(graph, edits)
            times.append(time.perf_counter() - started)
        assert not result["errors"], (name, result["errors"])
        rows.append({"model": name, "input_size": size, "nodes": len(graph["nodes"]), "blocks": len(graph["blocks"]),
                     "first_graph_s": cold, "edit_answer_s": statistics.median(times),
                     "params": result["params"], "gflops": result["flops"] / 1e9})
    print(f"{'model':<12} {'px':>4} {'nodes':>5} {'blocks':>6} {'first graph s':>13} {'edit answer s':>13} "
          f"{'params M':>9} {'GFLOPs':>8}")
    for r in rows:
        print(f"{r['model']:<12} {r['input_size']:>4} {r['nodes']:>5} {r['blocks']:>6} {r['first_graph_s']:>13.2f} "
              f"{r['edit_answer_s']:>13.2f} {r['params'] / 1e6:>9.2f} {r['gflops']:>8.2f}")
    worst = max(r["edit_answer_s"] for r in rows)
    out = ROOT / "bench" / "results" / "network_editor.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"target_s": TARGET_S, "rows": rows}, indent=2))
    met = worst <= TARGET_S
    print(f"Slowest warm edit answer {worst:.2f} s against {TARGET_S:.1f} s: {'MET' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
