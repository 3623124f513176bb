"""What a graph costs, in the recommender's terms (recommender.engine.costs.Costs' fields), from the shapes shape
inference already found: no second pass through the network (a detector's rows carry the recommender's own
profile of each row, so its 1x1-convolution and linear FLOPs come along)."""


def graph_costs(graph: dict) -> dict:
    """params, flops, weight/activation/peak bytes at FP32, layers and ops of a consistent graph."""
    totals = graph["totals"]
    return {"params": totals["params"], "flops": float(totals["flops"]), "weight_bytes": 4.0 * totals["params"],
            "activation_bytes": 4.0 * totals["activation_values"], "peak_activation_bytes": 4.0 * totals["peak_values"],
            "layers": totals["layers"], "ops": totals["ops"],
            **({"extra": {"conv1x1_flops": 2.0 * totals["macs_1x1"], "linear_flops": 2.0 * totals["macs_linear"]}}
               if "macs_1x1" in totals else {})}
