"""How fast the network editor answers an edit: the graph core's work behind one preview.

For each model: the first graph (trace on the meta device, cold), then edits answered warm (the edits applied
to the cached graph, shapes re-inferred, the recommender's cost figures read off the shapes, engine flags). Every
repeat is a new edit (another width), so the rows it changes are not in the detector's row cache: the figure is
the user's next edit, not a replay. The database look-up of the latency model is a few milliseconds on top and
is left out. Target: a warm answer within 1 s for every model, so the costs follow the user's edits.

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
CASES = [  # model, input size, the edit of repeat r (each repeat a new edit: nothing of it is cached yet)
    ("resnet50", 224, lambda r: [{"op": "resize", "node": "layer3_1_conv1", "channels": 128 - 8 * r}]),
    ("densenet121", 224, lambda r: [{"op": "insert", "after": "features_denseblock2_denselayer1_relu2",
                                     "layer": "Dropout", "params": {"p": 0.1 + 0.1 * r}}]),
    ("vgg16", 224, lambda r: [{"op": "resize", "node": "features_0", "channels": 32 + 8 * r}]),
    ("resnet203", 224, lambda r: [{"op": "resize", "node": "layer3_1_conv1", "channels": 128 - 8 * r}]),
    ("yolov7-tiny", 640, lambda r: [{"op": "set", "node": "2", "params": {"args": [48 + 8 * r, 1, 1]}}]),
    ("yolov7", 640, lambda r: [{"op": "set", "node": "2", "params": {"args": [48 + 8 * r, 3, 1]}}]),
    # a row in, a row out: every later row renumbered, the width change carried through the next block
    ("yolov7", 640, lambda r: [{"op": "insert", "after": "11", "layer": "Conv", "params": {"args": [72 + 8 * r, 3, 1]}},
                               {"op": "remove", "node": "5"}]),
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
    from visualizer.graph.checks import engine_flags
    from visualizer.graph.costs import graph_costs
    from visualizer.graph.edits import apply
    from visualizer.graph.yolo import yolo_apply

    if graph.get("family") == "yolo":  # as visualizer.services.edited_graph and predicted_costs do
        edited = yolo_apply(graph, edits, yolo_build)
    else:
        edited = apply(graph, edits)
    costs = graph_costs(edited)
    engine_flags(edited, "rknn")
    return {"errors": edited["errors"], "params": costs["params"], "flops": costs["flops"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from visualizer.graph import yolo

    rows = []
    for name, size, edit_of in CASES:
        yolo._CACHE.clear()  # the first graph is cold: no row of it cached
        started = time.perf_counter()
        graph = first_graph(name, size)
        cold = time.perf_counter() - started
        times = []
        for repeat in range(args.repeats):
            started = time.perf_counter()
            result = answer(graph, edit_of(repeat))
            times.append(time.perf_counter() - started)
        assert not result["errors"], (name, result["errors"])
        kind = "+".join(edit["op"] for edit in edit_of(0))
        rows.append({"model": name, "edit": kind, "input_size": size, "nodes": len(graph["nodes"]),
                     "blocks": len(graph["blocks"]),
                     "first_graph_s": cold, "edit_answer_s": statistics.median(times),
                     "params": result["params"], "gflops": result["flops"] / 1e9})
    print(f"{'model':<12} {'edit':<13} {'px':>4} {'nodes':>5} {'blocks':>6} {'first graph s':>13} "
          f"{'edit answer s':>13} "
          f"{'params M':>9} {'GFLOPs':>8}")
    for r in rows:
        print(f"{r['model']:<12} {r['edit']:<13} {r['input_size']:>4} {r['nodes']:>5} {r['blocks']:>6} "
              f"{r['first_graph_s']:>13.2f} "
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
