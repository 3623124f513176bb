"""What a graph costs, in the recommender's terms (recommender.engine.costs.Costs' fields), from the shapes shape
inference already found: no second pass through the network."""


def graph_costs(graph: dict) -> dict:
    """params, flops, weight/activation/peak bytes at FP32, layers and ops of a consistent graph."""
    totals = graph["totals"]
    return {"params": totals["params"], "flops": float(totals["flops"]), "weight_bytes": 4.0 * totals["params"],
            "activation_bytes": 4.0 * totals["activation_values"], "peak_activation_bytes": 4.0 * totals["peak_values"],
            "layers": totals["layers"], "ops": totals["ops"]}
